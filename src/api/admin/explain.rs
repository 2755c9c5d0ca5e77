//! `POST /admin/explain`: why the gate allows or denies a request of a given user or API key,
//! step by step, with the rows that decided (`gate::explain`, the same steps the fronts
//! take). Reading it tells staff which permission, rule or restriction to change; it changes
//! nothing and records nothing.

use std::net::IpAddr;

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{AdminState, Staff, doc};
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::api::readers::{optional_text, refuse, required_text};
use crate::domain::abilities::{Action, models};
use crate::domain::policy::{PermissionRow, RestrictionRow};
use crate::domain::time::iso;
use crate::gate::Gate;
use crate::gate::explain::{Question, Step, Who};
use crate::routes::{Endpoint, Guard, In, Param, param, reply};
use crate::store::{Store, permissions, restrictions};

const PREFIX: &str = "admin.explain";

const PARAMS: [Param; 6] = [
    param(
        "method",
        In::Body,
        true,
        "The request's method (GET, POST …)",
    ),
    param(
        "path",
        In::Body,
        true,
        "The request's path as clients send it, e.g. /api/v2/peatio/account/balances",
    ),
    param(
        "uid",
        In::Body,
        false,
        "The user or service account asking (one of uid, kid)",
    ),
    param(
        "kid",
        In::Body,
        false,
        "The API key signing the request (one of uid, kid)",
    ),
    param(
        "ip",
        In::Body,
        false,
        "The client's address; without it, restrictions are not evaluated",
    ),
    param("user_agent", In::Body, false, "The client's User-Agent"),
];

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
{
    vec![Endpoint {
        doc: doc(
            "POST",
            "admin/explain",
            "Explain the gate's decision on a request of a user or API key",
            &PARAMS,
            const {
                &[
                    reply(
                        200,
                        "{\"decision\":\"allow|deny\",\"status\":…,\"error\":\"authz.*\"|null,\"steps\":[…],\"rows\":{\"restrictions\":[…],\"permissions\":[…]}}",
                    ),
                    reply(
                        401,
                        "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                    ),
                    reply(
                        422,
                        "admin.explain.missing_method, admin.explain.empty_method, admin.explain.missing_path, admin.explain.empty_path, admin.explain.invalid_method, admin.explain.invalid_path (a NUL), admin.explain.one_of_uid_kid, admin.explain.empty_ip, admin.explain.invalid_ip",
                    ),
                    reply(503, "server.unavailable"),
                ]
            },
        ),
        guard: Guard::Subject,
        handler: post(explain),
    }]
}

/// The question the parameters ask, or every refusal of them.
fn question(params: &Params) -> ApiResult<Question> {
    let mut codes = Vec::new();
    let method = required_text(params, PREFIX, "method", &mut codes);
    let path = required_text(params, PREFIX, "path", &mut codes);
    let who = match (params.filled("uid"), params.filled("kid")) {
        (Some(uid), None) => Some(Who::Uid(uid)),
        (None, Some(kid)) => Some(Who::Kid(kid)),
        _ => {
            codes.push(format!("{PREFIX}.one_of_uid_kid"));
            None
        }
    };
    let ip = match optional_text(params, PREFIX, "ip", &mut codes) {
        None => None,
        Some(text) => match text.trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                codes.push(format!("{PREFIX}.invalid_ip"));
                None
            }
        },
    };
    refuse(codes)?;
    Ok(Question {
        method: method.unwrap_or_default().trim().to_ascii_uppercase(),
        path: path.unwrap_or_default().trim().to_string(),
        who: who.ok_or_else(ApiError::internal)?,
        ip,
        user_agent: params.text("user_agent").unwrap_or_default(),
    })
}

fn permission_json(row: &PermissionRow) -> Value {
    json!({
        "id": row.id, "action": row.action, "role": row.role, "verb": row.verb,
        "path": row.path, "topic": row.topic,
        "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
    })
}

fn restriction_json(row: &RestrictionRow) -> Value {
    json!({
        "id": row.id, "category": row.category, "scope": row.scope, "value": row.value,
        "code": row.code, "state": row.state,
        "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
    })
}

/// The explanation of `question` as JSON, with the rows its steps name by id, read as they
/// are now (`rows.restrictions`, `rows.permissions`). Shared by the endpoint and
/// `portcullis explain`.
pub async fn explained(gate: &Gate, store: &Store, question: &Question) -> ApiResult<Value> {
    let explanation = gate
        .explain(question)
        .await
        .map_err(|_| ApiError::unavailable())?;
    let mut restriction_ids = Vec::new();
    let mut permission_ids = Vec::new();
    for step in &explanation.steps {
        match step {
            Step::Restrictions {
                restriction: Some(id),
                ..
            } => restriction_ids.push(*id),
            Step::Permissions {
                accept,
                drop,
                audit,
                ..
            } => permission_ids.extend(accept.iter().chain(drop).chain(audit)),
            _ => {}
        }
    }
    let client = store.client().await?;
    let mut found_restrictions = Vec::new();
    for id in restriction_ids {
        if let Some(row) = restrictions::find(&client, id).await? {
            found_restrictions.push(restriction_json(&row));
        }
    }
    let found_permissions: Vec<Value> = permissions::find_many(&client, &permission_ids)
        .await?
        .iter()
        .map(permission_json)
        .collect();
    let mut body = serde_json::to_value(&explanation).map_err(|_| ApiError::internal())?;
    body["rows"] = json!({ "restrictions": found_restrictions, "permissions": found_permissions });
    Ok(body)
}

async fn explain(
    State(app): State<AdminState>,
    staff: Staff,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Read, models::PERMISSION)?;
    let question = question(&params)?;
    let body = explained(&app.gate, &app.store, &question).await?;
    Ok(axum::Json(body).into_response())
}
