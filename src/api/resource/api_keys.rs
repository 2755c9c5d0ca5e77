//! `/resource/api_keys`: the user's own API keys (Barong §8.7, §3). Listing needs nothing more
//! than the subject guard; every write needs 2FA on and a fresh TOTP code (`otp_protected`),
//! and each code is accepted once. The secret is shown in the creation answer only; it is
//! stored sealed. Key changes reach the gate at once: the `api_keys` row trigger tells every
//! node to drop its cached key, so a disabled or deleted key is refused on its next request.

use axum::extract::{FromRef, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use http::StatusCode;

use super::{CurrentUser, ResourceState};
use crate::api::entities::{ApiKey, ApiKeyWithSecret, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::common;
use crate::api::pagination::{self, Page};
use crate::api::params::Params;
use crate::domain::subject::SubjectKind;
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns, returns_list};
use crate::services::api_keys::{self as service, ApiKeyError, KeyChange};
use crate::store::api_keys::{self, ApiKeyRow};
use crate::store::users::UserRow;

/// Barong's error prefix for this class's parameters.
const PREFIX: &str = "resource.api_key";

const TOTP: Param = param(
    "totp_code",
    In::Body,
    true,
    "Code from Google Authenticator",
);
const KID: Param = param("kid", In::Path, true, "API key kid");
const TOTP_REPLIES: &str =
    "resource.api_key.missing_totp, resource.api_key.invalid_totp (each code is accepted once)";

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
{
    let by_kid = "resource/api_keys/{kid}";
    vec![
        Endpoint {
            doc: super::doc(
                "GET",
                "resource/api_keys",
                "List all api keys for current account",
                const {
                    &[
                        param("ordering", In::Query, false, "Sort order, defaults to asc")
                            .one_of(&["asc", "desc"]),
                        param(
                            "order_by",
                            In::Query,
                            false,
                            "Column to order by, defaults to id",
                        )
                        .one_of(api_keys::ORDERABLE),
                        pagination::PARAMS[0],
                        pagination::PARAMS[1],
                    ]
                },
                const {
                    &[
                        returns_list::<ApiKey>(
                            200,
                            "The user's keys, without secrets; headers Total, Page, Per-Page",
                        ),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            422,
                            "resource.api_key.invalid_ordering, resource.api_key.invalid_attribute, non_integer_page, non_positive_page, non_integer_limit, invalid_limit",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(list),
        },
        Endpoint {
            doc: super::doc(
                "POST",
                "resource/api_keys",
                "Create an api key",
                const {
                    &[
                        param("algorithm", In::Body, true, "API key algorithm")
                            .one_of(&[service::ALGORITHM]),
                        param("scope", In::Body, false, "Comma separated scopes"),
                        TOTP,
                    ]
                },
                const {
                    &[
                        returns::<ApiKeyWithSecret>(
                            201,
                            "The new key, with its secret: the only time it is shown",
                        ),
                        reply(400, "resource.api_key.2fa_disabled"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            422,
                            "resource.api_key.missing_algorithm, empty_algorithm, empty_scope, missing_totp, invalid_totp, algorithm.inclusion, key_holder_account.invalid",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(create),
        },
        Endpoint {
            doc: super::doc(
                "PATCH",
                by_kid,
                "Updates an api key",
                const {
                    &[
                        KID,
                        param("scope", In::Body, false, "Comma separated scopes"),
                        param(
                            "state",
                            In::Body,
                            false,
                            "State of the key: only an active key can be used",
                        )
                        .one_of(service::STATES),
                        TOTP,
                    ]
                },
                const {
                    &[
                        returns::<ApiKey>(200, "The key, without its secret"),
                        reply(400, "resource.api_key.2fa_disabled"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(404, "record.not_found"),
                        reply(
                            422,
                            "resource.api_key.empty_scope, empty_state, missing_totp, invalid_totp, state.inclusion, state.invalid",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: patch(update),
        },
        Endpoint {
            doc: super::doc(
                "DELETE",
                by_kid,
                "Delete an api key",
                const {
                    &[
                        KID,
                        param(
                            "totp_code",
                            In::Query,
                            true,
                            "Code from Google Authenticator",
                        ),
                    ]
                },
                const {
                    &[
                        reply(204, "Deleted"),
                        reply(400, "resource.api_key.2fa_disabled"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(404, "record.not_found"),
                        reply(422, TOTP_REPLIES),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: delete(remove),
        },
    ]
}

/// Barong's `otp_protected!`: 2FA off → 400 `2fa_disabled`; no code (or a blank one) → 422
/// `missing_totp`; a wrong or already used code → 422 `invalid_totp`.
async fn otp_protected(app: &ResourceState, user: &UserRow, params: &Params) -> ApiResult<()> {
    if !user.otp {
        return Err(ApiError::bad_request("resource.api_key.2fa_disabled"));
    }
    let Some(code) = params.filled("totp_code") else {
        return Err(ApiError::unprocessable("resource.api_key.missing_totp"));
    };
    if !common::verify_totp(&app.secrets, &app.kv, user, &code).await? {
        return Err(ApiError::unprocessable("resource.api_key.invalid_totp"));
    }
    Ok(())
}

/// Grape's `optional …, allow_blank: false`: present but blank is `<prefix>.empty_<name>`.
fn optional(params: &Params, name: &str, codes: &mut Vec<String>) -> Option<String> {
    let value = params.text(name)?;
    if value.trim().is_empty() {
        codes.push(format!("{PREFIX}.empty_{name}"));
        return None;
    }
    Some(value)
}

async fn list(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    uri: http::Uri,
    params: Params,
) -> ApiResult<Response> {
    let mut codes = Vec::new();
    let descending = match params.text("ordering").as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            codes.push("resource.api_key.invalid_ordering".to_string());
            false
        }
    };
    let order_by = params.text("order_by").unwrap_or_else(|| "id".to_string());
    if !api_keys::ORDERABLE.contains(&order_by.as_str()) {
        codes.push("resource.api_key.invalid_attribute".to_string());
    }
    let page = Page::collect(&params, &mut codes);
    ApiError::unprocessable_all(codes)?;
    let page = page.ok_or_else(ApiError::internal)?;
    let client = app.store.client().await?;
    let (rows, total) = api_keys::page_for_holder(
        &client,
        SubjectKind::User,
        user.id,
        &order_by,
        descending,
        page.limit,
        page.offset(),
    )
    .await?;
    let body: Vec<ApiKey> = rows.iter().map(ApiKey::from).collect();
    Ok((
        StatusCode::OK,
        page.headers(total, uri.path()),
        axum::Json(body),
    )
        .into_response())
}

/// A refusal of the key service as an API answer: its model codes are 422s.
fn refused(err: ApiKeyError) -> ApiError {
    match (err.codes(), err) {
        (Some(codes), _) => ApiError::many(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes.into_iter().map(str::to_string).collect(),
        ),
        (None, ApiKeyError::Store(err)) => err.into(),
        (None, other) => {
            tracing::error!(error = %other, "api key not written");
            ApiError::internal()
        }
    }
}

async fn create(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    params: Params,
) -> ApiResult<Response> {
    let mut codes = Vec::new();
    let algorithm = match params.text("algorithm") {
        None => {
            codes.push(format!("{PREFIX}.missing_algorithm"));
            codes.push(format!("{PREFIX}.empty_algorithm"));
            None
        }
        Some(text) if text.trim().is_empty() => {
            codes.push(format!("{PREFIX}.empty_algorithm"));
            None
        }
        Some(text) => Some(text),
    };
    let scope = optional(&params, "scope", &mut codes);
    ApiError::unprocessable_all(codes)?;
    otp_protected(&app, &user, &params).await?;
    let algorithm = algorithm.unwrap_or_default();
    let created = service::create(
        &app.store,
        &app.secrets,
        &user.uid,
        &algorithm,
        scope.as_deref().unwrap_or(""),
    )
    .await
    .map_err(refused)?;
    Ok(entity(
        StatusCode::CREATED,
        ApiKeyWithSecret::new(&created.row, created.secret),
    ))
}

/// The user's key `kid`, or Barong's 404 `record.not_found` (another user's key included).
async fn own_key<C: crate::store::Db>(c: &C, user: &UserRow, kid: &str) -> ApiResult<ApiKeyRow> {
    api_keys::find_for_holder(c, SubjectKind::User, user.id, kid)
        .await?
        .ok_or_else(|| ApiError::not_found("record.not_found"))
}

async fn update(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    Path(kid): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let mut codes = Vec::new();
    let scope = optional(&params, "scope", &mut codes);
    let state = optional(&params, "state", &mut codes);
    ApiError::unprocessable_all(codes)?;
    otp_protected(&app, &user, &params).await?;
    let client = app.store.client().await?;
    let key = own_key(&client, &user, &kid).await?;
    let change = KeyChange {
        scope: scope.as_deref(),
        state: state.as_deref(),
    };
    let row = service::update(&client, &key, &user.state, &change)
        .await
        .map_err(refused)?;
    // This node's gate forgets the key at once; the others on the change notice.
    app.api_keys.invalidate(&kid);
    Ok(entity(StatusCode::OK, ApiKey::from(&row)))
}

async fn remove(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    Path(kid): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    otp_protected(&app, &user, &params).await?;
    let client = app.store.client().await?;
    let key = own_key(&client, &user, &kid).await?;
    api_keys::delete(&client, key.id).await?;
    app.api_keys.invalidate(&kid);
    Ok(StatusCode::NO_CONTENT.into_response())
}
