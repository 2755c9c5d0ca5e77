//! `/admin/restrictions` and `/admin/restrictions/whitelink`: the gate's restrictions, listed
//! and edited by staff, and whitelink tokens handed out (Barong §5, §9.3; ability model
//! `Restriction`: read to list, manage for the rest).
//!
//! The rows are checked as the command line checks them (`domain::policy::Draft`), and reach
//! every node (this one included) through the table's change notice, as the command line's
//! writes do. Switching a blocklogin on ends every session (decisions.md #10). Each write is
//! kept in the admin activity log with the row before and after; a whitelink's entry says when
//! it expires, never the token.

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::rule_params::written;
use super::{AdminState, Change, Staff, doc};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::Caller;
use crate::api::identity::users::whitelink_key;
use crate::api::pagination::{self, Page};
use crate::api::params::Params;
use crate::api::readers::{
    optional_integer, optional_text, refuse, required_integer, required_text,
};
use crate::domain::abilities::{Action, models};
use crate::domain::policy::{CATEGORIES, Draft, SCOPES, STATES};
use crate::domain::time::iso;
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns_list};
use crate::store::StoreError;
use crate::store::restrictions::{self, Filter, NewRestriction, RestrictionRow};

/// Barong's prefix for this class's parameter codes.
const PREFIX: &str = "admin.restriction";
const TOPIC: &str = "restrictions";
const DOESNT_EXIST: &str = "admin.restriction.doesnt_exist";

const DENIED: &str = "jwt.decode_and_verify, authz.invalid_permission (the permissions table on this path), admin.ability.not_permitted";

/// `API_V2_Entities_Restriction`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Restriction {
    pub id: i64,
    pub category: String,
    pub scope: String,
    pub value: String,
    pub code: Option<i32>,
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&RestrictionRow> for Restriction {
    fn from(row: &RestrictionRow) -> Restriction {
        Restriction {
            id: row.id,
            category: row.category.clone(),
            scope: row.scope.clone(),
            value: row.value.clone(),
            code: row.code,
            state: row.state.clone(),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        }
    }
}

/// The row as the activity log keeps it: the entity's JSON.
fn logged(row: &RestrictionRow) -> Value {
    serde_json::to_value(Restriction::from(row)).unwrap_or_default()
}

const SCOPE: Param = param("scope", In::Body, true, "What the value names").one_of(&SCOPES);
const CATEGORY: Param = param("category", In::Body, true, "What a match does").one_of(&CATEGORIES);
const STATE: Param = param("state", In::Body, false, "Defaults to enabled").one_of(&STATES);
const CODE: Param = param(
    "code",
    In::Body,
    false,
    "HTTP status of a match, 400 to 599 (default by category and scope; ignored for whitelist)",
)
.integer();

/// Whitelink lifetimes: `expire_time` of `range`s.
const MAX_EXPIRE: i64 = 30;
const RANGES: [&str; 2] = ["day", "hour"];

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    let path = "admin/restrictions";
    vec![
        Endpoint {
            doc: doc(
                "GET",
                path,
                "Returns array of restrictions as a paginated collection",
                const {
                    &[
                        param("scope", In::Query, false, "Only this scope").one_of(&SCOPES),
                        param("category", In::Query, false, "Only this category")
                            .one_of(&CATEGORIES),
                        param(
                            "range",
                            In::Query,
                            false,
                            "Which time from and to compare: created (default) or updated",
                        )
                        .one_of(&["created", "updated"]),
                        param(
                            "from",
                            In::Query,
                            false,
                            "Unix seconds: only rows at or after",
                        )
                        .integer(),
                        param(
                            "to",
                            In::Query,
                            false,
                            "Unix seconds: only rows at or before",
                        )
                        .integer(),
                        pagination::PARAMS[0],
                        pagination::PARAMS[1],
                    ]
                },
                const {
                    &[
                        returns_list::<Restriction>(
                            200,
                            "The restrictions by id; headers Total, Page, Per-Page, Link",
                        ),
                        reply(401, DENIED),
                        reply(
                            422,
                            "admin.restriction.invalid_scope, invalid_category, invalid_range, invalid_from, invalid_to, empty_scope, empty_category, non_integer_page, non_positive_page, non_integer_limit, invalid_limit",
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
                "Create restriction",
                const {
                    &[
                        SCOPE,
                        param(
                            "value",
                            In::Body,
                            true,
                            "An IPv4 or IPv6 address (ip), a CIDR (ip_subnet), an ISO code or name (country, continent), anything (all)",
                        ),
                        CATEGORY,
                        STATE,
                        CODE,
                    ]
                },
                const {
                    &[
                        reply(
                            200,
                            "Created (body `200`, as Barong's); an enabled blocklogin ends every session",
                        ),
                        reply(401, DENIED),
                        reply(
                            422,
                            "admin.restriction.missing_|empty_ scope, value, category; empty_state, empty_code, non_integer_code, invalid_scope, invalid_category, invalid_state, code.invalid, value.invalid, value.blank, value.too_long, value.taken",
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
                "Update restriction",
                const {
                    &[
                        param("id", In::Body, true, "Restriction id").integer(),
                        Param {
                            required: false,
                            ..SCOPE
                        },
                        Param {
                            required: false,
                            ..CATEGORY
                        },
                        param("value", In::Body, false, "As for a creation"),
                        STATE,
                        CODE,
                    ]
                },
                const {
                    &[
                        reply(
                            200,
                            "Updated (body `200`, as Barong's); switching a blocklogin on ends every session",
                        ),
                        reply(401, DENIED),
                        reply(404, DOESNT_EXIST),
                        reply(
                            422,
                            "admin.restriction.missing_id, empty_id, non_integer_id, empty_<field>, non_integer_code, invalid_scope, invalid_category, invalid_state, code.invalid, value.invalid, value.too_long, value.taken",
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
                "Delete restriction",
                const { &[param("id", In::Query, true, "Restriction id").integer()] },
                const {
                    &[
                        reply(200, "Deleted (body `200`, as Barong's)"),
                        reply(401, DENIED),
                        reply(404, DOESNT_EXIST),
                        reply(
                            422,
                            "admin.restriction.missing_id, empty_id, non_integer_id",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: delete(remove),
        },
        Endpoint {
            doc: doc(
                "POST",
                "admin/restrictions/whitelink",
                "Create whitelink",
                const {
                    &[
                        param(
                            "expire_time",
                            In::Body,
                            false,
                            "The token is valid for this many ranges, 1 to 30 (default 1)",
                        )
                        .integer(),
                        param("range", In::Body, false, "day (default) or hour").one_of(&RANGES),
                    ]
                },
                const {
                    &[
                        reply(
                            201,
                            "{\"whitelink_token\":\"<64 hex>\"}: redeemed by POST /identity/users/access (any number of times until it expires)",
                        ),
                        reply(401, DENIED),
                        reply(
                            422,
                            "invalid_expire, invalid_range, admin.restriction.empty_expire_time, empty_range",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(whitelink),
        },
    ]
}

/// Unix seconds as a time, or `admin.restriction.invalid_<name>`.
fn unix_time(params: &Params, name: &str, codes: &mut Vec<String>) -> Option<OffsetDateTime> {
    let text = params.text(name)?;
    let time = text
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok());
    if time.is_none() {
        codes.push(format!("{PREFIX}.invalid_{name}"));
    }
    time
}

/// An optional filter that must be one of `values`: `empty_<name>` or `invalid_<name>`.
fn one_of(params: &Params, name: &str, values: &[&str], codes: &mut Vec<String>) -> Option<String> {
    let value = optional_text(params, PREFIX, name, codes)?;
    if values.contains(&value.as_str()) {
        Some(value)
    } else {
        codes.push(format!("{PREFIX}.invalid_{name}"));
        None
    }
}

async fn list(
    State(app): State<AdminState>,
    staff: Staff,
    uri: http::Uri,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Read, models::RESTRICTION)?;
    let mut codes = Vec::new();
    let scope = one_of(&params, "scope", &SCOPES, &mut codes);
    let category = one_of(&params, "category", &CATEGORIES, &mut codes);
    let by_update = match params.text("range").as_deref() {
        None | Some("created") => false,
        Some("updated") => true,
        Some(_) => {
            codes.push(format!("{PREFIX}.invalid_range"));
            false
        }
    };
    let from = unix_time(&params, "from", &mut codes);
    let to = unix_time(&params, "to", &mut codes);
    let page = Page::collect(&params, &mut codes);
    refuse(codes)?;
    let page = page.ok_or_else(ApiError::internal)?;
    let filter = Filter {
        category: category.as_deref(),
        scope: scope.as_deref(),
        by_update,
        from,
        to,
    };
    let client = app.store.client().await?;
    let (rows, total) = restrictions::page(&client, &filter, page.limit, page.offset()).await?;
    let body: Vec<Restriction> = rows.iter().map(Restriction::from).collect();
    Ok((StatusCode::OK, page.headers(total, &uri), axum::Json(body)).into_response())
}

/// An optional `code`, which must fit an `i32` to be checked at all.
fn code_param(params: &Params, codes: &mut Vec<String>) -> Option<i32> {
    let code = optional_integer(params, PREFIX, "code", codes)?;
    match i32::try_from(code) {
        Ok(code) => Some(code),
        Err(_) => {
            codes.push("code.invalid".into());
            None
        }
    }
}

/// The draft's problems as one 422 (parameter codes first, then the value's).
fn check(draft: &Draft<'_>) -> ApiResult<()> {
    refuse(draft.problems().into_iter().map(String::from).collect())
}

/// `value.taken` for the (category, scope, value) the table holds already.
fn taken(err: StoreError) -> ApiError {
    match err {
        StoreError::Conflict(_) => ApiError::unprocessable("value.taken"),
        other => other.into(),
    }
}

/// After a committed write that switched a blocklogin on: every session ends, as Barong's.
async fn end_sessions_if(app: &AdminState, blocklogin_on: bool) -> ApiResult<()> {
    if blocklogin_on {
        let ended = app.sessions.destroy_everyone().await?;
        tracing::info!(ended, "blocklogin enabled by an admin: every session ended");
    }
    Ok(())
}

async fn create(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Create, models::RESTRICTION)?;
    let mut codes = Vec::new();
    let scope = required_text(&params, PREFIX, "scope", &mut codes);
    let value = required_text(&params, PREFIX, "value", &mut codes);
    let category = required_text(&params, PREFIX, "category", &mut codes);
    let state = optional_text(&params, PREFIX, "state", &mut codes);
    let code = code_param(&params, &mut codes);
    refuse(codes)?;
    let (Some(scope), Some(value), Some(category)) = (scope, value, category) else {
        return Err(ApiError::internal());
    };
    let draft = Draft {
        category: &category,
        scope: &scope,
        value: &value,
        code,
        state: state.as_deref().unwrap_or("enabled"),
    };
    check(&draft)?;
    let client = app.store.client().await?;
    let row = restrictions::insert(&client, &NewRestriction::from(&draft))
        .await
        .map_err(taken)?;
    app.record(&staff, &caller, Change::created(TOPIC, None, logged(&row)));
    end_sessions_if(&app, draft.enables_blocklogin(None)).await?;
    Ok(written())
}

async fn update(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Update, models::RESTRICTION)?;
    let mut codes = Vec::new();
    let id = required_integer(&params, PREFIX, "id", &mut codes);
    let scope = optional_text(&params, PREFIX, "scope", &mut codes);
    let category = optional_text(&params, PREFIX, "category", &mut codes);
    let value = optional_text(&params, PREFIX, "value", &mut codes);
    let state = optional_text(&params, PREFIX, "state", &mut codes);
    let code = code_param(&params, &mut codes);
    refuse(codes)?;
    let id = id.ok_or_else(ApiError::internal)?;
    let client = app.store.client().await?;
    let current = restrictions::find(&client, id)
        .await?
        .ok_or_else(|| ApiError::not_found(DOESNT_EXIST))?;
    let stored = Draft::of(&current);
    let draft = Draft {
        category: category.as_deref().unwrap_or(stored.category),
        scope: scope.as_deref().unwrap_or(stored.scope),
        value: value.as_deref().unwrap_or(stored.value),
        code: code.or(stored.code),
        state: state.as_deref().unwrap_or(stored.state),
    };
    check(&draft)?;
    let new = NewRestriction::from(&draft);
    let unchanged = new.category == current.category
        && new.scope == current.scope
        && new.value == current.value
        && Some(new.code) == current.code
        && new.state == current.state;
    if unchanged {
        // Nothing to write, nothing to log: Barong answers alike.
        return Ok(written());
    }
    let row = restrictions::update(&client, id, &new)
        .await
        .map_err(taken)?
        .ok_or_else(|| ApiError::not_found(DOESNT_EXIST))?;
    app.record(
        &staff,
        &caller,
        Change::updated(TOPIC, None, logged(&current), logged(&row)),
    );
    end_sessions_if(&app, draft.enables_blocklogin(Some(&current))).await?;
    Ok(written())
}

async fn remove(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Destroy, models::RESTRICTION)?;
    let mut codes = Vec::new();
    let id = required_integer(&params, PREFIX, "id", &mut codes);
    refuse(codes)?;
    let id = id.ok_or_else(ApiError::internal)?;
    let client = app.store.client().await?;
    let row = restrictions::delete(&client, id)
        .await?
        .ok_or_else(|| ApiError::not_found(DOESNT_EXIST))?;
    app.record(&staff, &caller, Change::deleted(TOPIC, None, logged(&row)));
    Ok(written())
}

/// Barong §5.4: a random token (64 hex characters) kept in Redis as `active` for
/// `expire_time` days or hours; redeeming it whitelists the redeemer's address.
async fn whitelink(
    State(app): State<AdminState>,
    State(identity): State<IdentityState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Create, models::RESTRICTION)?;
    let mut codes = Vec::new();
    // Grape's custom messages here are unprefixed: `invalid_expire`, `invalid_range`.
    let expire = match params.text("expire_time") {
        None => Some(1),
        Some(text) if text.trim().is_empty() => {
            codes.push(format!("{PREFIX}.empty_expire_time"));
            None
        }
        Some(text) => {
            let n = text.trim().parse::<i64>().ok();
            let n = n.filter(|n| (1..=MAX_EXPIRE).contains(n));
            if n.is_none() {
                codes.push("invalid_expire".into());
            }
            n
        }
    };
    let range = optional_text(&params, PREFIX, "range", &mut codes);
    if range
        .as_deref()
        .is_some_and(|range| !RANGES.contains(&range))
    {
        codes.push("invalid_range".into());
    }
    refuse(codes)?;
    let expire = expire.ok_or_else(ApiError::internal)?;
    let unit: i64 = if range.as_deref() == Some("hour") {
        3600
    } else {
        86_400
    };
    let ttl = expire * unit;
    let token = crate::crypto::random_hex::<32>();
    let key = identity.kv.key(&whitelink_key(&token));
    identity.kv.set_ex(&key, "active", ttl as u64).await?;
    let expires_at = OffsetDateTime::now_utc() + time::Duration::seconds(ttl);
    app.record(
        &staff,
        &caller,
        Change::created(
            TOPIC,
            None,
            json!({ "whitelink": { "expires_at": iso(expires_at) } }),
        ),
    );
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "whitelink_token": token })),
    )
        .into_response())
}
