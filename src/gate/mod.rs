//! The gate: one function from the facts of a request to a decision.
//!
//! Order (Barong §1.2, with decisions.md): restrictions → block rules → pass rules → choice of
//! credential (API-key headers, else the session cookie) → CSRF → session binding → subject
//! state → permissions. Every front — the proxy, the Barong decision endpoint, nginx,
//! forward-auth, our own API — calls [`Gate::authorize`]; none re-implements a check.
//!
//! Nothing here queries Postgres on the hot path: policies are a compiled snapshot, subjects
//! and API keys are cached per node and invalidated by change notices. Redis answers for
//! sessions and nonces; if it (or Postgres, on a cache miss) cannot answer, the decision is a
//! deny with 503 `authz.unavailable`.

pub mod geoip;
pub mod permissions;
pub mod policy;
pub mod restrictions;
pub mod subjects;

use std::net::IpAddr;
use std::sync::Arc;

use http::StatusCode;

use crate::audit::{self, AuditSink};
use crate::authn::api_keys::{ApiKeyCache, ApiKeyHeaders, Lookup, ReplayGuard, ruby_to_i};
use crate::authn::sessions::{self, Sessions, binding_holds};
use crate::crypto::{SecretBox, constant_time_eq};
use crate::domain::state;
use crate::domain::subject::SubjectKind;
use crate::jwt::Issuer;
use crate::net::method;
use crate::store::Store;
use crate::store::activities::NewActivity;
use geoip::GeoIp;
use permissions::Verdict as PermissionVerdict;
use policy::PolicyHandle;
use restrictions::Verdict as RestrictionVerdict;
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
    pub csrf_token: Option<&'a str>,
    pub api_key: ApiKeyHeaders<'a>,
}

/// A refusal: the status and the `authz.*` code the client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    pub status: StatusCode,
    pub code: &'static str,
}

impl Denial {
    const fn new(status: u16, code: &'static str) -> Denial {
        Denial {
            status: match StatusCode::from_u16(status) {
                Ok(s) => s,
                Err(_) => StatusCode::FORBIDDEN,
            },
            code,
        }
    }

    pub const UNAVAILABLE: Denial = Denial::new(503, "authz.unavailable");
    /// A path whose meaning proxies or upstreams disagree on (see `net::path::judge`).
    pub const INVALID_PATH: Denial = Denial::new(400, "authz.invalid_path");
    /// The original method or URI is missing, or the method is not one the gate knows.
    pub const INVALID_REQUEST: Denial = Denial::new(400, "authz.invalid_request");
    /// A trusted proxy's X-Forwarded-For cannot be read where it must be believed.
    pub const INVALID_FORWARDED_FOR: Denial = Denial::new(400, "authz.invalid_forwarded_for");
    const PERMISSION_DENIED: Denial = Denial::new(401, "authz.permission_denied");
    const MISSING_CSRF: Denial = Denial::new(401, "authz.missing_csrf_token");
    const CSRF_MISMATCH: Denial = Denial::new(401, "authz.csrf_token_mismatch");
    const INVALID_SESSION: Denial = Denial::new(401, "authz.invalid_session");
    const SESSION_MISMATCH: Denial = Denial::new(401, "authz.client_session_mismatch");
    const USER_NOT_ACTIVE: Denial = Denial::new(401, "authz.user_not_active");
    const INVALID_PERMISSION: Denial = Denial::new(401, "authz.invalid_permission");
    const INVALID_KEY_HEADERS: Denial = Denial::new(422, "authz.invalid_api_key_headers");
    const UNEXISTENT_KEY: Denial = Denial::new(401, "authz.unexistent_apikey");
    const NONCE_NOT_TIMESTAMP: Denial = Denial::new(401, "authz.nonce_not_valid_timestamp");
    const NONCE_EXPIRED: Denial = Denial::new(401, "authz.nonce_expired");
    const INVALID_SIGNATURE: Denial = Denial::new(401, "authz.invalid_signature");
    const KEY_NOT_ACTIVE: Denial = Denial::new(401, "authz.apikey_not_active");
    const DISABLED_2FA: Denial = Denial::new(401, "authz.disabled_2fa");
    /// The address asked for too many unknown key ids lately (see `authn::api_keys`).
    const TOO_MANY_UNKNOWN_KEYS: Denial = Denial::new(429, "authz.too_many_attempts");
}

/// How the subject proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Session,
    ApiKey { kid: String },
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
    pub bearer: Option<Arc<str>>,
}

/// Settings the gate reads on every decision.
#[derive(Debug, Clone)]
pub struct GateSettings {
    pub csrf_protection: bool,
    pub nonce_lifetime_ms: u64,
    pub issue_for_pending: bool,
    /// Rule paths of every endpoint that opens a session (password and Auth0 login, signup,
    /// email confirmation): the paths blocklogin denies (decisions.md #27).
    pub session_paths: Vec<String>,
    /// Rule path of whitelink redemption: restrictions do not apply to it.
    pub whitelink_path: String,
    pub token_reuse: TokenReuse,
}

pub struct Gate {
    pub policy: Arc<PolicyHandle>,
    pub sessions: Sessions,
    pub subjects: Arc<Subjects>,
    pub api_keys: Arc<ApiKeyCache>,
    pub replay: Option<ReplayGuard>,
    pub store: Store,
    pub secrets: Arc<SecretBox>,
    pub geoip: Option<Arc<GeoIp>>,
    pub issuer: Arc<Issuer>,
    pub audit: AuditSink,
    pub settings: GateSettings,
}

fn unavailable<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Denial {
    move |err| {
        tracing::warn!(error = %err, what, "decision failed closed");
        metrics::counter!("portcullis_fail_closed_total", "cause" => what).increment(1);
        Denial::UNAVAILABLE
    }
}

impl Gate {
    /// The decision and, for an identified subject, the bearer token to forward.
    pub async fn authorize(&self, facts: &Facts<'_>) -> Result<Grant, Denial> {
        let access = self.decide(facts).await?;
        let bearer = match &access {
            Access::Anonymous => None,
            Access::Subject { subject, .. } => {
                Some(subject.bearer(&self.issuer, self.settings.token_reuse, sessions::now()))
            }
        };
        Ok(Grant { access, bearer })
    }

    /// The decision alone.
    pub async fn decide(&self, facts: &Facts<'_>) -> Result<Access, Denial> {
        let policy = self.policy.current();
        self.check_restrictions(&policy, facts)?;
        if policy.rules.blocks(facts.path) {
            return Err(Denial::PERMISSION_DENIED);
        }
        if policy.rules.passes(facts.path) {
            return Ok(Access::Anonymous);
        }
        let (subject, via) = if facts.api_key.any_present() {
            self.api_key_subject(facts).await?
        } else {
            self.session_subject(facts).await?
        };
        self.check_permission(&policy, facts, &subject)?;
        Ok(Access::Subject { subject, via })
    }

    /// Restrictions alone (for endpoints that only need them, like login itself).
    pub fn check_restrictions(
        &self,
        policy: &policy::Policy,
        facts: &Facts<'_>,
    ) -> Result<(), Denial> {
        if policy.restrictions.is_empty() || facts.path == self.settings.whitelink_path {
            return Ok(());
        }
        let is_login = self.settings.session_paths.iter().any(|p| p == facts.path);
        let geoip = self.geoip.as_deref();
        let verdict = policy.restrictions.check(facts.ip, is_login, &mut || {
            geoip.and_then(|g| g.locate(facts.ip))
        });
        match verdict {
            RestrictionVerdict::Clear => Ok(()),
            RestrictionVerdict::Deny(hit) => {
                metrics::counter!("portcullis_restricted_total", "category" => hit.category.error_code())
                    .increment(1);
                Err(Denial {
                    status: StatusCode::from_u16(hit.status).unwrap_or(StatusCode::FORBIDDEN),
                    code: hit.category.error_code(),
                })
            }
        }
    }

    async fn session_subject(
        &self,
        facts: &Facts<'_>,
    ) -> Result<(Arc<CachedSubject>, Via), Denial> {
        // Every method but GET, HEAD and OPTIONS, in any letter case (decisions.md #26).
        let needs_csrf = self.settings.csrf_protection && !method::is_safe(facts.verb);
        // Barong checks the CSRF header before it looks at the session at all (quirk #1).
        if needs_csrf && facts.csrf_token.is_none() {
            return Err(Denial::MISSING_CSRF);
        }
        let session = match facts.session_id {
            Some(id) => self.sessions.load(id).await.map_err(unavailable("redis"))?,
            None => None,
        };
        if needs_csrf {
            let expected = session
                .as_ref()
                .map(|s| s.csrf_token.as_bytes())
                .unwrap_or(b"");
            let given = facts.csrf_token.unwrap_or("").as_bytes();
            if expected.is_empty() || !constant_time_eq(expected, given) {
                return Err(Denial::CSRF_MISMATCH);
            }
        }
        let (Some(session), Some(id)) = (session, facts.session_id) else {
            return Err(Denial::INVALID_SESSION);
        };
        let now = sessions::now();
        if !binding_holds(&session, facts.user_agent, facts.ip, now) {
            self.sessions
                .destroy(id, &session.uid)
                .await
                .map_err(unavailable("redis"))?;
            return Err(Denial::SESSION_MISMATCH);
        }
        self.sessions
            .renew_if_due(id, &session, now)
            .await
            .map_err(unavailable("redis"))?;
        let subject = self
            .subjects
            .get(&self.store, SubjectKind::User, &session.uid)
            .await
            .map_err(unavailable("postgres"))?
            .ok_or(Denial::INVALID_SESSION)?;
        if !self.may_hold_token(&subject.record.state) {
            return Err(Denial::USER_NOT_ACTIVE);
        }
        Ok((subject, Via::Session))
    }

    async fn api_key_subject(
        &self,
        facts: &Facts<'_>,
    ) -> Result<(Arc<CachedSubject>, Via), Denial> {
        let (kid, nonce, signature) = facts
            .api_key
            .complete()
            .ok_or(Denial::INVALID_KEY_HEADERS)?;
        let key = match self
            .api_keys
            .get(&self.store, &self.secrets, kid, facts.ip)
            .await
            .map_err(unavailable("postgres"))?
        {
            Lookup::Found(key) => key,
            Lookup::Unknown => return Err(Denial::UNEXISTENT_KEY),
            Lookup::Throttled => return Err(Denial::TOO_MANY_UNKNOWN_KEYS),
        };
        let nonce_ms = ruby_to_i(nonce);
        if nonce_ms <= 0 {
            return Err(Denial::NONCE_NOT_TIMESTAMP);
        }
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        if now_ms.abs_diff(nonce_ms) >= self.settings.nonce_lifetime_ms {
            return Err(Denial::NONCE_EXPIRED);
        }
        if !key.verifier.verify(nonce, &key.kid, signature) {
            return Err(Denial::INVALID_SIGNATURE);
        }
        // Checked after the signature, so that nobody but the key holder can burn a nonce.
        if let Some(replay) = &self.replay
            && !replay
                .first_use(&key.kid, nonce)
                .await
                .map_err(unavailable("redis"))?
        {
            metrics::counter!("portcullis_api_key_replays_total").increment(1);
            return Err(Denial::NONCE_EXPIRED);
        }
        if key.state != "active" {
            return Err(Denial::KEY_NOT_ACTIVE);
        }
        let subject = self
            .subjects
            .get(&self.store, key.holder_kind, &key.holder_uid)
            .await
            .map_err(unavailable("postgres"))?
            .ok_or(Denial::UNEXISTENT_KEY)?;
        if !self.may_hold_token(&subject.record.state) {
            return Err(Denial::INVALID_SESSION);
        }
        if subject.record.kind == SubjectKind::User && !subject.record.otp {
            return Err(Denial::DISABLED_2FA);
        }
        Ok((
            subject,
            Via::ApiKey {
                kid: key.kid.clone(),
            },
        ))
    }

    fn may_hold_token(&self, user_state: &str) -> bool {
        user_state == state::ACTIVE
            || (self.settings.issue_for_pending && user_state == state::PENDING)
    }

    fn check_permission(
        &self,
        policy: &policy::Policy,
        facts: &Facts<'_>,
        subject: &CachedSubject,
    ) -> Result<(), Denial> {
        let record = &subject.record;
        let verdict = policy
            .permissions
            .check(&record.role, facts.verb, facts.path);
        let (result, audit_topic) = match &verdict {
            PermissionVerdict::Deny => ("denied", None),
            PermissionVerdict::Allow { audit: Some(topic) } => ("succeed", Some(topic.as_deref())),
            PermissionVerdict::Allow { audit: None } => return Ok(()),
        };
        // Barong records these for users only, never for service accounts.
        if record.kind == SubjectKind::User {
            self.audit.record(NewActivity {
                user_id: Some(record.id),
                target_uid: audit::target_uid(facts.query),
                category: "admin",
                user_ip: facts.ip.to_string(),
                user_ip_country: None,
                user_agent: facts.user_agent.to_string(),
                topic: audit::topic_for(facts.path, audit_topic.flatten()),
                action: audit::action_for_verb(facts.verb).to_string(),
                result,
                data: Some(audit::request_data(facts.path, facts.query)),
            });
        }
        match verdict {
            PermissionVerdict::Deny => Err(Denial::INVALID_PERMISSION),
            PermissionVerdict::Allow { .. } => Ok(()),
        }
    }
}
