//! Changing an account: `PUT /admin/users` (exactly one of state, otp, email),
//! its legacy twin `POST /admin/users/update` (state or otp) and `POST /admin/users/role`.
//!
//! Barong's protections, in its order: the target exists, a superadmin is changed only by a
//! superadmin, nobody changes themselves, only a superadmin changes an email, 2FA is only
//! turned off here, and a change must change something. A change takes effect in the gate at
//! once: the subject and the turned-off keys are dropped from this node's caches at commit.

use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::{post, put};
use http::StatusCode;

use super::entities::user;
use super::{
    AdminState, PREFIX, Staff, boolean, protect_superadmin, refuse_nul, target, user_record,
};
use crate::api::admin::{Change, doc};
use crate::api::entities::{User, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::{self, Caller};
use crate::api::params::Params;
use crate::domain::abilities::{Action, models};
use crate::domain::email::Email;
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns};
use crate::store::users::UserRow;
use crate::store::{StoreError, labels, permissions, users};

const UID: Param = param("uid", In::Body, true, "User uid");
const STATE: Param = param("state", In::Body, false, "User state (any word)");
const OTP: Param = param("otp", In::Body, false, "false turns 2FA off").boolean();
const EMAIL: Param = param("email", In::Body, false, "New email (superadmin only)");

/// The longest state the `users` table keeps.
const STATE_MAX: usize = 16;

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    vec![
        Endpoint {
            doc: doc(
                "PUT",
                "admin/users",
                "Update user attributes",
                const { &[UID, STATE, OTP, EMAIL] },
                const {
                    &[
                        returns::<User>(200, "The user as changed"),
                        reply(
                            401,
                            "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                        ),
                        reply(404, "admin.user.doesnt_exist"),
                        reply(
                            422,
                            "admin.user.missing_uid, empty_uid, one_of_state_otp_email, empty_state, empty_otp, empty_email, non_boolean_otp, superadmin_change, update_himself, enable_2fa, state_no_change, otp_no_change, email_no_change, superadmin.user.update_email, email.invalid, email.taken, state.too_long",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: put(update),
        },
        Endpoint {
            doc: doc(
                "POST",
                "admin/users/update",
                "Update user attributes (legacy: state or otp)",
                const { &[UID, STATE, OTP] },
                const {
                    &[
                        returns::<User>(201, "The user as changed"),
                        reply(
                            401,
                            "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                        ),
                        reply(404, "admin.user.doesnt_exist"),
                        reply(
                            422,
                            "admin.user.missing_uid, empty_uid, one_of_state_otp, empty_state, empty_otp, non_boolean_otp, superadmin_change, update_himself, enable_2fa, state_no_change, otp_no_change, state.too_long",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(update_legacy),
        },
        Endpoint {
            doc: doc(
                "POST",
                "admin/users/role",
                "Update user role",
                const {
                    &[
                        UID,
                        param("role", In::Body, true, "A role of the permissions table"),
                    ]
                },
                const {
                    &[
                        returns::<User>(200, "The user with the new role"),
                        reply(
                            401,
                            "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                        ),
                        reply(404, "admin.user.doesnt_exist"),
                        reply(
                            422,
                            "admin.user.missing_uid, empty_uid, missing_role, empty_role, superadmin_change, update_himself, role_no_change, role.doesnt_exist",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(role),
        },
    ]
}

/// What one request changes.
enum Field {
    State(String),
    Otp(bool),
    Email(String),
}

/// `uid` and exactly one of `fields` (`one_of` otherwise), none of them blank.
fn read(params: &Params, fields: &[&str], one_of: &str) -> ApiResult<(String, Field)> {
    let uid = common::require(params, PREFIX, &["uid"], false)?.remove(0);
    let given: Vec<&str> = fields.iter().copied().filter(|f| params.has(f)).collect();
    let [name] = given[..] else {
        return Err(ApiError::unprocessable(one_of));
    };
    let value = common::require(params, PREFIX, &[name], false)?.remove(0);
    let field = match name {
        "state" => Field::State(value.trim().to_string()),
        "email" => Field::Email(value),
        _ => Field::Otp(boolean(params, "otp", "admin.user.non_boolean_otp")?.unwrap_or_default()),
    };
    Ok((uid, field))
}

async fn update(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let (uid, field) = read(
        &params,
        &["state", "otp", "email"],
        "admin.user.one_of_state_otp_email",
    )?;
    change(&app, &staff, &caller, &uid, field, StatusCode::OK).await
}

async fn update_legacy(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let (uid, field) = read(&params, &["state", "otp"], "admin.user.one_of_state_otp")?;
    change(&app, &staff, &caller, &uid, field, StatusCode::CREATED).await
}

/// The checks every change of another account passes: the target exists, a superadmin is
/// changed only by a superadmin, and nobody changes their own account here.
async fn changeable<C: crate::store::Db>(c: &C, staff: &Staff, uid: &str) -> ApiResult<UserRow> {
    let user = target(c, uid).await?;
    protect_superadmin(staff, &user, "admin.user.superadmin_change")?;
    if user.uid == staff.user.uid {
        return Err(ApiError::unprocessable("admin.user.update_himself"));
    }
    Ok(user)
}

async fn change(
    app: &AdminState,
    staff: &Staff,
    caller: &Caller,
    uid: &str,
    field: Field,
    status: StatusCode,
) -> ApiResult<Response> {
    staff.may(Action::Update, models::USER)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let before = changeable(&tx, staff, uid).await?;
    let mut turned_off = Vec::new();
    let after = match field {
        Field::Email(raw) => {
            if !staff.is_superadmin() {
                return Err(ApiError::unprocessable("superadmin.user.update_email"));
            }
            let email = Email::parse(&raw).map_err(ApiError::unprocessable)?;
            if email.as_str().eq_ignore_ascii_case(&before.email) {
                return Err(ApiError::unprocessable("admin.user.email_no_change"));
            }
            match users::set_email(&tx, before.id, email.as_str()).await {
                Err(StoreError::Conflict(_)) => {
                    return Err(ApiError::unprocessable(
                        crate::services::accounts::EMAIL_TAKEN,
                    ));
                }
                other => other?,
            }
        }
        Field::Otp(true) => return Err(ApiError::unprocessable("admin.user.enable_2fa")),
        Field::Otp(false) => {
            // As the owner's own disable: the secret forgotten, the `otp` label gone, and
            // every key of the user and its service accounts inactive (keys need 2FA).
            let Some(disabled) = users::disable_otp(&tx, before.id).await? else {
                return Err(ApiError::unprocessable("admin.user.otp_no_change"));
            };
            let settings = &app.settings.users;
            let after = labels::remove(&tx, settings, before.id, "otp", "private")
                .await?
                .unwrap_or(disabled);
            turned_off = labels::deactivate_api_keys(&tx, before.id).await?;
            after
        }
        Field::State(state) => {
            if state == before.state {
                return Err(ApiError::unprocessable("admin.user.state_no_change"));
            }
            if state.chars().count() > STATE_MAX {
                return Err(ApiError::unprocessable("state.too_long"));
            }
            let (after, keys) = labels::set_state(&tx, before.id, &state).await?;
            turned_off = keys;
            after
        }
    };
    app.events.user_updated(&tx, &before, &after).await?;
    let body = user(&tx, &after).await?;
    tx.commit().await.map_err(StoreError::from)?;
    committed(app, staff, caller, &before, &after, &turned_off);
    Ok(entity(status, body))
}

async fn role(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let values = common::require(&params, PREFIX, &["uid", "role"], false)?;
    let (uid, role) = (&values[0], values[1].trim());
    staff.may(Action::Update, models::USER)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let before = changeable(&tx, &staff, uid).await?;
    if before.role == role {
        return Err(ApiError::unprocessable("admin.user.role_no_change"));
    }
    // Not in Barong: only a superadmin makes a superadmin, whatever the permissions table
    // lets through (the default table already keeps other roles off this path).
    if role == "superadmin" && !staff.is_superadmin() {
        return Err(ApiError::unprocessable("admin.user.superadmin_change"));
    }
    if !permissions::role_exists(&tx, role).await? {
        return Err(ApiError::unprocessable("role.doesnt_exist"));
    }
    let after = users::update_role(&tx, before.id, role).await?;
    app.events.user_updated(&tx, &before, &after).await?;
    let body = user(&tx, &after).await?;
    tx.commit().await.map_err(StoreError::from)?;
    committed(&app, &staff, &caller, &before, &after, &[]);
    Ok(entity(StatusCode::OK, body))
}

/// After the commit: the gate on this node sees the change at once (the subject and any key
/// turned off), and the admin activity records it.
fn committed(
    app: &AdminState,
    staff: &Staff,
    caller: &Caller,
    before: &UserRow,
    after: &UserRow,
    turned_off: &[String],
) {
    app.committed(&after.uid);
    turned_off
        .iter()
        .for_each(|kid| app.api_keys.invalidate(kid));
    app.record(
        staff,
        caller,
        Change::updated(
            "users",
            Some(&after.uid),
            user_record(before),
            user_record(after),
        ),
    );
}
