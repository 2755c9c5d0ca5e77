//! `/resource/service_accounts`: the machine identities a user owns, and their API keys
//! (Barong §8.8). The keys are managed as the user's own are (`api_keys`), guarded by the
//! owner's 2FA and TOTP, under Barong's `resource.service_accounts.*` codes; a service account
//! the user does not own is 404 `resource.service_account.doesnt_exist`.

use axum::extract::{FromRef, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use http::StatusCode;

use super::api_keys::{Codes, Holder, LISTING, create_key, list_keys, remove_key, update_key};
use super::{CurrentUser, ResourceState};
use crate::api::entities::{ApiKey, ApiKeyWithSecret, ServiceAccount};
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::domain::subject::SubjectKind;
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns, returns_list};
use crate::services::api_keys::{ALGORITHM, STATES};
use crate::store::service_accounts;
use crate::store::users::UserRow;

/// Barong's codes for these routes: parameter codes derived from the class name, the guard's
/// and the listing's written by hand.
const CODES: Codes = Codes {
    params: "resource.serviceaccount",
    guard: "resource.service_accounts",
};
const NOT_OWNED: &str = "resource.service_account.doesnt_exist";

const UID_BODY: Param = param("service_account_uid", In::Body, true, "Service account uid");
const UID_QUERY: Param = param(
    "service_account_uid",
    In::Query,
    true,
    "Service account uid",
);
const KID: Param = param("kid", In::Path, true, "API key kid");
const TOTP_BODY: Param = param(
    "totp_code",
    In::Body,
    true,
    "Code from Google Authenticator",
);
const TOTP_QUERY: Param = param(
    "totp_code",
    In::Query,
    true,
    "Code from Google Authenticator",
);
const GUARD_400: &str = "resource.service_accounts.2fa_disabled";
const GUARD_422: &str = "resource.serviceaccount.missing_service_account_uid, resource.service_accounts.missing_totp, resource.service_accounts.invalid_totp (each code is accepted once)";

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
{
    let keys = "resource/service_accounts/api_keys";
    let by_kid = "resource/service_accounts/api_keys/{kid}";
    vec![
        Endpoint {
            doc: super::doc(
                "GET",
                "resource/service_accounts",
                "List all service accounts for current user",
                &[],
                const {
                    &[
                        returns_list::<ServiceAccount>(200, "Oldest first"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(list),
        },
        Endpoint {
            doc: super::doc(
                "GET",
                keys,
                "List all api keys for specific service account",
                const { &[LISTING[0], LISTING[1], LISTING[2], LISTING[3], UID_QUERY] },
                const {
                    &[
                        returns_list::<ApiKey>(
                            200,
                            "The service account's keys, without secrets; headers Total, Page, Per-Page",
                        ),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(404, NOT_OWNED),
                        reply(
                            422,
                            "resource.serviceaccount.missing_service_account_uid, resource.service_accounts.invalid_ordering, resource.service_accounts.invalid_attribute, non_integer_page, non_positive_page, non_integer_limit, invalid_limit",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(list_keys_of),
        },
        Endpoint {
            doc: super::doc(
                "POST",
                keys,
                "Create api key for specific service account",
                const {
                    &[
                        UID_BODY,
                        param("algorithm", In::Body, true, "API key algorithm")
                            .one_of(&[ALGORITHM]),
                        param("scope", In::Body, false, "Comma separated scopes"),
                        TOTP_BODY,
                    ]
                },
                const {
                    &[
                        returns::<ApiKeyWithSecret>(
                            201,
                            "The new key, with its secret: the only time it is shown",
                        ),
                        reply(400, GUARD_400),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(404, NOT_OWNED),
                        reply(
                            422,
                            "resource.serviceaccount.missing_algorithm, empty_algorithm, empty_scope, missing_service_account_uid; resource.service_accounts.missing_totp, invalid_totp; algorithm.inclusion, key_holder_account.invalid",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(create),
        },
        Endpoint {
            doc: super::doc(
                "PUT",
                by_kid,
                "Updates an api key of a service account",
                const {
                    &[
                        UID_BODY,
                        KID,
                        param("scope", In::Body, false, "Comma separated scopes"),
                        param(
                            "state",
                            In::Body,
                            false,
                            "State of the key: only an active key can be used",
                        )
                        .one_of(STATES),
                        TOTP_BODY,
                    ]
                },
                const {
                    &[
                        returns::<ApiKey>(200, "The key, without its secret"),
                        reply(400, GUARD_400),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            404,
                            "resource.service_account.doesnt_exist, record.not_found",
                        ),
                        reply(
                            422,
                            "resource.serviceaccount.empty_scope, empty_state, missing_service_account_uid; resource.service_accounts.missing_totp, invalid_totp; state.inclusion, state.invalid",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: put(update),
        },
        Endpoint {
            doc: super::doc(
                "DELETE",
                by_kid,
                "Delete an api key for specific service account",
                const { &[UID_QUERY, KID, TOTP_QUERY] },
                const {
                    &[
                        reply(204, "Deleted"),
                        reply(400, GUARD_400),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            404,
                            "resource.service_account.doesnt_exist, record.not_found",
                        ),
                        reply(422, GUARD_422),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: delete(remove),
        },
    ]
}

async fn list(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Response> {
    let client = app.store.client().await?;
    let rows = service_accounts::owned_by(&client, user.id).await?;
    let body: Vec<ServiceAccount> = rows.iter().map(ServiceAccount::from).collect();
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// `service_account_uid`, required; its refusal joins the other parameter codes.
fn account_uid(params: &Params, codes: &mut Vec<String>) -> String {
    match params.filled("service_account_uid") {
        Some(uid) => uid,
        None => {
            codes.push(format!("{}.missing_service_account_uid", CODES.params));
            String::new()
        }
    }
}

/// The service account `uid` when `owner` owns it.
async fn owned(app: &ResourceState, owner: &UserRow, uid: &str) -> ApiResult<Holder> {
    let client = app.store.client().await?;
    let account = service_accounts::owned_subject(&client, owner.id, uid)
        .await?
        .ok_or_else(|| ApiError::not_found(NOT_OWNED))?;
    Ok(Holder {
        kind: SubjectKind::ServiceAccount,
        id: account.id,
        uid: account.uid,
        state: account.state,
    })
}

async fn list_keys_of(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    uri: http::Uri,
    params: Params,
) -> ApiResult<Response> {
    let mut codes = Vec::new();
    let uid = account_uid(&params, &mut codes);
    let holder = owned(&app, &user, &uid);
    list_keys(&app.store, holder, CODES, codes, &uri, &params).await
}

async fn create(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    params: Params,
) -> ApiResult<Response> {
    let mut codes = Vec::new();
    let uid = account_uid(&params, &mut codes);
    create_key(&app, &user, owned(&app, &user, &uid), CODES, codes, &params).await
}

async fn update(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    Path(kid): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let mut codes = Vec::new();
    let uid = account_uid(&params, &mut codes);
    let holder = owned(&app, &user, &uid);
    update_key(&app, &user, holder, CODES, codes, &kid, &params).await
}

async fn remove(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    Path(kid): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let mut codes = Vec::new();
    let uid = account_uid(&params, &mut codes);
    let holder = owned(&app, &user, &uid);
    remove_key(&app, &user, holder, CODES, codes, &kid, &params).await
}
