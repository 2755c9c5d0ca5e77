//! The decision as a table: Barong's order, its quirks and every `authz.*` code the gate
//! answers with, over in-memory ports and a fixed clock. No Postgres, no Redis, no HTTP.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::authn::api_keys::{MemoryNonces, sign};
use crate::authn::sessions::{MemorySessions, SessionData};
use crate::config::{JwtAlgorithm, Limit};
use crate::domain::loader::{ApiKeyRecord, KeyState, MemoryLoader};
use crate::domain::policy::{AuthzRuleRow, PermissionRow, PolicyRows, RestrictionRow, RuleKind};
use crate::domain::subject::{SubjectKind, SubjectRecord};
use crate::jwt::keys::SigningKey;
use crate::net::path::Forwarding;

const NOW_MS: i64 = 1_700_000_000_000;
const NOW: Now = Now::from_unix_ms(NOW_MS);
const NOW_SECS: i64 = NOW_MS / 1000;
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const SESSION: &str = "session-1";
const CSRF: &str = "csrf-1";
const UA: &str = "Mozilla/5.0";
const HOME: &str = "10.1.2.3";
const LOGIN: &str = "api/v2/barong/identity/sessions";
const WHITELINK: &str = "api/v2/barong/identity/users/access";
const RESOURCE: &str = "api/v2/resource/users/me";
const ADMIN: &str = "api/v2/admin/markets";
/// In the GeoLite2 test database: United Kingdom, Europe.
const UK_IP: &str = "81.2.69.142";

// === the world a decision sees ===

/// Everything behind a decision: policy rows, the records behind the ports, settings.
struct World {
    rows: PolicyRows,
    subjects: Vec<SubjectRecord>,
    keys: Vec<ApiKeyRecord>,
    sessions: Vec<(&'static str, SessionData)>,
    settings: GateSettings,
    replay_guard: bool,
    unknown_keys_per_ip: u32,
    sessions_down: bool,
    loader_down: bool,
    nonces_down: bool,
}

fn user(uid: &str, id: i64, role: &str) -> SubjectRecord {
    SubjectRecord {
        kind: SubjectKind::User,
        id,
        uid: uid.into(),
        username: None,
        email: format!("{uid}@example.com"),
        role: role.into(),
        level: 3,
        state: "active".into(),
        referral_id: None,
        otp: true,
    }
}

fn service_account(uid: &str, id: i64) -> SubjectRecord {
    SubjectRecord {
        kind: SubjectKind::ServiceAccount,
        otp: false,
        ..user(uid, id, "member")
    }
}

fn key(kid: &str, holder_kind: SubjectKind, holder_uid: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        kid: kid.into(),
        algorithm: "HS256".into(),
        // Sealed when the gate is built.
        secret_encrypted: String::new(),
        state: KeyState::Active,
        holder_kind,
        holder_uid: holder_uid.into(),
    }
}

fn rule(kind: RuleKind, path: &str) -> AuthzRuleRow {
    AuthzRuleRow {
        id: 0,
        kind,
        path: path.into(),
    }
}

fn permission(
    role: &str,
    verb: &str,
    path: &str,
    action: &str,
    topic: Option<&str>,
) -> PermissionRow {
    PermissionRow {
        id: 0,
        action: action.into(),
        role: role.into(),
        verb: verb.into(),
        path: path.into(),
        topic: topic.map(Into::into),
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        updated_at: time::OffsetDateTime::UNIX_EPOCH,
    }
}

fn restriction(category: &str, scope: &str, value: &str, code: Option<i32>) -> RestrictionRow {
    RestrictionRow {
        id: 0,
        category: category.into(),
        scope: scope.into(),
        value: value.into(),
        code,
        state: "enabled".into(),
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        updated_at: time::OffsetDateTime::UNIX_EPOCH,
    }
}

impl World {
    /// A member `ID1` and an admin `ID2` (both with 2FA), a service account `SI1`, a key for
    /// `ID1` and one for `SI1`, `ID1`'s session from `HOME`, and Barong's settings.
    fn new() -> World {
        World {
            rows: PolicyRows {
                restrictions: vec![],
                rules: vec![
                    rule(RuleKind::Pass, "api/v2/barong/identity"),
                    rule(RuleKind::Pass, "api/v2/public"),
                    rule(RuleKind::Block, "api/v2/public/secret"),
                ],
                permissions: vec![
                    permission("member", "ALL", "api/v2/resource", "ACCEPT", None),
                    permission("admin", "ALL", "api/v2/admin", "ACCEPT", None),
                    permission("admin", "POST", "api/v2/admin", "AUDIT", Some("trading")),
                ],
            },
            subjects: vec![
                user("ID1", 1, "member"),
                user("ID2", 2, "admin"),
                service_account("SI1", 3),
            ],
            keys: vec![
                key("kid-user", SubjectKind::User, "ID1"),
                key("kid-admin", SubjectKind::User, "ID2"),
                key("kid-sa", SubjectKind::ServiceAccount, "SI1"),
            ],
            sessions: vec![(SESSION, session("ID1"))],
            settings: GateSettings {
                csrf_protection: true,
                nonce_lifetime: Duration::from_millis(5000),
                issue_for_pending: true,
                session_paths: vec![LOGIN.into()],
                whitelink_path: WHITELINK.into(),
                token_reuse: TokenReuse {
                    enabled: false,
                    fraction: 0.5,
                },
                sliding: Sliding {
                    idle: 1800,
                    renew_interval: 30,
                },
            },
            replay_guard: true,
            unknown_keys_per_ip: 100,
            sessions_down: false,
            loader_down: false,
            nonces_down: false,
        }
    }

    fn subject(&mut self, uid: &str) -> &mut SubjectRecord {
        self.subjects.iter_mut().find(|s| s.uid == uid).unwrap()
    }

    fn key(&mut self, kid: &str) -> &mut ApiKeyRecord {
        self.keys.iter_mut().find(|k| k.kid == kid).unwrap()
    }

    fn session(&mut self) -> &mut SessionData {
        &mut self.sessions[0].1
    }

    fn restrict(&mut self, category: &str, scope: &str, value: &str, code: Option<i32>) {
        self.rows
            .restrictions
            .push(restriction(category, scope, value, code));
    }
}

/// A fresh session of `uid`, opened from `HOME` with `UA` a minute ago (no renewal due).
fn session(uid: &str) -> SessionData {
    SessionData {
        uid: uid.into(),
        user_ip: HOME.into(),
        user_agent: UA.into(),
        expire_time: NOW_SECS + 1740,
        csrf_token: CSRF.into(),
        renewed_at: NOW_SECS - 60 + 31,
    }
}

/// One RSA key for every test: generating it is the slow part.
fn issuer() -> Arc<Issuer> {
    static ISSUER: OnceLock<Arc<Issuer>> = OnceLock::new();
    ISSUER
        .get_or_init(|| {
            Arc::new(Issuer::new(
                SigningKey::generate(),
                JwtAlgorithm::RS256,
                3600,
                false,
            ))
        })
        .clone()
}

fn geoip() -> Arc<GeoIp> {
    static GEOIP: OnceLock<Arc<GeoIp>> = OnceLock::new();
    GEOIP
        .get_or_init(|| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/GeoLite2-Country-Test.mmdb");
            Arc::new(GeoIp::open(&path, "en").unwrap())
        })
        .clone()
}

type TestGate = Gate<MemorySessions, MemoryNonces>;

/// The gate over `world`, with its loader and the receiving end of its audit queue.
fn build(world: &World) -> (TestGate, Arc<MemoryLoader>, mpsc::Receiver<AuditEvent>) {
    let secrets = Arc::new(SecretBox::new(&[7; 32]));
    let loader = Arc::new(MemoryLoader::default());
    for subject in &world.subjects {
        loader.add_subject(subject.clone());
    }
    for key in &world.keys {
        let context = crate::domain::loader::secret_context(&key.kid);
        loader.add_api_key(ApiKeyRecord {
            secret_encrypted: secrets.seal(&context, SECRET.as_bytes()),
            ..key.clone()
        });
    }
    loader.set_unavailable(world.loader_down);
    let sessions = MemorySessions::default();
    for (id, data) in &world.sessions {
        sessions.insert(id, data.clone());
    }
    sessions.set_unavailable(world.sessions_down);
    let nonces = MemoryNonces::default();
    nonces.set_unavailable(world.nonces_down);
    let policy = Arc::new(PolicyHandle::new());
    policy.replace(Policy::compile(&world.rows));
    let ttl = Duration::from_secs(60);
    let (audit, audit_rx) = AuditSink::new();
    let gate = Gate {
        policy,
        sessions,
        replay: world.replay_guard.then_some(nonces),
        loader: loader.clone(),
        subjects: Arc::new(Subjects::new(ttl, 1000)),
        api_keys: Arc::new(ApiKeyCache::new(
            ttl,
            1000,
            Limit {
                max: world.unknown_keys_per_ip,
                window: std::time::Duration::from_secs(60),
            },
        )),
        secrets,
        geoip: Some(geoip()),
        issuer: issuer(),
        audit,
        settings: world.settings.clone(),
        families: None,
    };
    (gate, loader, audit_rx)
}

// === the request ===

/// A request as a test writes it; [`Req::facts`] lends it to the gate.
#[derive(Clone)]
struct Req {
    verb: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    ip: IpAddr,
    user_agent: &'static str,
    session_id: Option<&'static str>,
    csrf_token: Option<&'static str>,
    kid: Option<String>,
    nonce: Option<String>,
    signature: Option<String>,
}

impl Req {
    /// `ID1` reading their own profile with the session cookie.
    fn new() -> Req {
        Req {
            verb: "GET",
            path: RESOURCE,
            query: None,
            ip: HOME.parse().unwrap(),
            user_agent: UA,
            session_id: Some(SESSION),
            csrf_token: None,
            kid: None,
            nonce: None,
            signature: None,
        }
    }

    /// Signs with `kid` and a nonce of `nonce_ms` (the session cookie stays).
    fn signed(&mut self, kid: &str, nonce_ms: i64) {
        let nonce = nonce_ms.to_string();
        self.signature = Some(sign(SECRET, &nonce, kid));
        self.nonce = Some(nonce);
        self.kid = Some(kid.into());
    }

    fn facts(&self) -> Facts<'_> {
        Facts {
            verb: self.verb,
            path: self.path,
            query: self.query,
            ip: self.ip,
            user_agent: self.user_agent,
            session_id: self.session_id,
            bearer: None,
            csrf_token: self.csrf_token,
            api_key: ApiKeyHeaders {
                kid: self.kid.as_deref(),
                nonce: self.nonce.as_deref(),
                signature: self.signature.as_deref(),
            },
        }
    }
}

// === the table ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cred {
    Session,
    ApiKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A pass rule: no identity.
    Anonymous,
    /// Allowed as this subject, proven this way.
    Allowed(&'static str, Cred),
    /// Refused with this status and code.
    Denied(u16, &'static str),
}

use Expect::{Allowed, Anonymous, Denied};

struct Case {
    name: &'static str,
    world: fn(&mut World),
    /// A request made first (its answer ignored): to burn a nonce or count an unknown key.
    earlier: Option<fn(&mut Req)>,
    req: fn(&mut Req),
    expect: Expect,
    /// The audit event the decision queues (none when `None`).
    audit: Option<AuditResult>,
}

fn case(name: &'static str, world: fn(&mut World), req: fn(&mut Req), expect: Expect) -> Case {
    Case {
        name,
        world,
        earlier: None,
        req,
        expect,
        audit: None,
    }
}

impl Case {
    fn earlier(mut self, earlier: fn(&mut Req)) -> Case {
        self.earlier = Some(earlier);
        self
    }

    fn audit(mut self, result: AuditResult) -> Case {
        self.audit = Some(result);
        self
    }
}

fn same(_: &mut World) {}
fn plain(_: &mut Req) {}

fn signed_user(r: &mut Req) {
    r.signed("kid-user", NOW_MS);
}

fn signed_sa(r: &mut Req) {
    r.signed("kid-sa", NOW_MS);
}

/// `ID1` is pending, and tokens are issued for pending users (Barong's default).
fn pending(w: &mut World) {
    w.subject("ID1").state = "pending".into();
}

fn pending_without_tokens(w: &mut World) {
    pending(w);
    w.settings.issue_for_pending = false;
}

fn post_with_csrf(r: &mut Req) {
    r.verb = "POST";
    r.csrf_token = Some(CSRF);
}

fn cases() -> Vec<Case> {
    const RESTRICT_BLACKLIST: &str = "authz.restrict.blacklist";
    vec![
        // --- Barong's order ---
        case(
            "restrictions come before pass rules",
            |w| w.restrict("blacklist", "all", "all", None),
            |r| r.path = "api/v2/public/markets",
            Denied(401, RESTRICT_BLACKLIST),
        ),
        case(
            "restrictions come before block rules",
            |w| w.restrict("blacklist", "ip", HOME, Some(433)),
            |r| r.path = "api/v2/public/secret/x",
            Denied(433, RESTRICT_BLACKLIST),
        ),
        case(
            "block comes before pass",
            same,
            |r| r.path = "api/v2/public/secret/x",
            Denied(401, "authz.permission_denied"),
        ),
        case(
            "block comes before the credential",
            same,
            |r| {
                r.path = "api/v2/public/secret/x";
                r.kid = Some(String::new());
            },
            Denied(401, "authz.permission_denied"),
        ),
        case(
            "pass comes before the credential: broken key headers",
            same,
            |r| {
                r.path = "api/v2/public/markets";
                r.kid = Some(" ".into());
            },
            Anonymous,
        ),
        case(
            "pass comes before the credential: no CSRF, no session",
            same,
            |r| {
                r.path = "api/v2/public/markets";
                r.verb = "POST";
                r.session_id = None;
            },
            Anonymous,
        ),
        case(
            "pass resolves no identity even with a valid cookie",
            same,
            |r| r.path = "api/v2/public/markets",
            Anonymous,
        ),
        case(
            "the credential comes before permissions (session)",
            same,
            |r| {
                r.path = ADMIN;
                r.session_id = None;
            },
            Denied(401, "authz.invalid_session"),
        ),
        case(
            "the credential comes before permissions (API key)",
            same,
            |r| {
                r.path = ADMIN;
                r.signed("kid-user", NOW_MS);
                r.signature = Some("00".into());
            },
            Denied(401, "authz.invalid_signature"),
        ),
        // --- which credential wins ---
        case(
            "a blank API-key header beats a valid session",
            same,
            |r| r.kid = Some(String::new()),
            Denied(422, "authz.invalid_api_key_headers"),
        ),
        case(
            "a valid key beats a valid session of someone else",
            same,
            signed_sa,
            Allowed("SI1", Cred::ApiKey),
        ),
        case(
            "the session alone",
            same,
            plain,
            Allowed("ID1", Cred::Session),
        ),
        // --- the API-key path, every code in order ---
        case(
            "headers: one of three",
            same,
            |r| r.kid = Some("kid-user".into()),
            Denied(422, "authz.invalid_api_key_headers"),
        ),
        case(
            "headers: whitespace counts as blank, before the key lookup",
            same,
            |r| {
                r.signed("no-such-kid", NOW_MS);
                r.nonce = Some("  ".into());
            },
            Denied(422, "authz.invalid_api_key_headers"),
        ),
        case(
            "unknown kid, before the nonce",
            same,
            |r| {
                r.signed("no-such-kid", NOW_MS);
                r.nonce = Some("abc".into());
            },
            Denied(401, "authz.unexistent_apikey"),
        ),
        case(
            "too many unknown kids from one address",
            |w| w.unknown_keys_per_ip = 1,
            |r| r.signed("no-such-kid-2", NOW_MS),
            Denied(429, "authz.too_many_attempts"),
        )
        .earlier(|r| r.signed("no-such-kid-1", NOW_MS)),
        case(
            "a nonce that is no number, before the signature",
            same,
            |r| {
                r.signed("kid-user", NOW_MS);
                r.nonce = Some("abc".into());
            },
            Denied(401, "authz.nonce_not_valid_timestamp"),
        ),
        case(
            "a negative nonce",
            same,
            |r| r.signed("kid-user", -NOW_MS),
            Denied(401, "authz.nonce_not_valid_timestamp"),
        ),
        case(
            "a nonce in seconds is never in the window",
            same,
            |r| r.signed("kid-user", NOW_SECS),
            Denied(401, "authz.nonce_expired"),
        ),
        case(
            "a nonce exactly one lifetime old",
            same,
            |r| r.signed("kid-user", NOW_MS - 5000),
            Denied(401, "authz.nonce_expired"),
        ),
        case(
            "a nonce exactly one lifetime ahead",
            same,
            |r| r.signed("kid-user", NOW_MS + 5000),
            Denied(401, "authz.nonce_expired"),
        ),
        case(
            "a nonce just inside the window",
            same,
            |r| r.signed("kid-user", NOW_MS - 4999),
            Allowed("ID1", Cred::ApiKey),
        ),
        case(
            "a bad signature, before the key's state",
            |w| w.key("kid-user").state = KeyState::Inactive,
            |r| {
                r.signed("kid-user", NOW_MS);
                r.signature = Some("ab".repeat(32));
            },
            Denied(401, "authz.invalid_signature"),
        ),
        case(
            "a replayed nonce",
            same,
            signed_user,
            Denied(401, "authz.nonce_expired"),
        )
        .earlier(signed_user),
        case(
            "a replay, before the key's state",
            |w| w.key("kid-user").state = KeyState::Inactive,
            signed_user,
            Denied(401, "authz.nonce_expired"),
        )
        .earlier(signed_user),
        case(
            "no replay guard: Barong accepts a nonce twice",
            |w| w.replay_guard = false,
            signed_user,
            Allowed("ID1", Cred::ApiKey),
        )
        .earlier(signed_user),
        case(
            "an inactive key, before its holder",
            |w| {
                w.key("kid-user").state = KeyState::Inactive;
                w.subjects.retain(|s| s.uid != "ID1");
            },
            signed_user,
            Denied(401, "authz.apikey_not_active"),
        ),
        case(
            "the holder is gone",
            |w| w.subjects.retain(|s| s.uid != "ID1"),
            signed_user,
            Denied(401, "authz.unexistent_apikey"),
        ),
        case(
            "the holder is not active, before its 2FA",
            |w| {
                w.subject("ID1").state = "banned".into();
                w.subject("ID1").otp = false;
            },
            signed_user,
            Denied(401, "authz.invalid_session"),
        ),
        case(
            "a pending holder may act when tokens are issued for pending",
            pending,
            signed_user,
            Allowed("ID1", Cred::ApiKey),
        ),
        case(
            "a pending holder may not otherwise",
            pending_without_tokens,
            signed_user,
            Denied(401, "authz.invalid_session"),
        ),
        case(
            "a user holder without 2FA",
            |w| w.subject("ID1").otp = false,
            signed_user,
            Denied(401, "authz.disabled_2fa"),
        ),
        case(
            "a service account needs no 2FA",
            same,
            signed_sa,
            Allowed("SI1", Cred::ApiKey),
        ),
        case(
            "CSRF never applies to API keys",
            same,
            |r| {
                r.verb = "POST";
                r.session_id = None;
                r.signed("kid-user", NOW_MS);
            },
            Allowed("ID1", Cred::ApiKey),
        ),
        // --- the session path, every code in order ---
        case(
            "quirk #1: an anonymous POST lacks its CSRF token first",
            same,
            |r| {
                r.verb = "POST";
                r.session_id = None;
            },
            Denied(401, "authz.missing_csrf_token"),
        ),
        case(
            "quirk #1: the session is not even looked at",
            |w| w.sessions_down = true,
            |r| r.verb = "DELETE",
            Denied(401, "authz.missing_csrf_token"),
        ),
        case(
            "a wrong CSRF token",
            same,
            |r| {
                r.verb = "PUT";
                r.csrf_token = Some("other");
            },
            Denied(401, "authz.csrf_token_mismatch"),
        ),
        case(
            "a CSRF token without a session",
            same,
            |r| {
                post_with_csrf(r);
                r.session_id = Some("no-such-session");
            },
            Denied(401, "authz.csrf_token_mismatch"),
        ),
        case(
            "the right CSRF token",
            same,
            post_with_csrf,
            Allowed("ID1", Cred::Session),
        ),
        case(
            "CSRF protection off",
            |w| w.settings.csrf_protection = false,
            |r| r.verb = "PATCH",
            Allowed("ID1", Cred::Session),
        ),
        case(
            "HEAD needs no CSRF token",
            same,
            |r| r.verb = "HEAD",
            Allowed("ID1", Cred::Session),
        ),
        case(
            "no cookie",
            same,
            |r| r.session_id = None,
            Denied(401, "authz.invalid_session"),
        ),
        case(
            "an unknown session",
            same,
            |r| r.session_id = Some("no-such-session"),
            Denied(401, "authz.invalid_session"),
        ),
        case(
            "another User-Agent",
            same,
            |r| r.user_agent = "curl/8",
            Denied(401, "authz.client_session_mismatch"),
        ),
        case(
            "another /16",
            same,
            |r| r.ip = "10.2.2.3".parse().unwrap(),
            Denied(401, "authz.client_session_mismatch"),
        ),
        case(
            "the same /16",
            same,
            |r| r.ip = "10.1.200.9".parse().unwrap(),
            Allowed("ID1", Cred::Session),
        ),
        case(
            "an expired session",
            |w| w.session().expire_time = NOW_SECS,
            plain,
            Denied(401, "authz.client_session_mismatch"),
        ),
        case(
            "the binding, before the user's state",
            |w| w.subject("ID1").state = "banned".into(),
            |r| r.user_agent = "curl/8",
            Denied(401, "authz.client_session_mismatch"),
        ),
        case(
            "the session's user is gone",
            |w| w.subjects.retain(|s| s.uid != "ID1"),
            plain,
            Denied(401, "authz.invalid_session"),
        ),
        case(
            "a banned user",
            |w| w.subject("ID1").state = "banned".into(),
            plain,
            Denied(401, "authz.user_not_active"),
        ),
        case(
            "a pending user when tokens are issued for pending",
            pending,
            plain,
            Allowed("ID1", Cred::Session),
        ),
        case(
            "a pending user otherwise",
            pending_without_tokens,
            plain,
            Denied(401, "authz.user_not_active"),
        ),
        // --- permissions and AUDIT ---
        case(
            "a role without a matching row",
            same,
            |r| r.path = ADMIN,
            Denied(401, "authz.invalid_permission"),
        )
        .audit(AuditResult::Denied),
        case(
            "an API-key user is audited too",
            same,
            |r| {
                r.path = ADMIN;
                r.signed("kid-user", NOW_MS);
            },
            Denied(401, "authz.invalid_permission"),
        )
        .audit(AuditResult::Denied),
        case(
            "a service account is never audited",
            same,
            |r| {
                r.path = ADMIN;
                r.signed("kid-sa", NOW_MS);
            },
            Denied(401, "authz.invalid_permission"),
        ),
        case(
            "an AUDIT row records an allowed request",
            same,
            |r| {
                r.path = ADMIN;
                r.verb = "POST";
                r.session_id = None;
                r.signed("kid-admin", NOW_MS);
            },
            Allowed("ID2", Cred::ApiKey),
        )
        .audit(AuditResult::Succeed),
        case(
            "no AUDIT row, no record",
            same,
            |r| {
                r.path = ADMIN;
                r.session_id = None;
                r.signed("kid-admin", NOW_MS);
            },
            Allowed("ID2", Cred::ApiKey),
        ),
        // --- restrictions, every category ---
        case(
            "whitelist stops the categories after it",
            |w| {
                w.restrict("whitelist", "ip", HOME, None);
                w.restrict("blacklist", "all", "all", None);
            },
            plain,
            Allowed("ID1", Cred::Session),
        ),
        case(
            "maintenance, with Barong's default status",
            |w| w.restrict("maintenance", "all", "all", None),
            plain,
            Denied(471, "authz.restrict.maintenance"),
        ),
        case(
            "maintenance comes before blacklist",
            |w| {
                w.restrict("blacklist", "all", "all", None);
                w.restrict("maintenance", "ip", HOME, Some(599));
            },
            plain,
            Denied(599, "authz.restrict.maintenance"),
        ),
        case(
            "blacklist by subnet",
            |w| w.restrict("blacklist", "ip_subnet", "10.1.0.0/16", None),
            plain,
            Denied(403, RESTRICT_BLACKLIST),
        ),
        case(
            "blacklist by country",
            |w| w.restrict("blacklist", "country", "GB", None),
            |r| r.ip = UK_IP.parse().unwrap(),
            Denied(423, RESTRICT_BLACKLIST),
        ),
        case(
            "maintenance by continent",
            |w| w.restrict("maintenance", "continent", "europe", Some(472)),
            |r| r.ip = UK_IP.parse().unwrap(),
            Denied(472, "authz.restrict.maintenance"),
        ),
        case(
            "another country is let through",
            |w| w.restrict("blacklist", "country", "US", None),
            |r| {
                r.ip = UK_IP.parse().unwrap();
                r.path = "api/v2/public/x";
            },
            Anonymous,
        ),
        case(
            "blocklogin denies the login path",
            |w| w.restrict("blocklogin", "all", "all", None),
            |r| {
                r.path = LOGIN;
                r.verb = "POST";
            },
            Denied(401, "authz.restrict.blocklogin"),
        ),
        case(
            "blocklogin lets every other path through",
            |w| w.restrict("blocklogin", "all", "all", None),
            plain,
            Allowed("ID1", Cred::Session),
        ),
        case(
            "the whitelink path skips restrictions",
            |w| w.restrict("maintenance", "all", "all", None),
            |r| r.path = WHITELINK,
            Anonymous,
        ),
        // --- a port that cannot answer fails closed ---
        case(
            "the session store is down",
            |w| w.sessions_down = true,
            plain,
            Denied(503, "authz.unavailable"),
        ),
        case(
            "the loader is down (session path)",
            |w| w.loader_down = true,
            plain,
            Denied(503, "authz.unavailable"),
        ),
        case(
            "the loader is down (API-key path)",
            |w| w.loader_down = true,
            signed_user,
            Denied(503, "authz.unavailable"),
        ),
        case(
            "the nonce guard is down",
            |w| w.nonces_down = true,
            signed_user,
            Denied(503, "authz.unavailable"),
        ),
        case(
            "a down nonce guard is not asked when it is off",
            |w| {
                w.nonces_down = true;
                w.replay_guard = false;
            },
            signed_user,
            Allowed("ID1", Cred::ApiKey),
        ),
    ]
}

/// What the gate answered, in the table's terms.
fn outcome(result: Result<Access, Denial>) -> Expect {
    match result {
        Ok(Access::Anonymous) => Anonymous,
        Ok(Access::Subject { subject, via }) => {
            let uid: &'static str = match subject.record.uid.as_str() {
                "ID1" => "ID1",
                "ID2" => "ID2",
                "SI1" => "SI1",
                other => panic!("unexpected subject {other}"),
            };
            let cred = match via {
                Via::Session => Cred::Session,
                Via::ApiKey { .. } => Cred::ApiKey,
                Via::BackOffice => panic!("the table presents no Back Office token"),
            };
            Allowed(uid, cred)
        }
        Err(denial) => Denied(denial.status.as_u16(), denial.code),
    }
}

#[tokio::test]
async fn the_decision_table() {
    let mut failures = Vec::new();
    for case in cases() {
        let mut world = World::new();
        (case.world)(&mut world);
        let (gate, _loader, mut audit) = build(&world);
        if let Some(earlier) = case.earlier {
            let mut req = Req::new();
            earlier(&mut req);
            let _ = gate.decide(&req.facts(), NOW).await;
            while audit.try_recv().is_ok() {}
        }
        let mut req = Req::new();
        (case.req)(&mut req);
        let got = outcome(gate.decide(&req.facts(), NOW).await);
        let audited = audit.try_recv().ok().map(|event| event.result);
        if got != case.expect || audited != case.audit {
            failures.push(format!(
                "{}: expected {:?} (audit {:?}), got {:?} (audit {:?})",
                case.name, case.expect, case.audit, got, audited
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Step 0 as a table: what a front describes (method, raw path, how it forwards, the client
/// address as read) against the admission or the denial.
struct Admission {
    name: &'static str,
    method: &'static str,
    raw_path: &'static str,
    forwarding: Forwarding,
    /// Whether the client address could be read.
    readable: bool,
    /// The canonical method and judged path, or the denial.
    expect: Result<(&'static str, &'static str), Denial>,
}

fn admission_cases() -> Vec<Admission> {
    use Forwarding::{AsIs, Normalised};
    vec![
        Admission {
            name: "a known method in any case",
            method: "post",
            raw_path: "/api/v2/peatio/orders",
            forwarding: AsIs,
            readable: true,
            expect: Ok(("POST", "api/v2/peatio/orders")),
        },
        Admission {
            name: "HEAD stays HEAD",
            method: "HEAD",
            raw_path: "/api/v2/peatio/orders",
            forwarding: AsIs,
            readable: true,
            expect: Ok(("HEAD", "api/v2/peatio/orders")),
        },
        Admission {
            name: "an unknown method",
            method: "BREW",
            raw_path: "/api/v2/peatio/orders",
            forwarding: AsIs,
            readable: true,
            expect: Err(Denial::INVALID_REQUEST),
        },
        Admission {
            name: "a blank method",
            method: " ",
            raw_path: "/api/v2/peatio/orders",
            forwarding: AsIs,
            readable: true,
            expect: Err(Denial::INVALID_REQUEST),
        },
        Admission {
            name: "the method before the path",
            method: "BREW",
            raw_path: "/a/../b",
            forwarding: AsIs,
            readable: false,
            expect: Err(Denial::INVALID_REQUEST),
        },
        Admission {
            name: "dot segments forwarded as they are",
            method: "GET",
            raw_path: "/api/v2/peatio/../admin",
            forwarding: AsIs,
            readable: true,
            expect: Err(Denial::INVALID_PATH),
        },
        Admission {
            name: "dot segments the proxy normalises itself",
            method: "GET",
            raw_path: "/api/v2/x/../peatio/orders",
            forwarding: Normalised,
            readable: true,
            expect: Ok(("GET", "api/v2/peatio/orders")),
        },
        Admission {
            name: "an encoded slash",
            method: "GET",
            raw_path: "/api/v2/peatio%2F..%2Fadmin",
            forwarding: AsIs,
            readable: true,
            expect: Err(Denial::INVALID_PATH),
        },
        Admission {
            name: "the path before the client",
            method: "GET",
            raw_path: "/a/../b",
            forwarding: AsIs,
            readable: false,
            expect: Err(Denial::INVALID_PATH),
        },
        Admission {
            name: "an unreadable forwarded-for",
            method: "GET",
            raw_path: "/api/v2/peatio/orders",
            forwarding: AsIs,
            readable: false,
            expect: Err(Denial::INVALID_FORWARDED_FOR),
        },
    ]
}

#[test]
fn requests_are_admitted_before_any_rule() {
    let client: IpAddr = HOME.parse().unwrap();
    let mut failures = Vec::new();
    for case in admission_cases() {
        let read = if case.readable {
            Ok(client)
        } else {
            Err(crate::net::client_ip::UnreadableForwardedFor)
        };
        let got = steps::admit(case.method, case.raw_path, case.forwarding, read)
            .map(|a| (a.verb, a.path, a.ip));
        let expect = case
            .expect
            .map(|(verb, path)| (verb, path.to_string(), client));
        if got != expect {
            failures.push(format!("{}: expected {expect:?}, got {got:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Every code the gate answers with is in a table: the request-shape codes in the admission
/// table, every other in the decision table.
#[test]
fn the_table_exercises_every_code_of_the_gate() {
    let admission = [
        Denial::INVALID_PATH,
        Denial::INVALID_REQUEST,
        Denial::INVALID_FORWARDED_FOR,
    ];
    for denial in admission {
        assert!(
            admission_cases()
                .iter()
                .any(|case| case.expect == Err(denial)),
            "no admission row answers {}",
            denial.code
        );
    }
    let gate_codes = [
        Denial::UNAVAILABLE,
        Denial::PERMISSION_DENIED,
        Denial::MISSING_CSRF,
        Denial::CSRF_MISMATCH,
        Denial::INVALID_SESSION,
        Denial::SESSION_MISMATCH,
        Denial::USER_NOT_ACTIVE,
        Denial::INVALID_PERMISSION,
        Denial::INVALID_KEY_HEADERS,
        Denial::UNEXISTENT_KEY,
        Denial::NONCE_NOT_TIMESTAMP,
        Denial::NONCE_EXPIRED,
        Denial::INVALID_SIGNATURE,
        Denial::KEY_NOT_ACTIVE,
        Denial::DISABLED_2FA,
        Denial::TOO_MANY_UNKNOWN_KEYS,
    ];
    let restriction_codes = [
        "authz.restrict.maintenance",
        "authz.restrict.blacklist",
        "authz.restrict.blocklogin",
    ];
    let expected: Vec<(u16, &str)> = cases()
        .iter()
        .filter_map(|c| match c.expect {
            Denied(status, code) => Some((status, code)),
            _ => None,
        })
        .collect();
    for denial in gate_codes {
        assert!(
            expected.contains(&(denial.status.as_u16(), denial.code)),
            "no row answers {} {}",
            denial.status,
            denial.code
        );
    }
    for code in restriction_codes {
        assert!(
            expected.iter().any(|(_, c)| *c == code),
            "no row answers {code}"
        );
    }
    // The catalogue holds nothing else (a new code must join one of the lists).
    let catalogue = include_str!("denial.rs").matches("Denial::new(").count();
    assert_eq!(catalogue, gate_codes.len() + admission.len());
}

// === what the table cannot show ===

#[tokio::test]
async fn a_binding_mismatch_destroys_the_session() {
    let world = World::new();
    let (gate, _, _) = build(&world);
    let mut req = Req::new();
    req.user_agent = "curl/8";
    assert_eq!(
        outcome(gate.decide(&req.facts(), NOW).await),
        Denied(401, "authz.client_session_mismatch")
    );
    assert_eq!(gate.sessions.get(SESSION), None);
    // The rightful browser, too, has to log in again.
    assert_eq!(
        outcome(gate.decide(&Req::new().facts(), NOW).await),
        Denied(401, "authz.invalid_session")
    );
}

#[tokio::test]
async fn a_session_slides_only_when_a_write_back_is_due() {
    let world = World::new();
    let (gate, _, _) = build(&world);
    let stored = || gate.sessions.get(SESSION).unwrap();
    let before = stored();
    // Written back 29 seconds ago, with most of its idle time left: no write.
    gate.decide(&Req::new().facts(), NOW).await.ok().unwrap();
    assert_eq!(stored(), before);
    // A second later the interval has passed: slid forward from now.
    let later = Now::from_unix_secs(NOW_SECS + 1);
    gate.decide(&Req::new().facts(), later).await.ok().unwrap();
    let renewed = stored();
    assert_eq!(renewed.expire_time, NOW_SECS + 1 + 1800);
    assert_eq!(renewed.renewed_at, NOW_SECS + 1);
    assert_eq!(renewed.csrf_token, before.csrf_token);
    // Past its expiry (as it was before the renewal) it would have been refused; now it is not.
    let at_old_expiry = Now::from_unix_secs(before.expire_time);
    assert!(
        gate.decide(&Req::new().facts(), at_old_expiry)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_audit_event_carries_the_request() {
    let world = World::new();
    let (gate, _, mut audit) = build(&world);
    let mut req = Req::new();
    req.path = "api/v2/admin/users";
    req.query = Some("uid=ID9");
    assert!(gate.decide(&req.facts(), NOW).await.is_err());
    let event = audit.try_recv().unwrap();
    assert_eq!(
        event,
        AuditEvent {
            user_id: 1,
            verb: "GET".into(),
            path: "api/v2/admin/users".into(),
            query: Some("uid=ID9".into()),
            ip: HOME.parse().unwrap(),
            user_agent: UA.into(),
            topic: None,
            result: AuditResult::Denied,
        }
    );
    // The AUDIT row's topic travels with an allowed request.
    let mut req = Req::new();
    req.verb = "POST";
    req.path = ADMIN;
    req.session_id = None;
    req.signed("kid-admin", NOW_MS);
    assert!(gate.decide(&req.facts(), NOW).await.is_ok());
    let event = audit.try_recv().unwrap();
    assert_eq!(
        (event.user_id, event.topic.as_deref(), event.result),
        (2, Some("trading"), AuditResult::Succeed)
    );
}

#[tokio::test]
async fn subjects_and_keys_are_loaded_once_then_cached() {
    let world = World::new();
    let (gate, loader, _) = build(&world);
    for nonce in 0..3 {
        let mut req = Req::new();
        req.signed("kid-user", NOW_MS + nonce);
        assert!(gate.decide(&req.facts(), NOW).await.is_ok());
        assert!(gate.decide(&Req::new().facts(), NOW).await.is_ok());
    }
    // The key and its holder (who is also the session's user): two loads in all.
    assert_eq!(loader.loads(), 2);
    // A cached answer does not need the loader at all.
    loader.set_unavailable(true);
    assert!(gate.decide(&Req::new().facts(), NOW).await.is_ok());
}

#[tokio::test]
async fn a_grant_carries_a_bearer_for_a_subject_and_none_for_a_pass_rule() {
    let world = World::new();
    let (gate, _, _) = build(&world);
    let grant = gate
        .authorize_at(&Req::new().facts(), NOW)
        .await
        .ok()
        .unwrap();
    let bearer = grant.bearer.expect("a subject gets a token");
    assert!(bearer.as_str().starts_with("Bearer "));
    let claims = gate
        .issuer
        .verify(bearer.jwt(), Some("session"), NOW_SECS)
        .ok()
        .unwrap();
    assert_eq!(claims["uid"], "ID1");
    assert_eq!(claims["iat"], NOW_SECS);
    let mut req = Req::new();
    req.path = "api/v2/public/markets";
    let grant = gate.authorize_at(&req.facts(), NOW).await.ok().unwrap();
    assert!(matches!(grant.access, Access::Anonymous));
    assert!(grant.bearer.is_none());
}
