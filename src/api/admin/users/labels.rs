//! Labels through the admin API: the KYC review path. `GET /admin/users/labels/list` (how
//! many users hold each private label), `GET /admin/users/labels` (who holds one), and the
//! writes: `POST` (create), `PUT` (update an existing one), `POST …/labels/update` (Barong's
//! legacy write: creates when missing unless `replace=false`) and `DELETE`.
//!
//! Every write goes through `store::labels`, which recomputes level and state, and emits what
//! the label means (`events.label_changed`: `system.document.verified` and its mail among
//! them). A private `profile` label also decides the user's latest submitted profile. Only a
//! superadmin touches a superadmin's labels.

use axum::extract::{FromRef, OriginalUri, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::entities::AdminLabelView;
use super::{AdminState, PREFIX, Staff, boolean, protect_superadmin, refuse_nul, target};
use crate::api::admin::{Change, doc};
use crate::api::entities::{Profile, User, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::{self, Caller};
use crate::api::pagination::{self, Page};
use crate::api::params::Params;
use crate::api::resource::labels::{check, normalise};
use crate::domain::abilities::{Action, models};
use crate::routes::{Endpoint, Guard, In, Param, described, param, reply, returns, returns_list};
use crate::store::users::LabelRow;
use crate::store::{StoreError, labels, user_search, users};

const SCOPES: &[&str] = &["public", "private"];
/// The profile states a private `profile` label carries over to the profile.
const PROFILE_DECISIONS: &[&str] = &["submitted", "verified", "rejected"];

const UID: Param = param("uid", In::Body, true, "User uid");
const KEY: Param = param(
    "key",
    In::Body,
    true,
    "Label key: 3 to 255 of a-z, 0-9, _ and -",
);
const VALUE: Param = param(
    "value",
    In::Body,
    true,
    "Label value: 3 to 255 of a-z, 0-9, _ and -",
);
const SCOPE: Param = param("scope", In::Body, true, "Label scope").one_of(SCOPES);
const DESCRIPTION: Param = param("description", In::Body, false, "Label description (≤255)");

const WRITE_401: &str = "jwt.decode_and_verify, authz.*, admin.ability.not_permitted";
const WRITE_422: &str = "admin.user.missing_uid, empty_uid, missing_key, empty_key, missing_value, empty_value, missing_scope, empty_scope, empty_description, superadmin_change, key.too_short, key.too_long, key.invalid, value.too_short, value.too_long, value.invalid, scope.inclusion, description.too_long";

/// One row of `GET /admin/users/labels/list` (Barong renders `{"[\"key\", \"value\"]": n}`;
/// Portcullis answers plain objects, decisions.md #22).
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelCount {
    pub key: String,
    pub value: String,
    pub count: i64,
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
                "admin/users/labels/list",
                "Returns existing labels keys and values",
                &[],
                const {
                    &[
                        returns_list::<LabelCount>(
                            200,
                            "Private labels by key and value, with how many users hold each",
                        ),
                        reply(401, WRITE_401),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(counts),
        },
        Endpoint {
            doc: doc(
                "GET",
                "admin/users/labels",
                "Returns array of users as paginated collection",
                const {
                    &[
                        param("key", In::Query, true, "Label key"),
                        param("value", In::Query, true, "Label value"),
                        pagination::PARAMS[0],
                        pagination::PARAMS[1],
                    ]
                },
                const {
                    &[
                        returns_list::<User>(
                            200,
                            "Users holding the label in any scope; Total, Page, Per-Page and Link headers",
                        ),
                        reply(401, WRITE_401),
                        reply(
                            422,
                            "admin.user.missing_key, empty_key, missing_value, empty_value, non_integer_page, non_positive_page, non_integer_limit, invalid_limit",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(holders),
        },
        Endpoint {
            doc: doc(
                "POST",
                "admin/users/labels",
                "Adds label for user",
                const {
                    &[
                        UID,
                        KEY,
                        VALUE,
                        DESCRIPTION,
                        param("scope", In::Body, false, "public (default) or private")
                            .one_of(SCOPES),
                    ]
                },
                const {
                    &[
                        returns::<AdminLabelView>(200, "The new label"),
                        reply(401, WRITE_401),
                        reply(404, "admin.user.doesnt_exist"),
                        reply(
                            422,
                            "key.taken and the codes of any label write: admin.user.missing_uid …",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(create),
        },
        Endpoint {
            doc: doc(
                "PUT",
                "admin/users/labels",
                "Update user label",
                const { &[UID, KEY, SCOPE, VALUE, DESCRIPTION] },
                const {
                    &[
                        returns::<AdminLabelView>(200, "The label as updated"),
                        reply(401, WRITE_401),
                        reply(404, "admin.user.doesnt_exist, admin.label.doesnt_exist"),
                        reply(422, WRITE_422),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: axum::routing::put(update),
        },
        Endpoint {
            doc: doc(
                "DELETE",
                "admin/users/labels",
                "Deletes label for user",
                const {
                    &[
                        param("uid", In::Query, true, "User uid"),
                        param("key", In::Query, true, "Label key"),
                        param("scope", In::Query, true, "Label scope").one_of(SCOPES),
                    ]
                },
                const {
                    &[
                        described(200, "Deleted: the body is 200, as in Barong"),
                        reply(401, WRITE_401),
                        reply(404, "admin.user.doesnt_exist, admin.label.doesnt_exist"),
                        reply(
                            422,
                            "admin.user.missing_uid, empty_uid, missing_key, empty_key, missing_scope, empty_scope, superadmin_change",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: axum::routing::delete(remove),
        },
        Endpoint {
            doc: doc(
                "POST",
                "admin/users/labels/update",
                "Update user label value (creates it unless replace=false)",
                const {
                    &[
                        UID,
                        KEY,
                        SCOPE,
                        VALUE,
                        DESCRIPTION,
                        param(
                            "replace",
                            In::Body,
                            false,
                            "Create the label when missing (default true)",
                        )
                        .boolean(),
                    ]
                },
                const {
                    &[
                        returns::<AdminLabelView>(201, "The label as written"),
                        reply(401, WRITE_401),
                        reply(404, "admin.user.doesnt_exist, admin.label.doesnt_exist"),
                        reply(422, "admin.user.non_boolean_replace and the codes of PUT"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(update_legacy),
        },
    ]
}

async fn counts(State(app): State<AdminState>, staff: Staff) -> ApiResult<Response> {
    staff.may(Action::Read, models::USER)?;
    let client = app.store.client().await?;
    let body: Vec<LabelCount> = labels::private_counts(&client)
        .await?
        .into_iter()
        .map(|(key, value, count)| LabelCount { key, value, count })
        .collect();
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

async fn holders(
    State(app): State<AdminState>,
    staff: Staff,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let values = common::require(&params, PREFIX, &["key", "value"], false)?;
    let page = Page::from_params(&params)?;
    staff.may(Action::Read, models::USER)?;
    let client = app.store.client().await?;
    let (key, value) = (normalise(&values[0]), normalise(&values[1]));
    let (total, rows) =
        user_search::with_label(&client, &key, &value, page.limit, page.offset()).await?;
    let body = User::many(&client, &rows).await?;
    Ok((StatusCode::OK, page.headers(total, &uri), axum::Json(body)).into_response())
}

/// How a write treats the label (user, key, scope).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// It must not exist yet (`key.taken`).
    Create,
    /// It must exist (404 `admin.label.doesnt_exist`).
    Update,
    /// Created when missing.
    Upsert,
}

/// A label write's parameters, checked as Barong's model checks them.
struct Write {
    uid: String,
    key: String,
    value: String,
    scope: String,
    description: Option<String>,
}

fn read_write(params: &Params, scope_required: bool) -> ApiResult<Write> {
    let mut names = vec!["uid", "key", "value"];
    if scope_required {
        names.push("scope");
    }
    let values = common::require(params, PREFIX, &names, false)?;
    let mut codes = Vec::new();
    let description = match params.text("description") {
        Some(d) if d.trim().is_empty() => {
            codes.push(format!("{PREFIX}.empty_description"));
            None
        }
        other => other,
    };
    ApiError::unprocessable_all(codes.clone())?;
    let scope = if scope_required {
        values[3].trim().to_string()
    } else {
        params
            .text("scope")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "public".into())
    };
    let (key, value) = (normalise(&values[1]), normalise(&values[2]));
    check("key", &key, &mut codes);
    check("value", &value, &mut codes);
    if !SCOPES.contains(&scope.as_str()) {
        codes.push("scope.inclusion".into());
    }
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 255)
    {
        codes.push("description.too_long".into());
    }
    ApiError::unprocessable_all(codes)?;
    Ok(Write {
        uid: values[0].clone(),
        key,
        value,
        scope,
        description,
    })
}

async fn create(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let write = read_write(&params, false)?;
    staff.may(Action::Create, models::LABEL)?;
    let label = apply(&app, &staff, &caller, &write, Mode::Create).await?;
    Ok(entity(StatusCode::OK, AdminLabelView::from(&label)))
}

async fn update(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let write = read_write(&params, true)?;
    staff.may(Action::Update, models::LABEL)?;
    let label = apply(&app, &staff, &caller, &write, Mode::Update).await?;
    Ok(entity(StatusCode::OK, AdminLabelView::from(&label)))
}

async fn update_legacy(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let write = read_write(&params, true)?;
    let replace = boolean(&params, "replace", "admin.user.non_boolean_replace")?.unwrap_or(true);
    staff.may(Action::Update, models::LABEL)?;
    let mode = if replace { Mode::Upsert } else { Mode::Update };
    let label = apply(&app, &staff, &caller, &write, mode).await?;
    Ok(entity(StatusCode::CREATED, AdminLabelView::from(&label)))
}

/// The label as the admin activity log keeps it.
fn label_record(label: Option<&LabelRow>) -> Value {
    label.map_or(Value::Null, |l| {
        json!({ "key": l.key, "value": l.value, "scope": l.scope, "description": l.description })
    })
}

/// Writes the label in one transaction with what it implies (level, state, the profile's
/// decision, events), then records the change.
async fn apply(
    app: &AdminState,
    staff: &Staff,
    caller: &Caller,
    write: &Write,
    mode: Mode,
) -> ApiResult<LabelRow> {
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let user = target(&tx, &write.uid).await?;
    protect_superadmin(staff, &user, "admin.user.superadmin_change")?;
    let existing = labels::find(&tx, user.id, &write.key, &write.scope).await?;
    let settings = &app.settings.users;
    let description = write.description.as_deref();
    let change = match (mode, &existing) {
        (Mode::Update, None) => return Err(ApiError::not_found("admin.label.doesnt_exist")),
        (Mode::Create, Some(_)) => return Err(ApiError::unprocessable("key.taken")),
        (Mode::Create, None) => {
            let (key, value, scope) = (&write.key, &write.value, &write.scope);
            match labels::insert_described(&tx, settings, user.id, key, value, scope, description)
                .await
            {
                // A concurrent write created it since.
                Err(StoreError::Conflict(_)) => {
                    return Err(ApiError::unprocessable("key.taken"));
                }
                other => other?,
            }
        }
        _ => {
            let (key, value, scope) = (&write.key, &write.value, &write.scope);
            labels::set_described(&tx, settings, user.id, key, value, scope, description).await?
        }
    };
    if write.key == "profile"
        && write.scope == "private"
        && PROFILE_DECISIONS.contains(&write.value.as_str())
    {
        // The profile follows its label, with the model event the owner's edits emit.
        if let Some(profile) = users::decide_latest_profile(&tx, user.id, &write.value).await? {
            let mut record = serde_json::to_value(Profile::from_row(&profile, &app.secrets, false))
                .unwrap_or_default();
            record["user"] = crate::events::user_record_of(&tx, &change.user).await?;
            app.events
                .emit(&tx, "model.profile.updated", &json!({ "record": record }))
                .await?;
        }
    }
    app.events.label_changed(&tx, &change).await?;
    let label = labels::find(&tx, user.id, &write.key, &write.scope)
        .await?
        .ok_or_else(ApiError::internal)?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    app.record(
        staff,
        caller,
        Change {
            topic: "labels",
            action: if existing.is_some() {
                "update"
            } else {
                "create"
            },
            target_uid: Some(&user.uid),
            before: label_record(existing.as_ref()),
            after: label_record(Some(&label)),
        },
    );
    Ok(label)
}

async fn remove(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let values = common::require(&params, PREFIX, &["uid", "key", "scope"], false)?;
    let (uid, key, scope) = (&values[0], normalise(&values[1]), values[2].trim());
    staff.may(Action::Destroy, models::LABEL)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let user = target(&tx, uid).await?;
    protect_superadmin(&staff, &user, "admin.user.superadmin_change")?;
    let existing = labels::find(&tx, user.id, &key, scope)
        .await?
        .ok_or_else(|| ApiError::not_found("admin.label.doesnt_exist"))?;
    let after = labels::remove(&tx, &app.settings.users, user.id, &key, scope)
        .await?
        .ok_or_else(|| ApiError::not_found("admin.label.doesnt_exist"))?;
    app.events.user_updated(&tx, &user, &after).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    app.record(
        &staff,
        &caller,
        Change::deleted("labels", Some(&user.uid), label_record(Some(&existing))),
    );
    // Barong's block ends with `status 200`, which Grape renders as the body.
    Ok(crate::api::admin::rule_params::written())
}
