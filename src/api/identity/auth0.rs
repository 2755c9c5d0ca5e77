//! `POST /identity/sessions/auth0`: login with an Auth0 id_token, and which account it opens.
//!
//! Barong opens any account whose email the token names, verified or not (decisions.md #25).
//! Here only an email Auth0 verified opens an account, and the first login binds the account to
//! the token's subject (`sub`): from then on the subject is the identity, so a later token of
//! another subject with the same email opens nothing, and a token of the bound subject opens
//! its account even when the email at Auth0 changed. The login then passes the same state and
//! 2FA checks as a password login (decisions.md #7).

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use http::{HeaderMap, StatusCode};

use super::IdentityState;
use super::common::{self, Caller};
use super::sessions;
use crate::api::entities::UserWithFullInfo;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::authn::auth0::{self, Identity};
use crate::routes::{Base, Doc, Endpoint, Guard, In, param, reply, returns};
use crate::store::users::{self, UserRow};
use crate::store::{StoreError, identities};

/// Every refusal of an Auth0 login, whatever its cause, so that a refusal tells nothing of
/// the accounts.
const INVALID: &str = "identity.session.auth0.invalid_params";

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    IdentityState: axum::extract::FromRef<S>,
{
    vec![Endpoint {
        doc: Doc {
            method: "POST",
            base: Base::Mount,
            path: "identity/sessions/auth0",
            tag: "identity",
            summary: "Auth0 authentication by id_token",
            params: const {
                &[
                    param("id_token", In::Body, true, "ID Token"),
                    param(
                        "nonce",
                        In::Body,
                        false,
                        "The nonce of the authorization request; when sent, the ID Token must carry it",
                    ),
                    param(
                        "otp_code",
                        In::Body,
                        false,
                        "Code from Google Authenticator, when 2FA is on",
                    ),
                ]
            },
            responses: const {
                &[
                    returns::<UserWithFullInfo>(
                        201,
                        "Session started: UserWithFullInfo with csrf_token, and the session cookie",
                    ),
                    reply(
                        401,
                        "identity.session.auth0.invalid_params, banned, deleted, not_active, missing_otp",
                    ),
                    reply(
                        403,
                        "identity.session.invalid_otp, request.cross_site_form (another site's form)",
                    ),
                    reply(
                        422,
                        "identity.session.missing_id_token, empty_id_token, identity.session.auth0.invalid_params",
                    ),
                    reply(429, "identity.session.too_many_attempts (see Retry-After)"),
                ]
            },
        },
        guard: Guard::Restrictions,
        handler: post(login),
    }]
}

fn refused(status: StatusCode) -> ApiError {
    ApiError::new(status, INVALID)
}

/// The account an Auth0 identity logs into, and whether it is bound to the identity yet.
struct Account {
    user: UserRow,
    bound: bool,
}

async fn login(
    State(app): State<IdentityState>,
    caller: Caller,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    common::refuse_cross_site_form(&app, &headers)?;
    let token = common::require(&params, "identity.session", &["id_token"], false)?.remove(0);
    sessions::limit_address(&app, &caller).await?;
    let identity = identity_of(&app, &token, params.filled("nonce").as_deref()).await?;
    let account = account_of(&app, &identity, &caller).await?;
    let user = &account.user;
    // The same per-account budget as a password login: the 2FA code below is guessable.
    common::limit_account(
        &app,
        "login_account",
        Some(user),
        &user.email,
        app.settings.rate_limits.login_per_account,
        "identity.session.too_many_attempts",
    )
    .await?;
    sessions::refuse_inactive(&app, user, &caller).await?;
    let action = sessions::second_factor(&app, user, &caller, &params).await?;
    if !bind_and_record_login(&app, &account, &identity, &caller, action).await? {
        // A concurrent login bound the account to another subject first.
        return sessions::refuse_login(&app, user, &caller, INVALID).await;
    }
    common::session_response(&app, &headers, user, &caller, StatusCode::CREATED).await
}

/// Binds the account to the identity when it is not yet, and records the login, in one
/// transaction: a refused or failed login binds nothing. False (nothing written) when the
/// account or the subject was bound elsewhere first.
async fn bind_and_record_login(
    app: &IdentityState,
    account: &Account,
    identity: &Identity,
    caller: &Caller,
    action: &str,
) -> ApiResult<bool> {
    let user = &account.user;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    if !account.bound && !identities::bind(&tx, user.id, auth0::PROVIDER, &identity.subject).await?
    {
        return Ok(false);
    }
    sessions::record_login(app, tx, user, caller, action).await?;
    Ok(true)
}

/// The identity a token vouches for: 422 when it is no valid id_token for us (Barong's answer
/// to a bad token), 401 when it is valid but names no subject or no verified email.
async fn identity_of(app: &IdentityState, token: &str, nonce: Option<&str>) -> ApiResult<Identity> {
    let now = crate::authn::sessions::now();
    let claims = app.auth0.verify(token, nonce, now).await.map_err(|err| {
        tracing::info!(reason = ?err, "auth0 id_token refused");
        refused(StatusCode::UNPROCESSABLE_ENTITY)
    })?;
    Identity::from_claims(&claims).map_err(|err| {
        tracing::info!(reason = ?err, "auth0 identity refused");
        refused(StatusCode::UNAUTHORIZED)
    })
}

/// The account bound to the identity; else the account of its email, to bind at this login;
/// else a new account, bound at creation.
async fn account_of(
    app: &IdentityState,
    identity: &Identity,
    caller: &Caller,
) -> ApiResult<Account> {
    if let Some(account) = existing_account(app, identity, caller).await? {
        return Ok(account);
    }
    if let Some(user) = super::users::create_verified(app, identity, caller).await? {
        return Ok(Account { user, bound: true });
    }
    // A concurrent first login created the account or bound the subject: read what it did.
    existing_account(app, identity, caller)
        .await?
        .ok_or_else(|| refused(StatusCode::UNAUTHORIZED))
}

/// The account bound to the identity's subject, or the unbound account of its email. An
/// account of its email bound to another subject is refused (and the attempt recorded on it):
/// once bound, only that subject opens the account, whatever another Auth0 account (another
/// connection of the tenant, a recreated account) says about the address.
async fn existing_account(
    app: &IdentityState,
    identity: &Identity,
    caller: &Caller,
) -> ApiResult<Option<Account>> {
    let client = app.store.client().await?;
    if let Some(user_id) = identities::user_of(&client, auth0::PROVIDER, &identity.subject).await? {
        // Bindings go with their account (ON DELETE CASCADE), so the account is there.
        let user = users::find_by_id(&client, user_id)
            .await?
            .ok_or_else(|| refused(StatusCode::UNAUTHORIZED))?;
        return Ok(Some(Account { user, bound: true }));
    }
    let Some(user) = users::find_by_email(&client, &identity.email).await? else {
        return Ok(None);
    };
    match identities::subject_of(&client, user.id, auth0::PROVIDER).await? {
        None => Ok(Some(Account { user, bound: false })),
        // Bound by a concurrent login of this identity since the lookup by subject.
        Some(subject) if subject == identity.subject => Ok(Some(Account { user, bound: true })),
        Some(_) => {
            drop(client);
            sessions::refuse_login(app, &user, caller, INVALID).await
        }
    }
}
