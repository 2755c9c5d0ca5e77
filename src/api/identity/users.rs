//! `POST /identity/users` (signup), `POST /identity/users/access` (whitelink redemption) and
//! `GET /identity/users/register_geetest` (Barong §7.1, §5.4, §7).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::IdentityState;
use super::common::{self, Caller};
use super::tokens;
use crate::api::entities::UserWithFullInfo;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::authn::auth0::{self, Identity};
use crate::authn::captcha;
use crate::domain::email::Email;
use crate::domain::user_state::UserState;
use crate::routes::{Base, Doc, Endpoint, Guard, In, param, reply, returns};
use crate::services::accounts::{self, AccountError, Application, NewAccount};
use crate::store::users::UserRow;
use crate::store::{self, StoreError, activities, identities, restrictions, users};

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
                path: "identity/users",
                tag: "identity",
                summary: "Creates new user",
                params: const {
                    &[
                        param("email", In::Body, true, "User Email"),
                        param("password", In::Body, true, "User Password"),
                        param("username", In::Body, false, "User Username"),
                        param("refid", In::Body, false, "Referral uid"),
                        param(
                            "captcha_response",
                            In::Body,
                            false,
                            "Response from captcha widget",
                        ),
                        param(
                            "data",
                            In::Body,
                            false,
                            "Any additional key: value pairs in json string format",
                        ),
                    ]
                },
                responses: const {
                    &[
                        returns::<UserWithFullInfo>(
                            201,
                            "Created: UserWithFullInfo with csrf_token, and the session cookie",
                        ),
                        reply(
                            400,
                            "identity.captcha.required, identity.captcha.mandatory_fields",
                        ),
                        reply(403, "request.cross_site_form (another site's form)"),
                        reply(
                            422,
                            "identity.user.missing_email, empty_email, missing_password, empty_password, invalid_referral_format, referral_doesnt_exist; email.invalid, email.taken, password.requirements, password.weak, username.*, data.*, role.doesnt_exist",
                        ),
                        reply(429, "identity.user.too_many_attempts (see Retry-After)"),
                    ]
                },
            },
            guard: Guard::Restrictions,
            handler: post(create),
        },
        Endpoint {
            doc: Doc {
                method: "POST",
                base: Base::Mount,
                path: "identity/users/access",
                tag: "identity",
                summary: "Creates new whitelist restriction",
                params: const {
                    &[param(
                        "whitelink_token",
                        In::Body,
                        true,
                        "Token of a whitelink",
                    )]
                },
                responses: const {
                    &[
                        reply(201, "The caller's address is whitelisted: true"),
                        reply(
                            422,
                            "identity.user.missing_whitelink_token, empty_whitelink_token, identity.user.access.invalid_token, value.taken, value.invalid",
                        ),
                    ]
                },
            },
            guard: Guard::Restrictions,
            handler: post(access),
        },
        Endpoint {
            doc: Doc {
                method: "GET",
                base: Base::Mount,
                path: "identity/users/register_geetest",
                tag: "identity",
                summary: "Register Geetest captcha",
                params: &[],
                responses: const {
                    &[
                        reply(
                            200,
                            "{\"gt\", \"challenge\"}, or \"\" when GeeTest does not answer",
                        ),
                        reply(429, "identity.user.too_many_attempts (see Retry-After)"),
                    ]
                },
            },
            guard: Guard::Restrictions,
            handler: get(register_geetest),
        },
    ]
}

/// The referrer named by `refid`: a user uid with our prefix that exists.
async fn referrer<C: store::Db>(
    c: &C,
    app: &IdentityState,
    refid: Option<String>,
) -> ApiResult<Option<i64>> {
    let Some(refid) = refid.filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let prefix = app.settings.users.uid_prefix.to_ascii_uppercase();
    if !refid.starts_with(&prefix) {
        return Err(ApiError::unprocessable(
            "identity.user.invalid_referral_format",
        ));
    }
    match users::find_by_uid(c, &refid).await? {
        Some(user) => Ok(Some(user.id)),
        None => Err(ApiError::unprocessable(
            "identity.user.referral_doesnt_exist",
        )),
    }
}

async fn create(
    State(app): State<IdentityState>,
    caller: Caller,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    common::refuse_cross_site_form(&app, &headers)?;
    let values = common::require(&params, "identity.user", &["email", "password"], false)?;
    let (email, password) = (values[0].trim().to_string(), values[1].clone());
    captcha::verify(
        &app.settings.captcha,
        &app.outbound,
        captcha::USER_CREATE,
        params.get("captcha_response"),
    )
    .await?;
    common::limit_caller(
        &app,
        "signup_ip",
        &caller,
        app.settings.rate_limits.signup_per_ip,
        "identity.user.too_many_attempts",
    )
    .await?;
    let username = params.text("username");
    let data = params.text("data");

    let accounts = common::accounts(&app);
    let mut client = app.store.client().await?;
    let referral_id = referrer(&client, &app, params.text("refid")).await?;
    let role = &app.settings.users.default_role;
    let application = Application {
        email: &email,
        password: &password,
        username: username.as_deref(),
        data: data.as_deref(),
        role,
    };
    let email = accounts.check(&client, &application).await?;
    let digest = accounts.digest(&password).await;
    let username = username.map(|u| u.to_lowercase());
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let account = NewAccount {
        email: &email,
        password_digest: &digest,
        username: username.as_deref(),
        data: data.as_deref(),
        role,
        state: UserState::Pending,
        level: 0,
        referral_id,
    };
    let mut user = accounts.insert(&tx, &account).await?;
    activities::insert(
        &tx,
        &caller.activity(user.id, "account", "signup", "succeed", None),
    )
    .await?;
    if app.settings.users.first_registration_superadmin && users::count(&tx).await? == 1 {
        // decisions.md #15: off by default; when on, the very first account administers.
        let before = user.clone();
        users::set_role(&tx, user.id, "superadmin").await?;
        user = common::verify_email(&app, &tx, &before).await?;
    } else {
        tokens::send_confirmation(&app, &tx, &user).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    // The answer takes a connection of its own: holding this one too would let a burst of
    // signups drain the pool.
    drop(client);
    app.events.ring();
    metrics::counter!("portcullis_signups_total").increment(1);
    common::session_response(&app, &headers, &user, &caller, StatusCode::CREATED).await
}

/// An account for a verified Auth0 identity: active, email verified, a random password, and
/// bound to the identity's subject in the same transaction, so that no account of that email
/// exists unbound. None when a concurrent login created an account with this email, or bound
/// the subject, first: what that one committed decides.
pub async fn create_verified(
    app: &IdentityState,
    identity: &Identity,
    caller: &Caller,
) -> ApiResult<Option<UserRow>> {
    let accounts = common::accounts(app);
    // Nobody knows this password: the account opens through Auth0 (or a password reset).
    let digest = accounts.digest(&crate::crypto::random_token::<24>()).await;
    let email = Email::vouched(&identity.email);
    let account = NewAccount {
        email: &email,
        password_digest: &digest,
        username: None,
        data: None,
        role: &app.settings.users.default_role,
        state: UserState::Pending,
        level: 0,
        referral_id: None,
    };
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let user = match accounts.insert(&tx, &account).await {
        Ok(user) => user,
        Err(AccountError::Taken(accounts::EMAIL_TAKEN)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    if !identities::bind(&tx, user.id, auth0::PROVIDER, &identity.subject).await? {
        return Ok(None);
    }
    let signup = caller.activity(
        user.id,
        "account",
        "signup",
        "succeed",
        Some(json!({"via": "auth0"}).to_string()),
    );
    activities::insert(&tx, &signup).await?;
    let user = common::verify_email(app, &tx, &user).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Some(user))
}

/// Where a whitelink token lives in Redis (under the node's prefix) while it is valid: written
/// by `POST /admin/restrictions/whitelink`, read here.
pub fn whitelink_key(token: &str) -> String {
    format!("whitelink:{token}")
}

async fn access(
    State(app): State<IdentityState>,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    let token = common::require(&params, "identity.user", &["whitelink_token"], false)?.remove(0);
    let ip = caller.ip.to_string();
    common::limit_caller(
        &app,
        "token_ip",
        &caller,
        app.settings.rate_limits.token_per_ip,
        "identity.user.too_many_attempts",
    )
    .await?;
    let key = app.kv.key(&whitelink_key(&token));
    if app.kv.get(&key).await?.as_deref() != Some("active") {
        return Err(ApiError::unprocessable(
            "identity.user.access.invalid_token",
        ));
    }
    crate::gate::restrictions::validate_value("ip", &ip).map_err(ApiError::unprocessable)?;
    let client = app.store.client().await?;
    let new = restrictions::NewRestriction {
        category: "whitelist",
        scope: "ip",
        value: &ip,
        code: crate::gate::restrictions::effective_code("whitelist", "ip", None) as i32,
        state: "enabled",
    };
    restrictions::insert(&client, &new)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::unprocessable("value.taken"),
            other => other.into(),
        })?;
    // Barong keeps the token: it may whitelist more addresses until it expires (decisions #16).
    Ok((StatusCode::CREATED, Json(true)).into_response())
}

/// Each call is a call to GeeTest: limited per caller, so nobody can make us flood it.
async fn register_geetest(State(app): State<IdentityState>, caller: Caller) -> ApiResult<Response> {
    common::limit_caller(
        &app,
        "geetest_register_ip",
        &caller,
        app.settings.rate_limits.captcha_register_per_ip,
        "identity.user.too_many_attempts",
    )
    .await?;
    Ok(Json(captcha::register_geetest(&app.settings.captcha, &app.outbound).await).into_response())
}
