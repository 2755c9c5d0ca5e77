//! The gate: one function from the facts of a request to a decision.
//!
//! Order (Barong §1.2, with decisions.md): restrictions → block rules → pass rules → choice of
//! credential (API-key headers, else the session cookie) → CSRF → session binding → subject
//! state → permissions. Every front — the proxy, the Barong decision endpoint, nginx,
//! forward-auth, our own API — calls [`Gate::authorize`]; none re-implements a check.
//!
//! The core is pure: each step is a function of the policy snapshot, the request's facts and,
//! where it needs them, the loaded session, key or subject and `now` ([`steps`], [`session`],
//! [`api_key`]). `authorize` only orchestrates them around the ports:
//! - sessions and nonces ([`SessionStore`], [`NonceGuard`]): Redis in production, maps in
//!   tests; the gate is generic over both, so the hot path pays no boxed future;
//! - subjects and API keys: per-node caches that read through the loader port
//!   (`domain::loader::SubjectLoader`, Postgres in `store`) on a miss only.
//!
//! If a port cannot answer, the decision is a deny with 503 `authz.unavailable`. Audit records
//! leave as [`AuditEvent`]s; `crate::audit` turns them into activity rows.

pub mod api_key;
pub mod audit_event;
pub mod backoffice;
pub mod clock;
pub mod denial;
#[cfg(test)]
mod differential;
pub mod explain;
pub mod permissions;
pub mod policy;
mod prefix_trie;
pub mod restrictions;
pub mod session;
pub mod steps;
pub mod subjects;
mod subnet_table;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::authn::api_keys::{ApiKey, ApiKeyCache, ApiKeyHeaders, NonceGuard, ReplayGuard};
use crate::authn::backoffice::Families;
use crate::authn::sessions::{SessionStore, Sessions, Sliding};
use crate::crypto::SecretBox;
use crate::domain::loader::SubjectLoader;
use crate::jwt::{Bearer, Issuer};
use crate::net::geoip::GeoIp;
pub use audit_event::{AuditEvent, AuditResult, AuditSink};
pub use clock::Now;
pub use denial::Denial;
use policy::{Policy, PolicyHandle};
use steps::Route;
use subjects::{CachedSubject, Subjects, TokenReuse};

/// The facts of a request that a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The method, canonical upper-case (see `net::method`; HEAD stays HEAD).
    pub verb: &'a str,
    /// The public path, as rules see it (see `net::path::rule_path`).
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub ip: IpAddr,
    pub user_agent: &'a str,
    pub session_id: Option<&'a str>,
    /// The token of an `Authorization: Bearer` header, if any (a Back Office access token
    /// is the only kind the gate accepts there).
    pub bearer: Option<&'a str>,
    pub csrf_token: Option<&'a str>,
    pub api_key: ApiKeyHeaders<'a>,
}

impl<'a> Facts<'a> {
    /// The facts of a request from its method, public path, query, client address and the
    /// headers that carry credentials: the session cookie named `cookie_name`, the CSRF header,
    /// the API-key headers and the User-Agent.
    pub fn from_headers(
        verb: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        ip: IpAddr,
        headers: &'a http::HeaderMap,
        cookie_name: &str,
    ) -> Facts<'a> {
        Facts {
            verb,
            path,
            query,
            ip,
            user_agent: headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
            session_id: crate::authn::sessions::cookie_value(headers, cookie_name),
            bearer: headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim),
            csrf_token: headers
                .get(crate::net::headers::X_CSRF_TOKEN)
                .map(|v| v.to_str().unwrap_or("")),
            api_key: ApiKeyHeaders::from_headers(headers),
        }
    }
}

/// How the subject proved who it is.
#[derive(Debug, Clone)]
pub enum Via {
    Session,
    /// A Back Office access token of a live family.
    BackOffice,
    ApiKey {
        key: Arc<ApiKey>,
    },
}

/// What the gate grants.
pub enum Access {
    /// A pass rule matched: no identity is resolved, no token is minted.
    Anonymous,
    Subject {
        subject: Arc<CachedSubject>,
        via: Via,
    },
}

/// A grant, with the token fronts forward (absent for pass-rule paths).
pub struct Grant {
    pub access: Access,
    pub bearer: Option<Bearer>,
}

/// Settings the gate reads on every decision.
#[derive(Debug, Clone)]
pub struct GateSettings {
    pub csrf_protection: bool,
    /// How far a nonce may be from now, either way.
    pub nonce_lifetime: Duration,
    pub issue_for_pending: bool,
    /// Rule paths of every endpoint that opens a session (password and Auth0 login, signup,
    /// email confirmation): the paths blocklogin denies (decisions.md #27).
    pub session_paths: Vec<String>,
    /// Rule path of whitelink redemption: restrictions do not apply to it.
    pub whitelink_path: String,
    pub token_reuse: TokenReuse,
    /// Sessions' idle expiry and how often it is written back.
    pub sliding: Sliding,
}

/// The decision, with its ports: `S` answers for sessions, `N` for nonces (when the replay
/// guard is on), `loader` for cache misses.
pub struct Gate<S = Sessions, N = ReplayGuard> {
    pub policy: Arc<PolicyHandle>,
    pub sessions: S,
    pub replay: Option<N>,
    pub loader: Arc<dyn SubjectLoader>,
    pub subjects: Arc<Subjects>,
    pub api_keys: Arc<ApiKeyCache>,
    pub secrets: Arc<SecretBox>,
    pub geoip: Option<Arc<GeoIp>>,
    pub issuer: Arc<Issuer>,
    pub audit: AuditSink,
    pub settings: GateSettings,
    /// The live Back Office token families (`None`: no Back Office tokens are honoured).
    pub families: Option<Families>,
}

/// Logs and counts a port's failure, and fails closed.
fn unavailable<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Denial {
    move |err| {
        tracing::warn!(error = %err, what, "decision failed closed");
        metrics::counter!("portcullis_fail_closed_total", "cause" => what).increment(1);
        Denial::UNAVAILABLE
    }
}

impl<S: SessionStore, N: NonceGuard> Gate<S, N> {
    /// The decision and, for an identified subject, the bearer token to forward.
    pub async fn authorize(&self, facts: &Facts<'_>) -> Result<Grant, Denial> {
        self.authorize_at(facts, Now::system()).await
    }

    /// [`Gate::authorize`] at a given instant.
    pub async fn authorize_at(&self, facts: &Facts<'_>, now: Now) -> Result<Grant, Denial> {
        let access = self.decide(facts, now).await?;
        let bearer = match &access {
            Access::Anonymous => None,
            Access::Subject { subject, .. } => {
                Some(subject.bearer(&self.issuer, self.settings.token_reuse, now.unix_secs()))
            }
        };
        Ok(Grant { access, bearer })
    }

    /// The decision alone.
    pub async fn decide(&self, facts: &Facts<'_>, now: Now) -> Result<Access, Denial> {
        let policy = self.policy.current();
        self.check_restrictions(&policy, facts)?;
        let (subject, via) = match steps::route(&policy.rules, facts) {
            Route::Blocked => return Err(Denial::PERMISSION_DENIED),
            Route::Pass => return Ok(Access::Anonymous),
            Route::ApiKey => {
                let (subject, key) = self.api_key_subject(facts, now).await?;
                (subject, Via::ApiKey { key })
            }
            // A Back Office access token, when one is presented and is ours; otherwise the
            // cookie, as in Barong (which ignores Authorization).
            Route::Session => match facts.bearer.and_then(|t| self.backoffice_claims(t, now)) {
                Some(claims) => (self.backoffice_subject(&claims).await?, Via::BackOffice),
                None => (self.session_subject(facts, now).await?, Via::Session),
            },
        };
        let checked = steps::permission(&policy.permissions, facts, &subject.record);
        if let Some(event) = checked.audit {
            self.audit.record(event);
        }
        checked.result?;
        Ok(Access::Subject { subject, via })
    }

    /// Restrictions alone (for endpoints that only need them, like login itself).
    pub fn check_restrictions(&self, policy: &Policy, facts: &Facts<'_>) -> Result<(), Denial> {
        let geoip = self.geoip.as_deref();
        steps::restrictions(policy, facts, &self.settings, &mut |ip| {
            geoip.and_then(|g| g.locate(ip))
        })
    }
}
