//! Emailed tokens: email confirmation (`/identity/users/email/generate_code`, `confirm_code`)
//! and password reset (`/identity/users/password/generate_code`, `confirm_code`), Barong §7.2,
//! §7.3.
//!
//! Tokens are JWTs signed with our key (`sub` confirmation or reset), single use: a token's
//! `jti` is burned in Redis when it is redeemed. For resets only the newest link works. The
//! code-requesting endpoints answer 201 whether or not the account exists.

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::IdentityState;
use super::common::{self, Caller, reason};
use crate::api::entities::UserWithFullInfo;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::authn::{captcha, sessions};
use crate::domain::{password_policy, state};
use crate::routes::{Base, Doc, Endpoint, Guard, In, Param, Reply, param, reply, returns};
use crate::services::passwords::{self, Replacement};
use crate::store::users::UserRow;
use crate::store::{Db, StoreError, activities, users};

pub const CONFIRMATION: &str = "confirmation";
pub const RESET: &str = "reset";

/// Asking for a confirmation or reset email: the same parameters and answers.
const CODE_REQUEST_PARAMS: &[Param] = &[
    param("email", In::Body, true, "Account email"),
    param(
        "captcha_response",
        In::Body,
        false,
        "Response from captcha widget",
    ),
];
const CODE_REQUEST_REPLIES: &[Reply] = &[
    reply(201, "Accepted (whether or not the account exists)"),
    reply(400, "identity.captcha.required"),
    reply(
        422,
        "identity.user.missing_email, empty_email, identity.captcha.verification_failed",
    ),
    reply(429, "identity.user.too_many_attempts"),
];

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    IdentityState: axum::extract::FromRef<S>,
{
    let doc = |method, path, summary, params, responses| Doc {
        method,
        base: Base::Mount,
        path,
        tag: "identity",
        summary,
        params,
        responses,
    };
    vec![
        Endpoint {
            doc: doc(
                "POST",
                "identity/users/email/generate_code",
                "Send confirmations instructions",
                CODE_REQUEST_PARAMS,
                CODE_REQUEST_REPLIES,
            ),
            guard: Guard::Restrictions,
            handler: post(email_generate),
        },
        Endpoint {
            doc: doc(
                "POST",
                "identity/users/email/confirm_code",
                "Confirms an account",
                const { &[param("token", In::Body, true, "Token from email")] },
                const {
                    &[
                        returns::<UserWithFullInfo>(
                            201,
                            "Confirmed: UserWithFullInfo with csrf_token, and the session cookie",
                        ),
                        reply(
                            422,
                            "identity.user.missing_token, empty_token, active_or_doesnt_exist, utilized_token, jwt.decode_and_verify.*",
                        ),
                        reply(403, "request.cross_site_form (another site's form)"),
                        reply(429, "identity.user.too_many_attempts"),
                    ]
                },
            ),
            guard: Guard::Restrictions,
            handler: post(email_confirm),
        },
        Endpoint {
            doc: doc(
                "POST",
                "identity/users/password/generate_code",
                "Send password reset instructions",
                CODE_REQUEST_PARAMS,
                CODE_REQUEST_REPLIES,
            ),
            guard: Guard::Restrictions,
            handler: post(password_generate),
        },
        Endpoint {
            doc: doc(
                "POST",
                "identity/users/password/confirm_code",
                "Sets new account password",
                const {
                    &[
                        param("reset_password_token", In::Body, true, "Token from email"),
                        param("password", In::Body, true, "User password"),
                        param("confirm_password", In::Body, true, "User password"),
                    ]
                },
                const {
                    &[
                        reply(201, "Password set; every session of the account ended"),
                        reply(404, "record.not_found"),
                        reply(
                            422,
                            "identity.user.missing_pass_token, empty_reset_password_token, missing_password, empty_password, missing_confirm_password, empty_confirm_password, passwords_doesnt_match, utilized_token, jwt.decode_and_verify.*, password.requirements, password.weak",
                        ),
                        reply(429, "identity.user.too_many_attempts"),
                    ]
                },
            ),
            guard: Guard::Restrictions,
            handler: post(password_confirm),
        },
    ]
}

/// Queues the confirmation email of `user` (event `system.user.email.confirmation.token`).
pub async fn send_confirmation<C: Db>(app: &IdentityState, c: &C, user: &UserRow) -> ApiResult<()> {
    let token = app.issuer().sign_standard(
        CONFIRMATION,
        json!({ "email": user.email, "uid": user.uid }),
        sessions::now(),
    );
    let record = json!({ "record": {
        "user": crate::events::user_record_of(c, user).await?,
        "domain": app.settings.app.domain,
        "token": token,
    }});
    app.events
        .emit(c, "system.user.email.confirmation.token", &record)
        .await?;
    Ok(())
}

/// The claims of an emailed token, or Barong's 422 `jwt.decode_and_verify.<word>`.
fn verify(app: &IdentityState, token: &str, sub: &str) -> ApiResult<Map<String, Value>> {
    app.issuer()
        .verify(token, Some(sub), sessions::now())
        .map_err(|e| ApiError::unprocessable(format!("jwt.decode_and_verify.{}", e.word())))
}

/// Marks the token's `jti` used; false when it already was (single use across nodes).
async fn burn(app: &IdentityState, claims: &Map<String, Value>) -> ApiResult<bool> {
    let jti = claims.get("jti").and_then(Value::as_str).unwrap_or("");
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let ttl_ms = ((exp - sessions::now()).max(1) as u64) * 1000;
    Ok(app
        .kv
        .set_nx_px(&app.kv.key(&format!("utilized:{jti}")), "utilized", ttl_ms)
        .await?)
}

async fn is_burned(app: &IdentityState, claims: &Map<String, Value>) -> ApiResult<bool> {
    let jti = claims.get("jti").and_then(Value::as_str).unwrap_or("");
    Ok(app
        .kv
        .get(&app.kv.key(&format!("utilized:{jti}")))
        .await?
        .is_some())
}

fn too_many() -> &'static str {
    "identity.user.too_many_attempts"
}

async fn email_generate(
    State(app): State<IdentityState>,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    let email = common::require(&params, "identity.user", &["email"], false)?.remove(0);
    let settings = &app.settings;
    captcha::verify(
        &settings.captcha,
        &app.outbound,
        captcha::EMAIL_CONFIRMATION,
        params.get("captcha_response"),
    )
    .await?;
    let limits = &settings.rate_limits;
    common::limit_caller(
        &app,
        "email_code_ip",
        &caller,
        limits.email_code_per_ip,
        too_many(),
    )
    .await?;
    let mut client = app.store.client().await?;
    let user = users::find_by_email(&client, email.trim()).await?;
    common::limit_account(
        &app,
        "email_code_account",
        user.as_ref(),
        &email,
        limits.email_code_per_account,
        too_many(),
    )
    .await?;
    // Unknown or already active: the same 201, so the answer says nothing about the account.
    if let Some(user) = user
        && user.state != state::ACTIVE
    {
        let tx = client.transaction().await.map_err(StoreError::from)?;
        send_confirmation(&app, &tx, &user).await?;
        tx.commit().await.map_err(StoreError::from)?;
        app.events.ring();
    }
    Ok(common::accepted())
}

async fn email_confirm(
    State(app): State<IdentityState>,
    caller: Caller,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    common::refuse_cross_site_form(&app, &headers)?;
    let token = common::require(&params, "identity.user", &["token"], false)?.remove(0);
    common::limit_caller(
        &app,
        "token_ip",
        &caller,
        app.settings.rate_limits.token_per_ip,
        too_many(),
    )
    .await?;
    let claims = verify(&app, &token, CONFIRMATION)?;
    let email = claims.get("email").and_then(Value::as_str).unwrap_or("");
    let mut client = app.store.client().await?;
    let user = users::find_by_email(&client, email)
        .await?
        .filter(|u| u.state != state::ACTIVE)
        .ok_or_else(|| ApiError::unprocessable("identity.user.active_or_doesnt_exist"))?;
    if !burn(&app, &claims).await? {
        return Err(ApiError::unprocessable("identity.user.utilized_token"));
    }
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let user = common::verify_email(&app, &tx, &user).await?;
    let record = json!({ "record": {
        "user": crate::events::user_record_of(&tx, &user).await?,
        "domain": app.settings.app.domain,
    }});
    app.events
        .emit(&tx, "system.user.email.confirmed", &record)
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    // The answer takes a connection of its own (see signup).
    drop(client);
    app.events.ring();
    common::session_response(&app, &headers, &user, &caller, StatusCode::CREATED).await
}

fn reset_key(app: &IdentityState, uid: &str) -> String {
    app.kv.key(&format!("reset_password:{uid}"))
}

async fn password_generate(
    State(app): State<IdentityState>,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    let email = common::require(&params, "identity.user", &["email"], false)?.remove(0);
    let settings = &app.settings;
    captcha::verify(
        &settings.captcha,
        &app.outbound,
        captcha::PASSWORD_RESET,
        params.get("captcha_response"),
    )
    .await?;
    let limits = &settings.rate_limits;
    common::limit_caller(
        &app,
        "password_reset_ip",
        &caller,
        limits.password_reset_per_ip,
        too_many(),
    )
    .await?;
    let mut client = app.store.client().await?;
    let user = users::find_by_email(&client, email.trim()).await?;
    common::limit_account(
        &app,
        "password_reset_account",
        user.as_ref(),
        &email,
        limits.password_reset_per_account,
        too_many(),
    )
    .await?;
    let Some(user) = user else {
        return Ok(common::accepted());
    };
    let reset_token = crate::crypto::random_hex::<10>();
    let token = app.issuer().sign_standard(
        RESET,
        json!({ "email": user.email, "uid": user.uid, "reset_token": reset_token }),
        sessions::now(),
    );
    let tx = client.transaction().await.map_err(StoreError::from)?;
    activities::insert(
        &tx,
        &caller.activity(
            user.id,
            "password",
            "request password reset",
            "succeed",
            None,
        ),
    )
    .await?;
    let record = json!({ "record": {
        "user": crate::events::user_record_of(&tx, &user).await?,
        "domain": settings.app.domain,
        "token": token,
    }});
    app.events
        .emit(&tx, "system.user.password.reset.token", &record)
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.events.ring();
    // Only the newest link works: the token must carry the reset_token stored last. Stored
    // after the commit, so a request that fails on the way leaves the last emailed link
    // working rather than replaced by one that was never sent.
    app.kv
        .set_ex(
            &reset_key(&app, &user.uid),
            &reset_token,
            settings.jwt.expire_time.as_secs(),
        )
        .await?;
    Ok(common::accepted())
}

async fn password_confirm(
    State(app): State<IdentityState>,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    // Barong's own codes for this endpoint (its token parameter has a custom message).
    let mut codes = Vec::new();
    let fields = [
        (
            "reset_password_token",
            "identity.user.missing_pass_token",
            "identity.user.empty_reset_password_token",
        ),
        (
            "password",
            "identity.user.missing_password",
            "identity.user.empty_password",
        ),
        (
            "confirm_password",
            "identity.user.missing_confirm_password",
            "identity.user.empty_confirm_password",
        ),
    ];
    let mut values = Vec::new();
    for (name, missing, empty) in fields {
        match params.text(name) {
            None => codes.extend([missing.to_string(), empty.to_string()]),
            Some(v) if v.trim().is_empty() => codes.push(empty.to_string()),
            Some(v) => values.push(v),
        }
    }
    if !codes.is_empty() {
        return Err(ApiError::many(StatusCode::UNPROCESSABLE_ENTITY, codes));
    }
    let (token, password, confirm) = (&values[0], &values[1], &values[2]);
    common::limit_caller(
        &app,
        "token_ip",
        &caller,
        app.settings.rate_limits.token_per_ip,
        too_many(),
    )
    .await?;
    if password != confirm {
        return Err(ApiError::unprocessable(
            "identity.user.passwords_doesnt_match",
        ));
    }
    let claims = verify(&app, token, RESET)?;
    let uid = claims.get("uid").and_then(Value::as_str).unwrap_or("");
    let mut client = app.store.client().await?;
    let user = users::find_by_uid(&client, uid)
        .await?
        .ok_or_else(|| ApiError::not_found("record.not_found"))?;
    let stored = app.kv.get(&reset_key(&app, &user.uid)).await?;
    let presented = claims.get("reset_token").and_then(Value::as_str);
    let newest = matches!((stored.as_deref(), presented), (Some(s), Some(p)) if crate::crypto::constant_time_eq(s.as_bytes(), p.as_bytes()));
    if !newest || is_burned(&app, &claims).await? {
        return Err(ApiError::unprocessable("identity.user.utilized_token"));
    }
    let policy = &app.settings.password;
    if let Err(code) = password_policy::check(
        password,
        app.settings.password.regexp.regex(),
        policy.min_entropy,
        policy.use_dictionary,
    ) {
        common::record(
            &app.store,
            caller.activity(
                user.id,
                "password",
                "password reset",
                "failed",
                reason(code),
            ),
        )
        .await;
        return Err(ApiError::unprocessable(code));
    }
    if !burn(&app, &claims).await? {
        return Err(ApiError::unprocessable("identity.user.utilized_token"));
    }
    let digest = app.hasher.hash(password).await;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let replacement = Replacement {
        digest: &digest,
        activity: &caller.activity(user.id, "password", "password reset", "succeed", None),
        event: "system.user.password.reset",
        domain: &app.settings.app.domain,
    };
    passwords::replace(&tx, &app.events, &user, &replacement).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.events.ring();
    app.kv.del(&[reset_key(&app, &user.uid)]).await?;
    app.sessions().destroy_all_for(&user.uid, None).await?;
    Ok(common::accepted())
}
