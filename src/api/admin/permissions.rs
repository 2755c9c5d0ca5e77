//! `/admin/permissions`: the gate's permissions table, listed and edited by staff (Barong §9.3,
//! ability model `Permission`: read to list, manage to write).
//!
//! A write changes the table only; every node (this one included) rebuilds its policy snapshot
//! when the table's trigger notifies it (`store::notify`), as for the command line's writes.
//! Each write is kept in the admin activity log with the row before and after.
//!
//! Differences from Barong, on purpose: an update checks verb and action as a creation does
//! (Barong's stores e.g. action `ALL`, which the gate then ignores), and a role it introduces
//! must exist as a creation's must; a role, path or topic longer than its column is a 422.

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::rule_params::written;
use super::{AdminState, Change, Staff, doc};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::Caller;
use crate::api::pagination::{self, Page};
use crate::api::params::Params;
use crate::api::readers::{optional_text, refuse, required_integer, required_text};
use crate::domain::abilities::{Action, models};
use crate::domain::time::iso;
use crate::gate::permissions::{oversized, stored_action, stored_verb};
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns_list};
use crate::store::permissions::{self, NewPermission, PermissionRow};

/// Barong's prefix for this class's parameter codes.
const PREFIX: &str = "admin.permission";
const TOPIC: &str = "permissions";
const DOESNT_EXIST: &str = "admin.permission.doesnt_exist";
const ROLE_DOESNT_EXIST: &str = "admin.permission.role_doesnt_exist";

const LOWER_VERBS: &[&str] = &["get", "post", "delete", "put", "head", "patch", "all"];
const LOWER_ACTIONS: &[&str] = &["accept", "drop", "audit"];

const DENIED: &str = "jwt.decode_and_verify, authz.invalid_permission (the permissions table: e.g. admin's DROP on this path), admin.ability.not_permitted";

/// `API_V2_Entities_Permission`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Permission {
    pub id: i64,
    pub action: String,
    pub role: String,
    pub verb: String,
    pub path: String,
    pub topic: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&PermissionRow> for Permission {
    fn from(row: &PermissionRow) -> Permission {
        Permission {
            id: row.id,
            action: row.action.clone(),
            role: row.role.clone(),
            verb: row.verb.clone(),
            path: row.path.clone(),
            topic: row.topic.clone(),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        }
    }
}

/// The row as the activity log keeps it: the entity's JSON.
fn logged(row: &PermissionRow) -> serde_json::Value {
    serde_json::to_value(Permission::from(row)).unwrap_or_default()
}

const ID_BODY: Param = param("id", In::Body, true, "Permission id").integer();

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    let path = "admin/permissions";
    vec![
        Endpoint {
            doc: doc(
                "GET",
                path,
                "Returns array of permissions as paginated collection",
                &pagination::PARAMS,
                const {
                    &[
                        returns_list::<Permission>(
                            200,
                            "The permissions by id; headers Total, Page, Per-Page, Link",
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
                "POST",
                path,
                "Create permission",
                const {
                    &[
                        param(
                            "role",
                            In::Body,
                            true,
                            "A role that has permissions already",
                        ),
                        param("verb", In::Body, true, "Request verb (any case)")
                            .one_of(LOWER_VERBS),
                        param(
                            "path",
                            In::Body,
                            true,
                            "Request path prefix, without a leading slash",
                        ),
                        param("action", In::Body, true, "What a match does (any case)")
                            .one_of(LOWER_ACTIONS),
                        param("topic", In::Body, false, "Activity topic of an AUDIT row"),
                    ]
                },
                const {
                    &[
                        reply(200, "Created (body `200`, as Barong's)"),
                        reply(401, DENIED),
                        reply(
                            422,
                            "admin.permission.missing_|empty_ role, verb, path, action, empty_topic; admin.permissions.invalid_verb, admin.permissions.invalid_action, admin.permission.role_doesnt_exist, role.too_long, path.too_long, topic.too_long",
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
                path,
                "Update Permission",
                const {
                    &[
                        ID_BODY,
                        param("role", In::Body, false, "permission field - role"),
                        param("verb", In::Body, false, "permission field - request verb")
                            .one_of(LOWER_VERBS),
                        param("path", In::Body, false, "permission field - request path"),
                        param("action", In::Body, false, "permission field - action")
                            .one_of(LOWER_ACTIONS),
                        param("topic", In::Body, false, "permission field - topic"),
                    ]
                },
                const {
                    &[
                        reply(200, "Updated (body `200`, as Barong's)"),
                        reply(401, DENIED),
                        reply(404, DOESNT_EXIST),
                        reply(
                            422,
                            "admin.permission.missing_id, empty_id, non_integer_id, empty_<field>; admin.permissions.invalid_verb, admin.permissions.invalid_action, admin.permission.role_doesnt_exist, <field>.too_long",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: put(update),
        },
        Endpoint {
            doc: doc(
                "DELETE",
                path,
                "Deletes permission",
                const { &[param("id", In::Query, true, "permission id").integer()] },
                const {
                    &[
                        reply(200, "Deleted (body `200`, as Barong's)"),
                        reply(401, DENIED),
                        reply(404, DOESNT_EXIST),
                        reply(422, "admin.permission.missing_id, empty_id, non_integer_id"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: delete(remove),
        },
    ]
}

async fn list(
    State(app): State<AdminState>,
    staff: Staff,
    uri: http::Uri,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Read, models::PERMISSION)?;
    let page = Page::from_params(&params)?;
    let client = app.store.client().await?;
    let (rows, total) = permissions::page(&client, page.limit, page.offset()).await?;
    let body: Vec<Permission> = rows.iter().map(Permission::from).collect();
    Ok((StatusCode::OK, page.headers(total, &uri), axum::Json(body)).into_response())
}

/// A verb or action as stored, or its code (Barong answers the first refusal alone).
fn stored(
    value: Option<String>,
    parse: fn(&str) -> Result<String, &'static str>,
) -> ApiResult<Option<String>> {
    value
        .map(|v| parse(&v).map_err(ApiError::unprocessable))
        .transpose()
}

/// `<field>.too_long` for what does not fit, as one 422.
fn fits(role: &str, path: &str, topic: Option<&str>) -> ApiResult<()> {
    refuse(
        oversized(role, path, topic)
            .into_iter()
            .map(String::from)
            .collect(),
    )
}

async fn create(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Create, models::PERMISSION)?;
    let mut codes = Vec::new();
    let role = required_text(&params, PREFIX, "role", &mut codes);
    let verb = required_text(&params, PREFIX, "verb", &mut codes);
    let path = required_text(&params, PREFIX, "path", &mut codes);
    let action = required_text(&params, PREFIX, "action", &mut codes);
    let topic = optional_text(&params, PREFIX, "topic", &mut codes);
    refuse(codes)?;
    let (Some(role), Some(path)) = (role, path) else {
        return Err(ApiError::internal());
    };
    let verb = stored(verb, stored_verb)?.unwrap_or_default();
    let action = stored(action, stored_action)?.unwrap_or_default();
    fits(&role, &path, topic.as_deref())?;
    let client = app.store.client().await?;
    // Roles exist only through their rows (Barong §4.1): a new role would be a typo's.
    if !permissions::role_exists(&client, &role).await? {
        return Err(ApiError::unprocessable(ROLE_DOESNT_EXIST));
    }
    let row = permissions::insert(
        &client,
        &NewPermission {
            action: &action,
            role: &role,
            verb: &verb,
            path: &path,
            topic: topic.as_deref(),
        },
    )
    .await?;
    app.record(&staff, &caller, Change::created(TOPIC, None, logged(&row)));
    Ok(written())
}

async fn update(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Update, models::PERMISSION)?;
    let mut codes = Vec::new();
    let id = required_integer(&params, PREFIX, "id", &mut codes);
    let role = optional_text(&params, PREFIX, "role", &mut codes);
    let verb = optional_text(&params, PREFIX, "verb", &mut codes);
    let path = optional_text(&params, PREFIX, "path", &mut codes);
    let action = optional_text(&params, PREFIX, "action", &mut codes);
    let topic = optional_text(&params, PREFIX, "topic", &mut codes);
    refuse(codes)?;
    let id = id.ok_or_else(ApiError::internal)?;
    let client = app.store.client().await?;
    let current = permissions::find(&client, id)
        .await?
        .ok_or_else(|| ApiError::not_found(DOESNT_EXIST))?;
    let verb = stored(verb, stored_verb)?.unwrap_or_else(|| current.verb.clone());
    let action = stored(action, stored_action)?.unwrap_or_else(|| current.action.clone());
    let role = role.unwrap_or_else(|| current.role.clone());
    let path = path.unwrap_or_else(|| current.path.clone());
    let topic = topic.or_else(|| current.topic.clone());
    fits(&role, &path, topic.as_deref())?;
    if role != current.role && !permissions::role_exists(&client, &role).await? {
        return Err(ApiError::unprocessable(ROLE_DOESNT_EXIST));
    }
    let new = NewPermission {
        action: &action,
        role: &role,
        verb: &verb,
        path: &path,
        topic: topic.as_deref(),
    };
    let unchanged = action == current.action
        && role == current.role
        && verb == current.verb
        && path == current.path
        && topic == current.topic;
    if unchanged {
        // Nothing to write, nothing to log: Barong answers alike.
        return Ok(written());
    }
    let row = permissions::update(&client, id, &new)
        .await?
        .ok_or_else(|| ApiError::not_found(DOESNT_EXIST))?;
    app.record(
        &staff,
        &caller,
        Change::updated(TOPIC, None, logged(&current), logged(&row)),
    );
    Ok(written())
}

async fn remove(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Destroy, models::PERMISSION)?;
    let mut codes = Vec::new();
    let id = required_integer(&params, PREFIX, "id", &mut codes);
    refuse(codes)?;
    let id = id.ok_or_else(ApiError::internal)?;
    let client = app.store.client().await?;
    let row = permissions::delete(&client, id)
        .await?
        .ok_or_else(|| ApiError::not_found(DOESNT_EXIST))?;
    app.record(&staff, &caller, Change::deleted(TOPIC, None, logged(&row)));
    Ok(written())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::permissions::{ACTIONS, VERBS};

    #[test]
    fn documented_values_are_the_gates_in_lower_case() {
        let lower =
            |all: &[&str]| -> Vec<String> { all.iter().map(|v| v.to_ascii_lowercase()).collect() };
        assert_eq!(lower(&VERBS), LOWER_VERBS);
        assert_eq!(lower(&ACTIONS), LOWER_ACTIONS);
    }
}
