//! `POST <prefix>/signin` and `POST <prefix>/2fa/confirm`: a password sign-in of a staff
//! account, and, when the account has 2FA on, the emailed code that completes it.

use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::post;
use http::StatusCode;
use serde_json::json;

use super::entities::{BackOfficeSignIn, BackOfficeTokens, TwoFactorDetails, timestamp};
use super::{BackOfficeState, INVALID_CREDENTIALS, limit, limit_address, record_failure};
use crate::api::entities::entity;
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::Caller;
use crate::api::params::Params;
use crate::api::readers::{refuse, required_text};
use crate::authn::backoffice_2fa::Answer;
use crate::authn::passwords::Verified;
use crate::routes::{Base, Doc, Endpoint, Guard, In, param, reply, returns};
use crate::store::{StoreError, activities, users};

/// 401: the 2FA token is unknown, expired or already answered.
const INVALID_2FA_TOKEN: &str = "backoffice.invalid_2fa_token";
/// 401: the code does not match the 2FA token.
const INVALID_2FA_CODE: &str = "backoffice.invalid_2fa_code";

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
                path: "signin",
                tag: "backoffice",
                summary: "Sign in to the Back Office",
                params: const {
                    &[
                        param("email", In::Body, true, "The user email"),
                        param("password", In::Body, true, "The user password"),
                    ]
                },
                responses: const {
                    &[
                        returns::<BackOfficeSignIn>(
                            200,
                            "2faRequired with 2faDetails (a code was emailed), or accessToken and refreshToken",
                        ),
                        reply(
                            401,
                            "backoffice.invalid_credentials (wrong email or password, or an account that may not use the Back Office)",
                        ),
                        reply(
                            422,
                            "backoffice.missing_email, empty_email, missing_password, empty_password",
                        ),
                        reply(
                            429,
                            "backoffice.too_many_attempts (account or address locked out; see Retry-After)",
                        ),
                        reply(
                            503,
                            "backoffice.mail_unavailable (2FA on, mail off), or a store is down",
                        ),
                    ]
                },
            },
            guard: Guard::Restrictions,
            handler: post(signin),
        },
        Endpoint {
            doc: Doc {
                method: "POST",
                base: Base::BackOffice,
                path: "2fa/confirm",
                tag: "backoffice",
                summary: "Confirm a 2FA verification code",
                params: const {
                    &[
                        param("token", In::Body, true, "The 2FA token"),
                        param(
                            "code",
                            In::Body,
                            true,
                            "The verification code sent to the user email",
                        ),
                    ]
                },
                responses: const {
                    &[
                        returns::<BackOfficeTokens>(200, "accessToken and refreshToken"),
                        reply(
                            401,
                            "backoffice.invalid_2fa_token (unknown, expired or used), backoffice.invalid_2fa_code, backoffice.invalid_credentials",
                        ),
                        reply(
                            422,
                            "backoffice.missing_token, empty_token, missing_code, empty_code",
                        ),
                        reply(
                            429,
                            "backoffice.too_many_attempts (2FA token or address locked out; see Retry-After)",
                        ),
                    ]
                },
            },
            guard: Guard::Restrictions,
            handler: post(confirm),
        },
    ]
}

/// Records a refused sign-in on the account, and answers 401 `code`.
async fn refuse_signin<T>(
    app: &BackOfficeState,
    user: &users::UserRow,
    caller: &Caller,
    action: &str,
    why: &str,
    code: &'static str,
) -> ApiResult<T> {
    record_failure(app, caller, user.id, action, why).await;
    count("failed");
    Err(ApiError::unauthorized(code))
}

fn count(outcome: &'static str) {
    metrics::counter!("portcullis_backoffice_signins_total", "outcome" => outcome).increment(1);
}

async fn signin(
    State(app): State<BackOfficeState>,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    let mut codes = Vec::new();
    let email = required_text(&params, "backoffice", "email", &mut codes);
    let password = required_text(&params, "backoffice", "password", &mut codes);
    refuse(codes)?;
    let (email, password) = (email.unwrap_or_default(), password.unwrap_or_default());
    let limits = &app.settings.backoffice;
    limit_address(&app, "bo_signin_ip", &caller, limits.signin).await?;
    let client = app.store.client().await?;
    let user = users::find_by_email(&client, email.trim()).await?;
    drop(client);
    let account = match &user {
        Some(user) => format!("uid:{}", user.uid),
        None => email.trim().to_lowercase(),
    };
    limit(&app, "bo_signin_account", &account, limits.signin).await?;
    let verified = app
        .hasher
        .verify(&password, user.as_ref().map(|u| u.password_digest.as_str()))
        .await;
    let Some(user) = user else {
        count("failed");
        return Err(ApiError::unauthorized(INVALID_CREDENTIALS));
    };
    if verified == Verified::No {
        return refuse_signin(
            &app,
            &user,
            &caller,
            "signin",
            INVALID_CREDENTIALS,
            INVALID_CREDENTIALS,
        )
        .await;
    }
    let client = app.store.client().await?;
    if !app.tokens.may_sign_in(&client, &user).await? {
        return refuse_signin(
            &app,
            &user,
            &caller,
            "signin",
            "backoffice.not_staff_or_not_active",
            INVALID_CREDENTIALS,
        )
        .await;
    }
    if verified == Verified::YesRehash {
        let digest = app.hasher.hash(&password).await;
        users::set_password_digest(&client, user.id, &digest).await?;
    }
    drop(client);
    if user.otp {
        return send_code(&app, &user, &caller).await;
    }
    let pair = app.tokens.open_family(&user).await?;
    succeeded(&app, &user, &caller, "signin").await?;
    Ok(entity(StatusCode::OK, BackOfficeSignIn::from(&pair)))
}

/// Opens a 2FA challenge and emails its code.
async fn send_code(
    app: &BackOfficeState,
    user: &users::UserRow,
    caller: &Caller,
) -> ApiResult<Response> {
    let ttl = app.settings.backoffice.two_factor_ttl;
    let (token, code) = app
        .challenges
        .open(app.tokens.secrets.as_ref(), &user.uid, ttl.as_secs())
        .await?;
    let expires_at = time::OffsetDateTime::now_utc() + ttl;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let body = json!({ "record": {
        "user": crate::events::user_record_of(&tx, user).await?,
        "code": code,
        "minutes": ttl.as_secs().div_ceil(60),
        "ip": caller.ip.to_string(),
    }});
    if !app
        .events
        .mail_only(&tx, crate::events::BACKOFFICE_2FA_CODE, &body)
        .await?
    {
        tracing::error!(
            "a back office sign-in needs its 2FA code emailed, but mail.delivery is none"
        );
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "backoffice.mail_unavailable",
        ));
    }
    activities::insert(
        &tx,
        &caller.activity(
            user.id,
            "backoffice",
            "signin::2fa_code_sent",
            "succeed",
            None,
        ),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.events.ring();
    count("2fa_required");
    let answer = BackOfficeSignIn {
        two_factor_required: true,
        two_factor_details: Some(TwoFactorDetails {
            token,
            provider: "email",
            expires_at: timestamp(expires_at),
        }),
        access_token: None,
        refresh_token: None,
    };
    Ok(entity(StatusCode::OK, answer))
}

async fn confirm(
    State(app): State<BackOfficeState>,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    let mut codes = Vec::new();
    let token = required_text(&params, "backoffice", "token", &mut codes);
    let code = required_text(&params, "backoffice", "code", &mut codes);
    refuse(codes)?;
    let (token, code) = (token.unwrap_or_default(), code.unwrap_or_default());
    let limits = &app.settings.backoffice;
    limit_address(&app, "bo_2fa_ip", &caller, limits.two_factor).await?;
    limit(&app, "bo_2fa_token", &token, limits.two_factor).await?;
    let uid = match app
        .challenges
        .answer(app.tokens.secrets.as_ref(), &token, &code)
        .await?
    {
        Answer::Accepted(uid) => uid,
        Answer::Unknown => return Err(ApiError::unauthorized(INVALID_2FA_TOKEN)),
        Answer::WrongCode => {
            count("2fa_failed");
            return Err(ApiError::unauthorized(INVALID_2FA_CODE));
        }
    };
    let client = app.store.client().await?;
    let user = users::find_by_uid(&client, &uid).await?;
    // The account may have changed since the code was sent (banned, role taken away).
    let Some(user) = user else {
        return Err(ApiError::unauthorized(INVALID_CREDENTIALS));
    };
    if !app.tokens.may_sign_in(&client, &user).await? {
        drop(client);
        return refuse_signin(
            &app,
            &user,
            &caller,
            "signin::2fa",
            "backoffice.not_staff_or_not_active",
            INVALID_CREDENTIALS,
        )
        .await;
    }
    drop(client);
    let pair = app.tokens.open_family(&user).await?;
    succeeded(&app, &user, &caller, "signin::2fa").await?;
    Ok(entity(StatusCode::OK, BackOfficeTokens::from(&pair)))
}

/// Records a completed sign-in.
async fn succeeded(
    app: &BackOfficeState,
    user: &users::UserRow,
    caller: &Caller,
    action: &str,
) -> ApiResult<()> {
    let client = app.store.client().await?;
    activities::insert(
        &client,
        &caller.activity(user.id, "backoffice", action, "succeed", None),
    )
    .await?;
    count("ok");
    Ok(())
}
