//! `POST /identity/sessions` (login) and `DELETE /identity/sessions` (logout).
//!
//! Login differs from Barong on purpose (decisions.md #6, #12): the password is checked before
//! the account state is revealed, and every login gets a new session id. Attempts are limited
//! per client address and per account, across nodes.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use crate::api::entities::UserWithFullInfo;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::api::{Base, Doc, Endpoint, Guard, In, param};
use crate::app::App;
use crate::authn::passwords::Verified;
use crate::authn::rate_limit::RateVerdict;
use crate::authn::{sessions, totp};
use crate::domain::state;
use crate::store::activities::{self, NewActivity};
use crate::store::{self, users};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            doc: Doc {
                method: "POST",
                base: Base::Mount,
                path: "identity/sessions",
                tag: "identity",
                summary: "Start a new session",
                params: const {
                    &[
                        param("email", In::Body, true, "Account email"),
                        param("password", In::Body, true, "Account password"),
                        param(
                            "captcha_response",
                            In::Body,
                            false,
                            "Response from captcha widget",
                        ),
                        param(
                            "otp_code",
                            In::Body,
                            false,
                            "Code from Google Authenticator",
                        ),
                    ]
                },
                responses: &[
                    (
                        200,
                        "Session started: UserWithFullInfo with csrf_token, and the session cookie",
                    ),
                    (
                        401,
                        "identity.session.invalid_params, banned, deleted, not_active, missing_otp",
                    ),
                    (403, "identity.session.invalid_otp"),
                    (
                        422,
                        "identity.session.missing_email, missing_password, invalid_captcha_format",
                    ),
                    (429, "identity.session.too_many_attempts (see Retry-After)"),
                ],
            },
            guard: Guard::Restrictions,
            handler: post(create),
        },
        Endpoint {
            doc: Doc {
                method: "DELETE",
                base: Base::Mount,
                path: "identity/sessions",
                tag: "identity",
                summary: "Destroy current session",
                params: &[],
                responses: &[
                    (200, "Session destroyed, cookie cleared"),
                    (404, "identity.session.not_found"),
                ],
            },
            guard: Guard::Restrictions,
            handler: delete(destroy),
        },
    ]
}

/// What is known of the caller, for activities and the session binding.
struct Caller {
    ip: IpAddr,
    user_agent: String,
}

impl Caller {
    fn of(app: &App, peer: SocketAddr, headers: &HeaderMap) -> Caller {
        Caller {
            ip: app.client_ip.resolve(peer.ip(), headers),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
        }
    }

    fn activity(
        &self,
        user_id: i64,
        topic: &str,
        action: &str,
        result: &'static str,
        data: Option<String>,
    ) -> NewActivity {
        NewActivity {
            user_id: Some(user_id),
            target_uid: None,
            category: "user",
            user_ip: self.ip.to_string(),
            user_ip_country: None,
            user_agent: self.user_agent.clone(),
            topic: topic.into(),
            action: action.into(),
            result,
            data,
        }
    }
}

fn reason(code: &str) -> Option<String> {
    Some(json!({ "reason": code }).to_string())
}

async fn record(app: &App, activity: NewActivity) -> ApiResult<()> {
    let client = app.store.client().await?;
    activities::insert(&client, &activity).await?;
    Ok(())
}

async fn create(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    let mut missing = Vec::new();
    if !params.has("email") {
        missing.push("identity.session.missing_email".to_string());
    }
    if !params.has("password") {
        missing.push("identity.session.missing_password".to_string());
    }
    if !missing.is_empty() {
        return Err(ApiError::many(StatusCode::UNPROCESSABLE_ENTITY, missing));
    }
    if let Some(captcha) = params.get("captcha_response")
        && !(captcha.is_string() || captcha.is_object() || captcha.is_null())
    {
        return Err(ApiError::unprocessable(
            "identity.session.invalid_captcha_format",
        ));
    }
    let email = params.text("email").unwrap_or_default();
    let password = params.text("password").unwrap_or_default();
    let caller = Caller::of(&app, peer, &headers);

    let limits = &app.settings.rate_limits;
    for (name, subject, limit) in [
        ("login_ip", caller.ip.to_string(), limits.login_per_ip),
        (
            "login_account",
            email.trim().to_lowercase(),
            limits.login_per_account,
        ),
    ] {
        if let RateVerdict::Limited { retry_after } =
            app.rate_limiter.hit(name, &subject, limit).await?
        {
            return Err(ApiError::too_many(
                "identity.session.too_many_attempts",
                retry_after,
            ));
        }
    }

    let client = app.store.client().await?;
    let user = users::find_by_email(&client, email.trim()).await?;
    drop(client);
    let verified = app
        .hasher
        .verify(&password, user.as_ref().map(|u| u.password_digest.as_str()))
        .await;
    let Some(user) = user else {
        return Err(ApiError::unauthorized("identity.session.invalid_params"));
    };
    if verified == Verified::No {
        record(
            &app,
            caller.activity(
                user.id,
                "session",
                "login",
                "failed",
                reason("identity.session.invalid_params"),
            ),
        )
        .await?;
        return Err(ApiError::unauthorized("identity.session.invalid_params"));
    }
    let state_error = match user.state.as_str() {
        state::BANNED => Some("identity.session.banned"),
        state::DELETED => Some("identity.session.deleted"),
        s if !state::may_authenticate(s) => Some("identity.session.not_active"),
        _ => None,
    };
    if let Some(code) = state_error {
        record(
            &app,
            caller.activity(user.id, "session", "login", "failed", reason(code)),
        )
        .await?;
        return Err(ApiError::unauthorized(code));
    }
    if verified == Verified::YesRehash {
        let digest = app.hasher.hash(&password).await;
        let client = app.store.client().await?;
        users::set_password_digest(&client, user.id, &digest).await?;
    }

    let action = if user.otp {
        let Some(code) = params.filled("otp_code") else {
            return Err(ApiError::unauthorized("identity.session.missing_otp"));
        };
        if !verify_totp(&app, &user, &code).await? {
            record(
                &app,
                caller.activity(
                    user.id,
                    "session",
                    "login::2fa",
                    "failed",
                    reason("identity.session.invalid_otp"),
                ),
            )
            .await?;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "identity.session.invalid_otp",
            ));
        }
        "login::2fa"
    } else {
        "login"
    };

    // A new id at every login: a session id planted before login is worth nothing after it.
    if let Some(old) = app.sessions().id_from(&headers)
        && let Some(previous) = app.sessions().load(old).await?
    {
        app.sessions().destroy(old, &previous.uid).await?;
    }
    let opened = app
        .sessions()
        .open(&user.uid, caller.ip, &caller.user_agent)
        .await?;

    let mut client = app.store.client().await?;
    let body =
        UserWithFullInfo::load(&client, app.secrets(), &user, Some(opened.csrf_token)).await?;
    let tx = client
        .transaction()
        .await
        .map_err(store::StoreError::from)?;
    activities::insert(
        &tx,
        &caller.activity(user.id, "session", action, "succeed", None),
    )
    .await?;
    let event = json!({ "record": {
        "user": crate::events::user_record(&user, body.referral_uid.as_deref()),
        "user_ip": caller.ip.to_string(),
        "user_agent": caller.user_agent,
    }});
    app.events
        .emit(&tx, "system.session.create", &event)
        .await?;
    tx.commit().await.map_err(store::StoreError::from)?;
    app.events.ring();

    let mut response = (StatusCode::OK, Json(body)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&app.sessions().cookie(&opened.id))
            .map_err(|_| ApiError::internal())?,
    );
    Ok(response)
}

/// Checks a TOTP code and burns it: the same code is not accepted twice.
pub async fn verify_totp(app: &App, user: &users::UserRow, code: &str) -> ApiResult<bool> {
    let Some(sealed) = user.otp_secret_encrypted.as_deref() else {
        return Ok(false);
    };
    let secret = app
        .secrets()
        .open(&totp_context(&user.uid), sealed)
        .map_err(|err| {
            tracing::error!(uid = %user.uid, error = %err, "TOTP secret does not open");
            ApiError::internal()
        })?;
    let Some(step) = totp::matching_step(&secret, code, sessions::now()) else {
        return Ok(false);
    };
    let key = app.kv.key(&format!("totp_used:{}:{step}", user.uid));
    let ttl_ms = ((totp::SKEW * 2 + 2) * totp::STEP * 1000) as u64;
    Ok(app.kv.set_nx_px(&key, "1", ttl_ms).await?)
}

/// The sealing context of a user's TOTP secret.
pub fn totp_context(uid: &str) -> String {
    format!("totp:{uid}")
}

async fn destroy(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let not_found = || ApiError::not_found("identity.session.not_found");
    let id = app.sessions().id_from(&headers).ok_or_else(not_found)?;
    let session = app.sessions().load(id).await?.ok_or_else(not_found)?;
    let client = app.store.client().await?;
    let user = users::find_by_uid(&client, &session.uid).await?;
    app.sessions().destroy(id, &session.uid).await?;
    if let Some(user) = user {
        let caller = Caller::of(&app, peer, &headers);
        activities::insert(
            &client,
            &caller.activity(user.id, "session", "logout", "succeed", None),
        )
        .await?;
    }
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&app.sessions().clear_cookie()).map_err(|_| ApiError::internal())?,
    );
    Ok(response)
}
