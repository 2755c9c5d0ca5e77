//! `POST /identity/sessions` (login), `DELETE /identity/sessions` (logout), and the steps
//! every login shares (state checks, 2FA, recording the login and answering with a session),
//! which the Auth0 login (`auth0.rs`) passes too (decisions.md #7).
//!
//! Login differs from Barong on purpose (decisions.md #6, #12): the password is checked before
//! the account state is revealed, and every login gets a new session id. Attempts are limited
//! per client address and per account, across nodes.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use super::IdentityState;
use super::common::{self, Caller, reason};
use crate::api::entities::UserWithFullInfo;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::authn::captcha;
use crate::authn::passwords::Verified;
use crate::domain::state;
use crate::routes::{Base, Doc, Endpoint, Guard, In, param, reply, returns};
use crate::store::activities;
use crate::store::{StoreError, Transaction, users};

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    IdentityState: axum::extract::FromRef<S>,
{
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
                responses: const {
                    &[
                        returns::<UserWithFullInfo>(
                            200,
                            "Session started: UserWithFullInfo with csrf_token, and the session cookie",
                        ),
                        reply(
                            400,
                            "identity.captcha.required, identity.captcha.mandatory_fields",
                        ),
                        reply(
                            401,
                            "identity.session.invalid_params, banned, deleted, not_active, missing_otp",
                        ),
                        reply(
                            403,
                            "identity.session.invalid_otp, request.cross_site_form (another site's form)",
                        ),
                        reply(
                            422,
                            "identity.session.missing_email, missing_password, invalid_captcha_format, identity.captcha.verification_failed",
                        ),
                        reply(429, "identity.session.too_many_attempts (see Retry-After)"),
                    ]
                },
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
                responses: const {
                    &[
                        reply(200, "Session destroyed, cookie cleared"),
                        reply(404, "identity.session.not_found"),
                    ]
                },
            },
            guard: Guard::Restrictions,
            handler: delete(destroy),
        },
    ]
}

/// The state checks every login passes (Barong §7.4, applied to Auth0 too).
fn state_error(user_state: &str) -> Option<&'static str> {
    match user_state {
        state::BANNED => Some("identity.session.banned"),
        state::DELETED => Some("identity.session.deleted"),
        s if !state::may_authenticate(s) => Some("identity.session.not_active"),
        _ => None,
    }
}

/// Counts a login by outcome (`ok` or the error code), for `/metrics`.
fn count_login(outcome: &'static str) {
    metrics::counter!("portcullis_logins_total", "outcome" => outcome).increment(1);
}

/// Refuses a login to a known account with 401 `code`, recorded on the account.
pub(super) async fn refuse_login<T>(
    app: &IdentityState,
    user: &users::UserRow,
    caller: &Caller,
    code: &'static str,
) -> ApiResult<T> {
    let activity = caller.activity(user.id, "session", "login", "failed", reason(code));
    common::record(&app.store, activity).await;
    count_login(code);
    Err(ApiError::unauthorized(code))
}

/// Refuses (and records) a login to an account that may not log in.
pub(super) async fn refuse_inactive(
    app: &IdentityState,
    user: &users::UserRow,
    caller: &Caller,
) -> ApiResult<()> {
    match state_error(&user.state) {
        Some(code) => refuse_login(app, user, caller, code).await,
        None => Ok(()),
    }
}

/// Limits login attempts per client address.
pub(super) async fn limit_address(app: &IdentityState, caller: &Caller) -> ApiResult<()> {
    common::limit_caller(
        app,
        "login_ip",
        caller,
        app.settings.rate_limits.login_per_ip,
        "identity.session.too_many_attempts",
    )
    .await
}

/// 2FA for a user who enabled it: a fresh code is required; returns the activity action.
pub(super) async fn second_factor(
    app: &IdentityState,
    user: &users::UserRow,
    caller: &Caller,
    params: &Params,
) -> ApiResult<&'static str> {
    if !user.otp {
        return Ok("login");
    }
    let Some(code) = params.filled("otp_code") else {
        return Err(ApiError::unauthorized("identity.session.missing_otp"));
    };
    if !common::verify_totp(app.secrets(), &app.kv, user, &code).await? {
        common::record(
            &app.store,
            caller.activity(
                user.id,
                "session",
                "login::2fa",
                "failed",
                reason("identity.session.invalid_otp"),
            ),
        )
        .await;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "identity.session.invalid_otp",
        ));
    }
    Ok("login::2fa")
}

/// Records the login and its event in `tx`, which may already hold other writes of the login:
/// they commit together or not at all.
pub(super) async fn record_login(
    app: &IdentityState,
    tx: Transaction<'_>,
    user: &users::UserRow,
    caller: &Caller,
    action: &str,
) -> ApiResult<()> {
    activities::insert(
        &tx,
        &caller.activity(user.id, "session", action, "succeed", None),
    )
    .await?;
    let event = json!({ "record": {
        "user": crate::events::user_record_of(&tx, user).await?,
        "user_ip": caller.ip.to_string(),
        "user_agent": caller.user_agent,
    }});
    app.events
        .emit(&tx, "system.session.create", &event)
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.events.ring();
    count_login("ok");
    Ok(())
}

/// Records the login, then answers with a new session.
async fn complete_login(
    app: &IdentityState,
    headers: &HeaderMap,
    user: &users::UserRow,
    caller: &Caller,
    action: &str,
    status: StatusCode,
) -> ApiResult<Response> {
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    record_login(app, tx, user, caller, action).await?;
    // The answer takes a connection of its own: holding this one too would let a few
    // concurrent logins drain the pool and wait on each other.
    drop(client);
    common::session_response(app, headers, user, caller, status).await
}

async fn create(
    State(app): State<IdentityState>,
    caller: Caller,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    common::refuse_cross_site_form(&app, &headers)?;
    let values = common::require(&params, "identity.session", &["email", "password"], true)?;
    let (email, password) = (values[0].clone(), values[1].clone());
    if let Some(captcha) = params.get("captcha_response")
        && !(captcha.is_string() || captcha.is_object() || captcha.is_null())
    {
        return Err(ApiError::unprocessable(
            "identity.session.invalid_captcha_format",
        ));
    }
    captcha::verify(
        &app.settings.captcha,
        &app.outbound,
        captcha::SESSION_CREATE,
        params.get("captcha_response"),
    )
    .await?;
    limit_address(&app, &caller).await?;
    let client = app.store.client().await?;
    let user = users::find_by_email(&client, email.trim()).await?;
    drop(client);
    common::limit_account(
        &app,
        "login_account",
        user.as_ref(),
        &email,
        app.settings.rate_limits.login_per_account,
        "identity.session.too_many_attempts",
    )
    .await?;
    let verified = app
        .hasher
        .verify(&password, user.as_ref().map(|u| u.password_digest.as_str()))
        .await;
    let Some(user) = user else {
        count_login("identity.session.invalid_params");
        return Err(ApiError::unauthorized("identity.session.invalid_params"));
    };
    if verified == Verified::No {
        return refuse_login(&app, &user, &caller, "identity.session.invalid_params").await;
    }
    refuse_inactive(&app, &user, &caller).await?;
    if verified == Verified::YesRehash {
        let digest = app.hasher.hash(&password).await;
        let client = app.store.client().await?;
        users::set_password_digest(&client, user.id, &digest).await?;
    }
    let action = second_factor(&app, &user, &caller, &params).await?;
    complete_login(&app, &headers, &user, &caller, action, StatusCode::OK).await
}

async fn destroy(
    State(app): State<IdentityState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let not_found = || ApiError::not_found("identity.session.not_found");
    let id = app.sessions().id_from(&headers).ok_or_else(not_found)?;
    let session = app.sessions().load(id).await?.ok_or_else(not_found)?;
    let client = app.store.client().await?;
    let user = users::find_by_uid(&client, &session.uid).await?;
    app.sessions().destroy(id, &session.uid).await?;
    if let Some(user) = user {
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
