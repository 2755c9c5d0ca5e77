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
/// The parameters of a key listing: order and page.
pub(crate) const LISTING: [Param; 4] = [
    param("ordering", In::Query, false, "Sort order, defaults to asc").one_of(&["asc", "desc"]),
    param(
        "order_by",
        In::Query,
        false,
        "Column to order by, defaults to id",
    )
    .one_of(api_keys::ORDERABLE),
    pagination::PARAMS[0],
    pagination::PARAMS[1],
];
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
                &LISTING,
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

/// Whose keys a request manages: the user's own, or those of a service account the user owns.
pub(crate) struct Holder {
    pub kind: SubjectKind,
    pub id: i64,
    pub uid: String,
    pub state: String,
}

impl Holder {
    pub(crate) fn user(user: &UserRow) -> Holder {
        Holder {
            kind: SubjectKind::User,
            id: user.id,
            uid: user.uid.clone(),
            state: user.state.clone(),
        }
    }
}

/// The error codes of one family of key routes. Barong derives the parameter codes from the
/// API class (`resource.api_key.missing_algorithm`, `resource.serviceaccount.…`) and writes
/// the guard's and the listing's by hand (`resource.service_accounts.2fa_disabled`).
#[derive(Clone, Copy)]
pub(crate) struct Codes {
    /// Missing and empty parameters.
    pub params: &'static str,
    /// 2FA, TOTP and ordering refusals.
    pub guard: &'static str,
}

/// The user's own keys.
const USER_CODES: Codes = Codes {
    params: PREFIX,
    guard: PREFIX,
};

impl Codes {
    fn code(self, prefix: &str, name: &str) -> String {
        format!("{prefix}.{name}")
    }
    fn param(self, name: &str) -> String {
        self.code(self.params, name)
    }
    fn guard(self, name: &str) -> String {
        self.code(self.guard, name)
    }
}

/// Barong's `otp_protected!`, always on the owner's 2FA (a service account has none): 2FA off
/// → 400 `2fa_disabled`; no code (or a blank one) → 422 `missing_totp`; a wrong or already
/// used code → 422 `invalid_totp`.
pub(super) async fn otp_protected(
    app: &ResourceState,
    owner: &UserRow,
    params: &Params,
    codes: Codes,
) -> ApiResult<()> {
    if !owner.otp {
        return Err(ApiError::bad_request(codes.guard("2fa_disabled")));
    }
    let Some(code) = params.filled("totp_code") else {
        return Err(ApiError::unprocessable(codes.guard("missing_totp")));
    };
    if !common::verify_totp(&app.secrets, &app.kv, owner, &code).await? {
        return Err(ApiError::unprocessable(codes.guard("invalid_totp")));
    }
    Ok(())
}

/// Grape's `optional …, allow_blank: false`: present but blank is `<prefix>.empty_<name>`.
fn optional(params: &Params, name: &str, prefix: Codes, codes: &mut Vec<String>) -> Option<String> {
    let value = params.text(name)?;
    if value.trim().is_empty() {
        codes.push(prefix.param(&format!("empty_{name}")));
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
    let holder = Holder::user(&user);
    list_keys(
        &app.store,
        async { Ok(holder) },
        USER_CODES,
        Vec::new(),
        &uri,
        &params,
    )
    .await
}

/// One page of the keys of the holder `find` resolves once the parameters passed; `codes`
/// holds refusals of the caller's own parameters, answered with the listing's.
pub(crate) async fn list_keys(
    store: &crate::store::Store,
    find: impl Future<Output = ApiResult<Holder>>,
    prefix: Codes,
    mut codes: Vec<String>,
    uri: &http::Uri,
    params: &Params,
) -> ApiResult<Response> {
    let descending = match params.text("ordering").as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            codes.push(prefix.guard("invalid_ordering"));
            false
        }
    };
    let order_by = params.text("order_by").unwrap_or_else(|| "id".to_string());
    if !api_keys::ORDERABLE.contains(&order_by.as_str()) {
        codes.push(prefix.guard("invalid_attribute"));
    }
    let page = Page::collect(params, &mut codes);
    ApiError::unprocessable_all(codes)?;
    let page = page.ok_or_else(ApiError::internal)?;
    let holder = find.await?;
    let client = store.client().await?;
    let (rows, total) = api_keys::page_for_holder(
        &client,
        holder.kind,
        holder.id,
        &order_by,
        descending,
        page.limit,
        page.offset(),
    )
    .await?;
    let body: Vec<ApiKey> = rows.iter().map(ApiKey::from).collect();
    Ok((StatusCode::OK, page.headers(total, uri), axum::Json(body)).into_response())
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
    let holder = Holder::user(&user);
    create_key(
        &app,
        &user,
        async { Ok(holder) },
        USER_CODES,
        Vec::new(),
        &params,
    )
    .await
}

/// Creates a key for the holder `find` resolves. Barong's order: the parameters (with
/// `codes`, the refusals of the caller's own), then the holder, then the owner's TOTP.
pub(super) async fn create_key(
    app: &ResourceState,
    owner: &UserRow,
    find: impl Future<Output = ApiResult<Holder>>,
    prefix: Codes,
    mut codes: Vec<String>,
    params: &Params,
) -> ApiResult<Response> {
    let algorithm = match params.text("algorithm") {
        None => {
            codes.push(prefix.param("missing_algorithm"));
            codes.push(prefix.param("empty_algorithm"));
            None
        }
        Some(text) if text.trim().is_empty() => {
            codes.push(prefix.param("empty_algorithm"));
            None
        }
        Some(text) => Some(text),
    };
    let scope = optional(params, "scope", prefix, &mut codes);
    ApiError::unprocessable_all(codes)?;
    let holder = find.await?;
    otp_protected(app, owner, params, prefix).await?;
    let algorithm = algorithm.unwrap_or_default();
    let created = service::create(
        &app.store,
        &app.secrets,
        &holder.uid,
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

/// The holder's key `kid`, or Barong's 404 `record.not_found` (another holder's key included).
async fn own_key<C: crate::store::Db>(c: &C, holder: &Holder, kid: &str) -> ApiResult<ApiKeyRow> {
    api_keys::find_for_holder(c, holder.kind, holder.id, kid)
        .await?
        .ok_or_else(|| ApiError::not_found("record.not_found"))
}

async fn update(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    Path(kid): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let holder = Holder::user(&user);
    update_key(
        &app,
        &user,
        async { Ok(holder) },
        USER_CODES,
        Vec::new(),
        &kid,
        &params,
    )
    .await
}

/// Changes the scope and/or state of the holder's key `kid` (see [`create_key`] for `find`
/// and `codes`).
pub(super) async fn update_key(
    app: &ResourceState,
    owner: &UserRow,
    find: impl Future<Output = ApiResult<Holder>>,
    prefix: Codes,
    mut codes: Vec<String>,
    kid: &str,
    params: &Params,
) -> ApiResult<Response> {
    let scope = optional(params, "scope", prefix, &mut codes);
    let state = optional(params, "state", prefix, &mut codes);
    ApiError::unprocessable_all(codes)?;
    let holder = find.await?;
    otp_protected(app, owner, params, prefix).await?;
    let client = app.store.client().await?;
    let key = own_key(&client, &holder, kid).await?;
    let change = KeyChange {
        scope: scope.as_deref(),
        state: state.as_deref(),
    };
    let row = service::update(&client, &key, &holder.state, &change)
        .await
        .map_err(refused)?;
    // This node's gate forgets the key at once; the others on the change notice.
    app.api_keys.invalidate(kid);
    Ok(entity(StatusCode::OK, ApiKey::from(&row)))
}

async fn remove(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    Path(kid): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let holder = Holder::user(&user);
    remove_key(
        &app,
        &user,
        async { Ok(holder) },
        USER_CODES,
        Vec::new(),
        &kid,
        &params,
    )
    .await
}

/// Deletes the holder's key `kid` (see [`create_key`] for `find` and `codes`).
pub(super) async fn remove_key(
    app: &ResourceState,
    owner: &UserRow,
    find: impl Future<Output = ApiResult<Holder>>,
    prefix: Codes,
    codes: Vec<String>,
    kid: &str,
    params: &Params,
) -> ApiResult<Response> {
    ApiError::unprocessable_all(codes)?;
    let holder = find.await?;
    otp_protected(app, owner, params, prefix).await?;
    let client = app.store.client().await?;
    let key = own_key(&client, &holder, kid).await?;
    api_keys::delete(&client, key.id).await?;
    app.api_keys.invalidate(kid);
    Ok(StatusCode::NO_CONTENT.into_response())
}
