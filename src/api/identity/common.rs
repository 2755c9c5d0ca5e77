//! What identity handlers share: who is calling, Grape-style parameter checks, activities,
//! rate limits, and answering with a fresh session.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use super::IdentityState;
use crate::api::entities::UserWithFullInfo;
use crate::api::error::{ApiError, ApiResult};
use crate::api::guard::ClientAddr;
use crate::api::params::Params;
use crate::authn::rate_limit::RateVerdict;
use crate::authn::{sessions, totp};
use crate::config::Limit;
use crate::gate::Denial;
use crate::services::accounts::{Accounts, PasswordRules};
use crate::store::activities::{self, NewActivity};
use crate::store::users::UserRow;
use crate::store::{Db, Store, labels};

/// What is known of the caller, for activities, rate limits and the session binding.
pub struct Caller {
    pub ip: IpAddr,
    pub user_agent: String,
    /// The country of `ip` as MaxMind names it (Barong's `user_ip_country`), when known.
    pub country: Option<String>,
}

/// The caller of an auth API route: the address the restrictions guard resolved (or, on an
/// unguarded route, resolved here the same way) and the User-Agent as sent.
impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    IdentityState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, ApiError> {
        let identity = IdentityState::from_ref(state);
        let ip = match parts.extensions.get::<ClientAddr>() {
            Some(ClientAddr(ip)) => *ip,
            None => {
                let ConnectInfo(peer) = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .copied()
                    .ok_or_else(ApiError::internal)?;
                identity
                    .client_ip
                    .resolve(peer.ip(), &parts.headers)
                    .map_err(|_| ApiError::bad_request(Denial::INVALID_FORWARDED_FOR.code))?
            }
        };
        Ok(Caller {
            ip,
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            country: identity
                .geoip
                .as_ref()
                .and_then(|geoip| geoip.locate(ip))
                .map(|location| location.country_display)
                .filter(|name| !name.is_empty()),
        })
    }
}

impl Caller {
    /// A user-category activity of this caller.
    pub fn activity(
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
            user_ip_country: self.country.clone(),
            user_agent: self.user_agent.clone(),
            topic: topic.into(),
            action: action.into(),
            result,
            data,
        }
    }
}

/// `{"reason": code}`, the data of a failed activity.
pub fn reason(code: &str) -> Option<String> {
    Some(json!({ "reason": code }).to_string())
}

/// Records a failed attempt now (user activities are few; they are written synchronously).
/// Best effort: the record must never change the answer, or a write that fails only for
/// existing accounts (the only ones that get a record) would tell them apart.
pub async fn record(store: &Store, activity: NewActivity) {
    let written = match store.client().await {
        Ok(client) => activities::insert(&client, &activity).await,
        Err(err) => Err(err),
    };
    if let Err(err) = written {
        tracing::error!(error = %err, topic = %activity.topic, action = %activity.action, "activity not recorded");
        metrics::counter!("portcullis_activities_dropped_total").increment(1);
    }
}

/// Grape's `requires` on each of `names`: an absent parameter gives `<prefix>.missing_<name>`
/// (and `<prefix>.empty_<name>` too unless `allow_blank`), a blank one `<prefix>.empty_<name>`.
/// All failures are collected into one 422; on success the values come back in order.
pub fn require(
    params: &Params,
    prefix: &str,
    names: &[&str],
    allow_blank: bool,
) -> ApiResult<Vec<String>> {
    let mut codes = Vec::new();
    let mut values = Vec::with_capacity(names.len());
    for name in names {
        match params.text(name) {
            None => {
                codes.push(format!("{prefix}.missing_{name}"));
                if !allow_blank {
                    codes.push(format!("{prefix}.empty_{name}"));
                }
            }
            Some(value) if !allow_blank && value.trim().is_empty() => {
                codes.push(format!("{prefix}.empty_{name}"))
            }
            Some(value) => values.push(value),
        }
    }
    if codes.is_empty() {
        Ok(values)
    } else {
        Err(ApiError::many(StatusCode::UNPROCESSABLE_ENTITY, codes))
    }
}

/// Counts one attempt of `caller` against `limit`, keyed by the caller's address (an IPv6 /64
/// is one caller: rotating addresses inside one's own prefix gains nothing).
pub async fn limit_caller(
    app: &IdentityState,
    name: &str,
    caller: &Caller,
    limit: Limit,
    code: &str,
) -> ApiResult<()> {
    let key = crate::net::client_ip::network_key(caller.ip).to_string();
    self::limit(app, name, &key, limit, code).await
}

/// Counts one attempt against an account's `limit`: keyed on the account's uid when it exists
/// (so spellings of one email that the database folds together, `İ` and `i` among them, share
/// one budget), else on the email as typed (an unknown account has nothing to protect, but
/// must answer alike).
pub async fn limit_account(
    app: &IdentityState,
    name: &str,
    user: Option<&UserRow>,
    email: &str,
    limit: Limit,
    code: &str,
) -> ApiResult<()> {
    let account = match user {
        Some(user) => format!("uid:{}", user.uid),
        None => email.trim().to_lowercase(),
    };
    self::limit(app, name, &account, limit, code).await
}

/// Counts one attempt against `limit`; 429 with Retry-After and `code` beyond it.
pub async fn limit(
    app: &IdentityState,
    name: &str,
    subject: &str,
    limit: Limit,
    code: &str,
) -> ApiResult<()> {
    match app.rate_limiter.hit(name, subject, limit).await? {
        RateVerdict::Allowed => Ok(()),
        RateVerdict::Limited { retry_after } => Err(ApiError::too_many(code, retry_after)),
    }
}

/// Refuses a form another site's page submits to a route that opens a session (login CSRF:
/// the victim's browser logged into the attacker's account). See `Cors::is_cross_site_form`.
pub fn refuse_cross_site_form(app: &IdentityState, headers: &HeaderMap) -> ApiResult<()> {
    if app.cors.is_cross_site_form(headers) {
        metrics::counter!("portcullis_cross_site_forms_refused_total").increment(1);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "request.cross_site_form",
        ));
    }
    Ok(())
}

/// Opens a new session for `user` (ending the one the request carried, if any: a session id
/// known before authentication is worth nothing after it) and answers `status` with
/// `UserWithFullInfo` + `csrf_token` and the cookie.
pub async fn session_response(
    app: &IdentityState,
    headers: &HeaderMap,
    user: &UserRow,
    caller: &Caller,
    status: StatusCode,
) -> ApiResult<Response> {
    if let Some(old) = app.sessions().id_from(headers)
        && let Some(previous) = app.sessions().load(old).await?
    {
        app.sessions().destroy(old, &previous.uid).await?;
    }
    let opened = app
        .sessions()
        .open(&user.uid, caller.ip, &caller.user_agent)
        .await?;
    let client = app.store.client().await?;
    let body =
        UserWithFullInfo::load(&client, app.secrets(), user, Some(opened.csrf_token)).await?;
    let mut response = crate::api::entities::entity(status, body);
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&app.sessions().cookie(&opened.id))
            .map_err(|_| ApiError::internal())?,
    );
    Ok(response)
}

/// Marks the user's email verified (a private label), which recomputes level and state, and
/// emits the model events; `user` is the account as the caller last saw it.
pub async fn verify_email<C: Db>(app: &IdentityState, c: &C, user: &UserRow) -> ApiResult<UserRow> {
    let mut change = labels::set(
        c,
        &app.settings.users,
        user.id,
        "email",
        "verified",
        "private",
    )
    .await?;
    change.user_before = user.clone();
    app.events.label_changed(c, &change).await?;
    Ok(change.user)
}

/// The accounts service with this node's pieces and settings.
pub fn accounts(app: &IdentityState) -> Accounts<'_> {
    Accounts {
        hasher: &app.hasher,
        events: &app.events,
        password: PasswordRules {
            regexp: app.settings.password.regexp.regex(),
            min_entropy: app.settings.password.min_entropy,
            use_dictionary: app.settings.password.use_dictionary,
        },
        uid_prefix: &app.settings.users.uid_prefix,
    }
}

/// 201 with an empty body: Barong's answer when a request is accepted and nothing is said
/// about whether the account exists.
pub fn accepted() -> Response {
    StatusCode::CREATED.into_response()
}

/// Checks a TOTP code and burns it (`authn::totp`): the same code is not accepted twice. A
/// secret that does not open is our fault (500, logged); Redis down is a 503.
pub async fn verify_totp(
    secrets: &crate::crypto::SecretBox,
    kv: &crate::kv::Kv,
    user: &UserRow,
    code: &str,
) -> ApiResult<bool> {
    let sealed = user.otp_secret_encrypted.as_deref();
    totp::verify_and_burn(secrets, kv, &user.uid, sealed, code, sessions::now())
        .await
        .map_err(|err| match err {
            totp::TotpError::Sealed => {
                tracing::error!(uid = %user.uid, error = %err, "TOTP secret does not open");
                ApiError::internal()
            }
            totp::TotpError::Kv(err) => err.into(),
        })
}
