//! `/admin/profiles` (Barong §9.3): staff list every profile, create a submitted one for a
//! user, and review a submitted one. Setting its state is the KYC decision: the private
//! `profile` label follows (level and state recomputed, events and emails), as for the
//! user's own writes (`api::profiles`).
//!
//! Differences from Barong (decisions.md #17): creating a profile is checked against the
//! abilities (manage Profile), as every other write is.

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::StatusCode;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{AdminState, Change, Staff, doc};
use crate::api::entities::{Profile, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::Caller;
use crate::api::pagination::{self, Page};
use crate::api::params::Params;
use crate::api::profiles::{self, FIELDS, ProfileWriter};
use crate::domain::abilities::{Action, models};
use crate::domain::profile::states;
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns, returns_list};
use crate::store::StoreError;
use crate::store::users::{self, ProfileRow, UserRow};

/// Barong's prefix for this class's parameter codes, and its hand-written one.
const PREFIX: &str = "admin.profile";
const NOT_EDITABLE: &str = "admin.profiles.doesnt_exist_or_not_editable";

const UID: Param = param("uid", In::Body, true, "The user's uid");
const STATE: Param = param("state", In::Body, false, "The review's verdict").one_of(&[
    states::DRAFTED,
    states::SUBMITTED,
    states::VERIFIED,
    states::REJECTED,
]);
const UPDATE: [Param; 10] = [
    UID, FIELDS[0], FIELDS[1], FIELDS[2], FIELDS[3], FIELDS[4], FIELDS[5], FIELDS[6], FIELDS[7],
    STATE,
];
const CREATE: [Param; 9] = [
    UID, FIELDS[0], FIELDS[1], FIELDS[2], FIELDS[3], FIELDS[4], FIELDS[5], FIELDS[6], FIELDS[7],
];
const DENIED: &str = "jwt.decode_and_verify, authz.*, admin.ability.not_permitted";

/// A profile as staff list them: the profile, unmasked, with its user and its author.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffProfile {
    #[serde(flatten)]
    pub profile: Profile,
    pub uid: String,
    pub author: Option<String>,
}

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    vec![
        Endpoint {
            doc: doc(
                "GET",
                "admin/profiles",
                "Return all profiles",
                &pagination::PARAMS,
                const {
                    &[
                        returns_list::<StaffProfile>(
                            200,
                            "Every profile, unmasked, oldest first; headers Total, Page, Per-Page, Link",
                        ),
                        reply(401, DENIED),
                        reply(
                            422,
                            "non_integer_page, non_positive_page, non_integer_limit, invalid_limit",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(list),
        },
        Endpoint {
            doc: doc(
                "PUT",
                "admin/profiles",
                "Update a profile for user",
                &UPDATE,
                const {
                    &[
                        returns::<Profile>(200, "The reviewed profile, unmasked"),
                        reply(401, DENIED),
                        reply(
                            404,
                            "admin.user.doesnt_exist, admin.profiles.doesnt_exist_or_not_editable (no submitted profile)",
                        ),
                        reply(
                            422,
                            "admin.profiles.superadmin_change, admin.profiles.second_admin_approval, state.inclusion, and the field codes",
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
                "admin/profiles",
                "Create a submitted profile for user",
                &CREATE,
                const {
                    &[
                        returns::<Profile>(201, "The new submitted profile, unmasked"),
                        reply(401, DENIED),
                        reply(404, "admin.user.doesnt_exist"),
                        reply(
                            422,
                            "admin.profiles.superadmin_change, state.exists (a profile is already drafted or submitted), and the field codes",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(create),
        },
    ]
}

fn writer(app: &AdminState) -> ProfileWriter<'_> {
    ProfileWriter {
        settings: &app.settings,
        secrets: &app.secrets,
        events: &app.events,
    }
}

async fn list(
    State(app): State<AdminState>,
    staff: Staff,
    uri: http::Uri,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Read, models::PROFILE)?;
    let page = Page::from_params(&params)?;
    let client = app.store.client().await?;
    let (rows, total) = users::profiles_page(&client, page.limit, page.offset()).await?;
    let body: Vec<StaffProfile> = rows
        .iter()
        .map(|(row, uid)| StaffProfile {
            profile: Profile::from_row(row, &app.secrets, false),
            uid: uid.clone(),
            author: row.author.clone(),
        })
        .collect();
    Ok((StatusCode::OK, page.headers(total, &uri), axum::Json(body)).into_response())
}

/// The user the request names (`uid`), when staff may touch them: 404 for an unknown uid,
/// 422 for a superadmin unless the caller is one.
async fn target(app: &AdminState, staff: &Staff, params: &Params) -> ApiResult<UserRow> {
    let uid = crate::api::identity::common::require(params, PREFIX, &["uid"], false)?.remove(0);
    let client = app.store.client().await?;
    let user = users::find_by_uid(&client, &uid)
        .await?
        .ok_or_else(|| ApiError::not_found("admin.user.doesnt_exist"))?;
    if user.role == "superadmin" && !staff.is_superadmin() {
        return Err(ApiError::unprocessable("admin.profiles.superadmin_change"));
    }
    Ok(user)
}

/// A profile as the admin activity log keeps it. Personal fields stay out: the log's
/// readers are not all KYC staff.
fn snapshot(row: &ProfileRow) -> serde_json::Value {
    json!({ "id": row.id, "state": row.state, "author": row.author })
}

async fn update(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Update, models::PROFILE)?;
    let user = target(&app, &staff, &params).await?;
    let fields = profiles::fields(&params)?;
    let verdict = params.filled("state");
    if let Some(state) = &verdict
        && ![
            states::DRAFTED,
            states::SUBMITTED,
            states::VERIFIED,
            states::REJECTED,
        ]
        .contains(&state.as_str())
    {
        return Err(ApiError::unprocessable("state.inclusion"));
    }
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let before = users::profiles(&tx, user.id)
        .await?
        .into_iter()
        .rev()
        .find(|p| p.state == states::SUBMITTED)
        .ok_or_else(|| ApiError::not_found(NOT_EDITABLE))?;
    // Barong's four-eyes rule: whoever created a profile does not also verify it, unless
    // their role is trusted to.
    let kyc = &app.settings.kyc;
    if verdict.is_some()
        && kyc.profile_double_verification
        && before.author.as_deref() == Some(staff.user.uid.as_str())
        && !kyc.profile_verification_roles.contains(&staff.user.role)
    {
        return Err(ApiError::unprocessable(
            "admin.profiles.second_admin_approval",
        ));
    }
    let writer = writer(&app);
    let state = verdict.as_deref().unwrap_or(states::SUBMITTED);
    let row = users::update_open_profile(
        &tx,
        user.id,
        states::SUBMITTED,
        state,
        &writer.sealed(&fields),
    )
    .await?
    .ok_or_else(|| ApiError::not_found(NOT_EDITABLE))?;
    writer
        .written(&tx, &user, &row, "model.profile.updated")
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    app.record(
        &staff,
        &caller,
        Change::updated(
            "profiles",
            Some(&user.uid),
            snapshot(&before),
            snapshot(&row),
        ),
    );
    Ok(entity(
        StatusCode::OK,
        Profile::from_row(&row, &app.secrets, false),
    ))
}

async fn create(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Create, models::PROFILE)?;
    let user = target(&app, &staff, &params).await?;
    let fields = profiles::fields(&params)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    if users::has_open_profile(&tx, user.id).await? {
        return Err(ApiError::unprocessable("state.exists"));
    }
    let writer = writer(&app);
    let row = users::insert_profile(
        &tx,
        user.id,
        &staff.user.uid,
        states::SUBMITTED,
        &writer.sealed(&fields),
    )
    .await?;
    writer
        .written(&tx, &user, &row, "model.profile.created")
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    app.record(
        &staff,
        &caller,
        Change::created("profiles", Some(&user.uid), snapshot(&row)),
    );
    Ok(entity(
        StatusCode::CREATED,
        Profile::from_row(&row, &app.secrets, false),
    ))
}
