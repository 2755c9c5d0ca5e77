//! `POST <prefix>/refresh` (rotation, with reuse detection) and `POST <prefix>/signout`.

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode, header};

use super::entities::BackOfficeTokens;
use super::{BackOfficeState, limit, limit_address, record_failure};
use crate::api::entities::entity;
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::Caller;
use crate::api::params::Params;
use crate::api::readers::{refuse, required_text};
use crate::authn::backoffice::FAMILY_CLAIM;
use crate::routes::{Base, Doc, Endpoint, Guard, In, param, reply, returns};
use crate::services::backoffice::RefreshRefusal;
use crate::store::{activities, users};

/// 401: the refresh token is unknown, expired or revoked.
const INVALID_REFRESH_TOKEN: &str = "backoffice.invalid_refresh_token";
/// 401: the refresh token was already exchanged; its family is now revoked.
const REFRESH_TOKEN_REUSED: &str = "backoffice.refresh_token_reused";
/// 401: the access token is missing, not ours, expired, or of an ended family.
const INVALID_ACCESS_TOKEN: &str = "backoffice.invalid_access_token";

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    BackOfficeState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    vec![
        Endpoint {
            doc: Doc {
                method: "POST",
                base: Base::BackOffice,
                path: "refresh",
                tag: "backoffice",
                summary: "Refresh the access token",
                params: const {
                    &[param(
                        "refreshToken",
                        In::Body,
                        true,
                        "The refresh token issued for a user (each is accepted once)",
                    )]
                },
                responses: const {
                    &[
                        returns::<BackOfficeTokens>(
                            200,
                            "A new accessToken and refreshToken; the presented one is spent",
                        ),
                        reply(
                            401,
                            "backoffice.invalid_refresh_token (unknown, expired, revoked, or a user who may no longer sign in), backoffice.refresh_token_reused (presented twice: every token of its sign-in is revoked)",
                        ),
                        reply(422, "backoffice.missing_refreshToken, empty_refreshToken"),
                        reply(
                            429,
                            "backoffice.too_many_attempts (address or token locked out; see Retry-After)",
                        ),
                    ]
                },
            },
            guard: Guard::Restrictions,
            handler: post(refresh),
        },
        Endpoint {
            doc: Doc {
                method: "POST",
                base: Base::BackOffice,
                path: "signout",
                tag: "backoffice",
                summary: "Sign out of the Back Office",
                params: &[],
                responses: const {
                    &[
                        reply(
                            200,
                            "Signed out: the sign-in's access and refresh tokens are revoked on every node",
                        ),
                        reply(
                            401,
                            "backoffice.invalid_access_token (Authorization: Bearer <access token> missing, expired or revoked)",
                        ),
                    ]
                },
            },
            guard: Guard::Restrictions,
            handler: post(signout),
        },
    ]
}

async fn refresh(
    State(app): State<BackOfficeState>,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    let mut codes = Vec::new();
    let presented = required_text(&params, "backoffice", "refreshToken", &mut codes);
    refuse(codes)?;
    let presented = presented.unwrap_or_default();
    let limits = &app.settings.backoffice;
    limit_address(&app, "bo_refresh_ip", &caller, limits.refresh).await?;
    limit(&app, "bo_refresh_token", &presented, limits.refresh).await?;
    match app.tokens.refresh(&presented).await {
        Ok((user, pair)) => {
            let client = app.store.client().await?;
            activities::insert(
                &client,
                &caller.activity(user.id, "backoffice", "refresh", "succeed", None),
            )
            .await?;
            Ok(entity(StatusCode::OK, BackOfficeTokens::from(&pair)))
        }
        Err(RefreshRefusal::Invalid) => Err(ApiError::unauthorized(INVALID_REFRESH_TOKEN)),
        Err(RefreshRefusal::Reused { user_id, family }) => {
            // Two parties held this sign-in's tokens: one of them stole it.
            tracing::warn!(user_id, family = %family, ip = %caller.ip,
                "back office refresh token presented twice: its sign-in is revoked");
            metrics::counter!("portcullis_backoffice_refresh_reuse_total").increment(1);
            record_failure(&app, &caller, user_id, "refresh", REFRESH_TOKEN_REUSED).await;
            Err(ApiError::unauthorized(REFRESH_TOKEN_REUSED))
        }
        Err(RefreshRefusal::NotAllowed { user_id }) => {
            record_failure(
                &app,
                &caller,
                user_id,
                "refresh",
                "backoffice.not_staff_or_not_active",
            )
            .await;
            Err(ApiError::unauthorized(INVALID_REFRESH_TOKEN))
        }
        Err(RefreshRefusal::Store(err)) => Err(err.into()),
        Err(RefreshRefusal::Kv(err)) => Err(err.into()),
    }
}

async fn signout(
    State(app): State<BackOfficeState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let invalid = || ApiError::unauthorized(INVALID_ACCESS_TOKEN);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(invalid)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = app
        .tokens
        .issuer
        .verify_access(token.trim(), now)
        .ok_or_else(invalid)?;
    let (Some(family), Some(uid)) = (
        claims.get(FAMILY_CLAIM).and_then(|v| v.as_str()),
        claims.get("uid").and_then(|v| v.as_str()),
    ) else {
        return Err(invalid());
    };
    if !app.tokens.families.is_active(family).await? {
        return Err(invalid());
    }
    app.tokens.end_family(family).await?;
    let client = app.store.client().await?;
    if let Some(user) = users::find_by_uid(&client, uid).await? {
        activities::insert(
            &client,
            &caller.activity(user.id, "backoffice", "signout", "succeed", None),
        )
        .await?;
    }
    Ok(StatusCode::OK.into_response())
}
