//! The Back Office token API (seed 003): `POST <backoffice.prefix>/signin`, `/2fa/confirm`,
//! `/refresh` and `/signout`. Staff sign in with tokens instead of a cookie: a short RS256
//! access token that the gate and the admin API honour as `Authorization: Bearer`, and an
//! opaque refresh token, rotated on every use. The token lifecycle is
//! `services::backoffice`; this adapter reads the JSON, applies the attempt limits (with a
//! lock-out shared by every node), records activities and writes the seed's JSON.
//!
//! Every refusal a guesser could learn from answers alike: a wrong password, an unknown
//! account and an account that may not use the Back Office (not staff, not active) all get
//! 401 `backoffice.invalid_credentials`; the activity record keeps the real reason.

mod entities;
mod signin;
mod state;
mod tokens;

use axum::extract::FromRef;

use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::{Caller, reason, record};
use crate::authn::rate_limit::RateVerdict;
use crate::config::Limit;
use crate::routes::Endpoint;
pub use state::{BackOffice, BackOfficeState};

/// 429 beyond a limit, until the lock-out ends (`Retry-After`).
pub const TOO_MANY_ATTEMPTS: &str = "backoffice.too_many_attempts";
/// 401: wrong email or password, or an account that may not use the Back Office.
pub const INVALID_CREDENTIALS: &str = "backoffice.invalid_credentials";

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    BackOfficeState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    let mut all = signin::endpoints();
    all.extend(tokens::endpoints());
    all
}

/// Counts one attempt of `name` for `subject`; past `limit`, the subject is locked out for
/// `backoffice.lockout` on every node: 429 `backoffice.too_many_attempts` with Retry-After.
async fn limit(app: &BackOffice, name: &str, subject: &str, limit: Limit) -> ApiResult<()> {
    let lockout = app.settings.backoffice.lockout;
    match app
        .rate_limiter
        .hit_or_lock(name, subject, limit, lockout)
        .await?
    {
        RateVerdict::Allowed => Ok(()),
        RateVerdict::Limited { retry_after } => {
            Err(ApiError::too_many(TOO_MANY_ATTEMPTS, retry_after))
        }
    }
}

/// [`limit`] keyed by the caller's address (an IPv6 /64 counts as one caller).
async fn limit_address(
    app: &BackOffice,
    name: &str,
    caller: &Caller,
    limit: Limit,
) -> ApiResult<()> {
    let key = crate::net::client_ip::network_key(caller.ip).to_string();
    self::limit(app, name, &key, limit).await
}

/// Records a refused Back Office action on the account, with its reason.
async fn record_failure(app: &BackOffice, caller: &Caller, user_id: i64, action: &str, why: &str) {
    let activity = caller.activity(user_id, "backoffice", action, "failed", reason(why));
    record(&app.store, activity).await;
}
