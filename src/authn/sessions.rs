//! Browser sessions in Redis, the cookie that names them, and CSRF tokens.
//!
//! Keys: `session:<sha256(id)>` holds the session as JSON (so a Redis dump never reveals a
//! usable cookie); `user_sessions:<uid>` is the set of a user's session hashes, for "log out
//! everywhere". Both live as long as the sessions in them (decisions.md #11).
//!
//! [`SessionStore`] is the narrow port the gate reads sessions through; [`Sliding`] is the
//! (pure) renewal rule it applies.
//!
//! **The per-node cache.** Reading a session is the one Redis round trip of a cookie request,
//! so a node keeps the sessions it read for `session.cache_ttl_ms` (`crate::cache::Cache`:
//! bounded by `session.cache_max`, with the guard against a load racing an invalidation).
//! Ending a session here deletes it in Redis, forgets it locally, then publishes its hash on
//! the namespace's `session_invalidations` channel, which every node follows
//! ([`Sessions::follow_invalidations`]): a logout reaches every node at once, and the TTL
//! bounds how long a node could miss it if a message is lost (a node that (re)subscribes
//! forgets everything, since it may have missed some). Misses are never cached: a session
//! opened on another node is seen at once. Renewals update the local copy.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::config;
use crate::crypto;
use crate::kv::{Kv, KvError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    pub uid: String,
    pub user_ip: String,
    pub user_agent: String,
    /// Unix seconds after which the session is refused (sliding, see `Sliding`).
    pub expire_time: i64,
    pub csrf_token: String,
    /// Unix seconds of the last write-back of `expire_time`.
    pub renewed_at: i64,
}

/// What a new session hands to the client.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub id: String,
    pub csrf_token: String,
}

#[derive(Clone)]
pub struct Sessions {
    kv: Kv,
    settings: config::Session,
    /// `None` when `session.cache_ttl_ms` is 0.
    cache: Option<Arc<Cache<Arc<SessionData>>>>,
    /// Whether this node follows the announcements now. The cache is used only then: a node
    /// that lost its subscription (Redis down, a network cut) may be missing logouts, and
    /// asks Redis, which fails closed when Redis is down.
    following: Arc<AtomicBool>,
}

/// The channel (in the namespace) on which ended sessions are announced: session hashes
/// separated by spaces, or [`EVERYONE`].
const INVALIDATIONS: &str = "session_invalidations";
/// The message that ends every cached session.
const EVERYONE: &str = "*";

fn session_key_suffix(hash: &str) -> String {
    format!("session:{hash}")
}

fn index_key_suffix(uid: &str) -> String {
    format!("user_sessions:{uid}")
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Sessions {
    pub fn new(kv: Kv, settings: config::Session) -> Sessions {
        let cache = (!settings.cache_ttl.is_zero()).then(|| {
            Arc::new(Cache::new(
                "sessions",
                settings.cache_max,
                settings.cache_ttl,
            ))
        });
        Sessions {
            kv,
            settings,
            cache,
            following: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn settings(&self) -> &config::Session {
        &self.settings
    }

    fn hash(id: &str) -> String {
        crypto::sha256_hex(id.as_bytes())
    }

    /// Opens a new session with a fresh id and CSRF token.
    pub async fn open(
        &self,
        uid: &str,
        ip: IpAddr,
        user_agent: &str,
    ) -> Result<OpenedSession, KvError> {
        let id = crypto::random_token::<32>();
        let csrf_token = crypto::random_hex::<16>();
        let now = now();
        let data = SessionData {
            uid: uid.to_string(),
            user_ip: ip.to_string(),
            user_agent: user_agent.to_string(),
            expire_time: now + self.settings.expire_time.as_secs() as i64,
            csrf_token: csrf_token.clone(),
            renewed_at: now,
        };
        let hash = Self::hash(&id);
        let json = serde_json::to_string(&data).expect("session serializes");
        self.kv
            .set_ex(
                &self.kv.key(&session_key_suffix(&hash)),
                &json,
                self.settings.lifetime.as_secs(),
            )
            .await?;
        self.kv
            .sadd_expire(
                &self.kv.key(&index_key_suffix(uid)),
                &hash,
                self.settings.lifetime.as_secs(),
            )
            .await?;
        Ok(OpenedSession { id, csrf_token })
    }

    /// The session `id` names, shared with the node's cache (no copy per request).
    pub async fn load(&self, id: &str) -> Result<Option<Arc<SessionData>>, KvError> {
        if id.is_empty() || id.len() > 256 {
            return Ok(None);
        }
        let hash = Self::hash(id);
        let Some(cache) = self
            .cache
            .as_ref()
            .filter(|_| self.following.load(Ordering::Acquire))
        else {
            return Ok(self.read(&hash).await?.map(Arc::new));
        };
        if let Some(hit) = cache.get(&hash) {
            return Ok(Some(hit));
        }
        let ticket = cache.ticket(&hash);
        let loaded = self.read(&hash).await?.map(Arc::new);
        if let Some(session) = &loaded {
            cache.insert(&hash, session.clone(), ticket);
        }
        Ok(loaded)
    }

    /// The session stored under `hash`, from Redis.
    async fn read(&self, hash: &str) -> Result<Option<SessionData>, KvError> {
        let key = self.kv.key(&session_key_suffix(hash));
        Ok(self
            .kv
            .get(&key)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Forgets the sessions of `hashes` on this node and announces them to the others. A
    /// failed announcement is logged, not returned: the sessions are gone from Redis, and the
    /// other nodes' copies expire within `cache_ttl`.
    /// Announced even by a node that keeps no cache itself (`cache_ttl_ms = 0`, the command
    /// line): the others may.
    async fn forget(&self, hashes: &[String]) {
        if hashes.is_empty() {
            return;
        }
        let message = hashes.join(" ");
        if let Some(cache) = &self.cache {
            apply_invalidation(cache, &message);
        }
        if let Err(err) = self.kv.publish(INVALIDATIONS, &message).await {
            tracing::warn!(error = %err, "ended sessions not announced; other nodes forget them within session.cache_ttl_ms");
        }
    }

    /// Applies announcements of ended sessions to this node's cache, for as long as the node
    /// runs: subscribes (again after a lost connection, forgetting everything then, since
    /// announcements may have been missed). The cache serves only while subscribed. Returns
    /// at once when there is no cache.
    pub async fn follow_invalidations(self) {
        let Some(cache) = self.cache.clone() else {
            return;
        };
        let mut delay = std::time::Duration::from_millis(100);
        loop {
            match self.kv.subscribe(INVALIDATIONS).await {
                Ok(messages) => {
                    cache.clear();
                    self.following.store(true, Ordering::Release);
                    delay = std::time::Duration::from_millis(100);
                    let mut messages = std::pin::pin!(messages);
                    while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
                        apply_invalidation(&cache, &message);
                    }
                    self.following.store(false, Ordering::Release);
                    tracing::warn!("session invalidations: subscription lost; resubscribing");
                }
                Err(err) => {
                    tracing::warn!(error = %err, "session invalidations: cannot subscribe; retrying");
                }
            }
            cache.clear();
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
        }
    }

    /// Writes back a session whose expiry [`Sliding::renewed`] slid forward, unless it was
    /// destroyed meanwhile.
    pub async fn renew(&self, id: &str, renewed: &SessionData) -> Result<(), KvError> {
        let hash = Self::hash(id);
        let json = serde_json::to_string(renewed).expect("session serializes");
        let ticket = self.cache.as_ref().map(|cache| cache.ticket(&hash));
        // XX: a session destroyed meanwhile (logout, mismatch) must stay destroyed.
        if self
            .kv
            .set_xx_ex(
                &self.kv.key(&session_key_suffix(&hash)),
                &json,
                self.settings.lifetime.as_secs(),
            )
            .await?
        {
            if let (Some(cache), Some(ticket)) = (&self.cache, ticket) {
                cache.insert(&hash, Arc::new(renewed.clone()), ticket);
            }
            self.kv
                .sadd_expire(
                    &self.kv.key(&index_key_suffix(&renewed.uid)),
                    &hash,
                    self.settings.lifetime.as_secs(),
                )
                .await?;
        }
        Ok(())
    }

    pub async fn destroy(&self, id: &str, uid: &str) -> Result<(), KvError> {
        let hash = Self::hash(id);
        self.kv
            .del(&[self.kv.key(&session_key_suffix(&hash))])
            .await?;
        self.forget(std::slice::from_ref(&hash)).await;
        self.kv
            .srem(&self.kv.key(&index_key_suffix(uid)), &hash)
            .await
    }

    /// Ends every session of `uid`, except the one whose id is `keep` (if given).
    pub async fn destroy_all_for(&self, uid: &str, keep: Option<&str>) -> Result<usize, KvError> {
        let index = self.kv.key(&index_key_suffix(uid));
        let keep_hash = keep.map(Self::hash);
        let hashes = self.kv.smembers(&index).await?;
        let doomed: Vec<String> = hashes
            .iter()
            .filter(|hash| Some(*hash) != keep_hash.as_ref())
            .cloned()
            .collect();
        let keys: Vec<String> = doomed
            .iter()
            .map(|hash| self.kv.key(&session_key_suffix(hash)))
            .collect();
        let count = doomed.len();
        self.kv.del(&keys).await?;
        self.forget(&doomed).await;
        match keep_hash {
            Some(hash) => {
                for other in hashes.iter().filter(|h| **h != hash) {
                    self.kv.srem(&index, other).await?;
                }
            }
            None => {
                self.kv.del(&[index]).await?;
            }
        }
        Ok(count)
    }

    /// Ends every session of every user (a blocklogin restriction was enabled).
    pub async fn destroy_everyone(&self) -> Result<usize, KvError> {
        let mut keys = self.kv.scan("session:*").await?;
        keys.extend(self.kv.scan("user_sessions:*").await?);
        let count = keys.len();
        for chunk in keys.chunks(500) {
            self.kv.del(chunk).await?;
        }
        self.forget(&[EVERYONE.to_string()]).await;
        Ok(count)
    }

    /// `Set-Cookie` value that hands `id` to the browser.
    pub fn cookie(&self, id: &str) -> String {
        let expires = time::OffsetDateTime::now_utc()
            + time::Duration::seconds(self.settings.lifetime.as_secs() as i64);
        let mut cookie = format!(
            "{}={}; Path=/; Expires={}; Max-Age={}; HttpOnly; SameSite=Lax",
            self.settings.cookie_name,
            id,
            http_date(expires),
            self.settings.lifetime.as_secs()
        );
        if self.settings.secure_cookie {
            cookie.push_str("; Secure");
        }
        cookie
    }

    /// `Set-Cookie` value that removes the cookie.
    pub fn clear_cookie(&self) -> String {
        let mut cookie = format!(
            "{}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; SameSite=Lax",
            self.settings.cookie_name
        );
        if self.settings.secure_cookie {
            cookie.push_str("; Secure");
        }
        cookie
    }

    /// The session id the request carries, if any.
    pub fn id_from<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        cookie_value(headers, &self.settings.cookie_name)
    }
}

/// Applies one announcement: session hashes separated by spaces, or [`EVERYONE`].
fn apply_invalidation(cache: &Cache<Arc<SessionData>>, message: &str) {
    if message == EVERYONE {
        cache.clear();
        return;
    }
    for hash in message.split(' ').filter(|hash| !hash.is_empty()) {
        cache.invalidate(hash);
    }
}

/// The sliding expiry of sessions, in seconds: how long an idle session lives, and how often a
/// busy one's expiry is written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sliding {
    /// `session.expire_time`: idle time after which a session is refused.
    pub idle: i64,
    /// `session.renew_interval`: the longest a busy session goes without a write-back.
    pub renew_interval: i64,
}

impl Sliding {
    pub fn from_settings(settings: &config::Session) -> Sliding {
        Sliding {
            idle: settings.expire_time.as_secs() as i64,
            renew_interval: settings.renew_interval.as_secs() as i64,
        }
    }

    /// True when the expiry must be written back now: at most every `renew_interval`, so a
    /// busy session costs one Redis read per request, not a read and a write, and always once
    /// less than half the idle time is left (so it slides even when the idle time is shorter
    /// than the interval).
    pub fn due(&self, data: &SessionData, now: i64) -> bool {
        let interval_passed = now - data.renewed_at >= self.renew_interval;
        let half_spent = data.expire_time - now < (self.idle + 1) / 2;
        interval_passed || half_spent
    }

    /// The session with its expiry slid forward from `now`.
    pub fn renewed(&self, data: &SessionData, now: i64) -> SessionData {
        SessionData {
            expire_time: now + self.idle,
            renewed_at: now,
            ..data.clone()
        }
    }
}

/// Sessions as the gate uses them: load, destroy on a binding mismatch, write back a renewal.
/// On Redis in [`Sessions`]; on a map in [`MemorySessions`] for tests. The gate is generic over
/// it, so the per-request load costs no boxed future.
pub trait SessionStore: Send + Sync {
    fn load(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Arc<SessionData>>, KvError>> + Send;
    fn destroy(&self, id: &str, uid: &str) -> impl Future<Output = Result<(), KvError>> + Send;
    fn renew(
        &self,
        id: &str,
        renewed: &SessionData,
    ) -> impl Future<Output = Result<(), KvError>> + Send;
}

impl SessionStore for Sessions {
    fn load(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Arc<SessionData>>, KvError>> + Send {
        Sessions::load(self, id)
    }

    fn destroy(&self, id: &str, uid: &str) -> impl Future<Output = Result<(), KvError>> + Send {
        Sessions::destroy(self, id, uid)
    }

    fn renew(
        &self,
        id: &str,
        renewed: &SessionData,
    ) -> impl Future<Output = Result<(), KvError>> + Send {
        Sessions::renew(self, id, renewed)
    }
}

/// A [`SessionStore`] on a map, keyed by the session id, for tests. It can be made
/// unavailable, like a Redis that does not answer.
#[derive(Default)]
pub struct MemorySessions {
    sessions: std::sync::Mutex<std::collections::HashMap<String, SessionData>>,
    unavailable: std::sync::atomic::AtomicBool,
}

impl MemorySessions {
    pub fn insert(&self, id: &str, data: SessionData) {
        self.map().insert(id.to_string(), data);
    }

    /// The session as stored now.
    pub fn get(&self, id: &str) -> Option<SessionData> {
        self.map().get(id).cloned()
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable
            .store(unavailable, std::sync::atomic::Ordering::Relaxed);
    }

    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, SessionData>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn up(&self) -> Result<(), KvError> {
        if self.unavailable.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(KvError(
                "the in-memory session store is set unavailable".into(),
            ));
        }
        Ok(())
    }
}

impl SessionStore for MemorySessions {
    async fn load(&self, id: &str) -> Result<Option<Arc<SessionData>>, KvError> {
        self.up()?;
        Ok(self.get(id).map(Arc::new))
    }

    async fn destroy(&self, id: &str, _uid: &str) -> Result<(), KvError> {
        self.up()?;
        self.map().remove(id);
        Ok(())
    }

    async fn renew(&self, id: &str, renewed: &SessionData) -> Result<(), KvError> {
        self.up()?;
        // Like SET XX: a destroyed session stays destroyed.
        if let Some(slot) = self.map().get_mut(id) {
            *slot = renewed.clone();
        }
        Ok(())
    }
}

/// The value of cookie `name` among the request's `Cookie` headers.
pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The `Cookie` header without cookie `name` (what an upstream may see); `None` when empty.
pub fn strip_cookie(value: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty() && pair.split_once('=').map(|(k, _)| k.trim()) != Some(name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// A session is bound to its User-Agent, to the /16 (IPv4) or /96 (IPv6) of the login
/// address, and to its sliding expiry (Barong §6.3).
pub fn binding_holds(data: &SessionData, user_agent: &str, ip: IpAddr, now: i64) -> bool {
    if now >= data.expire_time || data.user_agent != user_agent {
        return false;
    }
    let Ok(origin) = data.user_ip.parse::<IpAddr>() else {
        return false;
    };
    match (origin, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..2] == b.octets()[..2],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets()[..12] == b.octets()[..12],
        _ => false,
    }
}

fn http_date(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .expect("date formats")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn data(ip: &str) -> SessionData {
        SessionData {
            uid: "ID1".into(),
            user_ip: ip.into(),
            user_agent: "UA".into(),
            expire_time: 1000,
            csrf_token: "c".into(),
            renewed_at: 0,
        }
    }

    #[test]
    fn binding_checks_agent_network_and_expiry() {
        let d = data("10.20.30.40");
        assert!(binding_holds(&d, "UA", "10.20.99.1".parse().unwrap(), 999));
        assert!(!binding_holds(
            &d,
            "UA",
            "10.21.30.40".parse().unwrap(),
            999
        ));
        assert!(!binding_holds(
            &d,
            "UA2",
            "10.20.30.40".parse().unwrap(),
            999
        ));
        assert!(!binding_holds(
            &d,
            "UA",
            "10.20.30.40".parse().unwrap(),
            1000
        ));
        assert!(!binding_holds(&d, "UA", "::1".parse().unwrap(), 999));
        let d6 = data("2001:db8:1:2:3:4:5:6");
        assert!(binding_holds(
            &d6,
            "UA",
            "2001:db8:1:2:3:4:ffff:1".parse().unwrap(),
            1
        ));
        assert!(!binding_holds(
            &d6,
            "UA",
            "2001:db8:1:2:3:5:5:6".parse().unwrap(),
            1
        ));
    }

    #[test]
    fn renewal_slides_even_when_the_idle_time_is_shorter_than_the_interval() {
        let settings = config::Session {
            cookie_name: "s".into(),
            expire_time: std::time::Duration::from_secs(10),
            lifetime: std::time::Duration::from_secs(100),
            secure_cookie: false,
            csrf_protection: true,
            renew_interval: std::time::Duration::from_secs(30),
            cache_ttl: std::time::Duration::ZERO,
            cache_max: 0,
        };
        let sliding = Sliding::from_settings(&settings);
        let mut d = data("10.0.0.1");
        d.renewed_at = 1000;
        d.expire_time = 1010;
        // Plenty of idle time left and the interval not passed: no write.
        assert!(!sliding.due(&d, 1004));
        // Less than half the idle time left: written back although the interval has not passed.
        assert!(sliding.due(&d, 1006));
        // The interval passed: written back.
        let mut long = d.clone();
        long.expire_time = 5000;
        assert!(sliding.due(&long, 1030));
        assert!(!sliding.due(&long, 1029));
        // A renewal slides the expiry from now and remembers when.
        let renewed = sliding.renewed(&long, 1030);
        assert_eq!((renewed.expire_time, renewed.renewed_at), (1040, 1030));
        assert_eq!(renewed.csrf_token, long.csrf_token);
    }

    #[test]
    fn cookies_are_found_and_stripped() {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_static("a=1; _barong_session=xyz; b=2"),
        );
        assert_eq!(cookie_value(&h, "_barong_session"), Some("xyz"));
        assert_eq!(cookie_value(&h, "c"), None);
        assert_eq!(
            strip_cookie("a=1; _barong_session=xyz; b=2", "_barong_session").as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(strip_cookie("_barong_session=xyz", "_barong_session"), None);
    }

    #[test]
    fn http_dates_look_like_rfc_7231() {
        let t = time::macros::datetime!(2020-06-01 07:01:20 UTC);
        assert_eq!(http_date(t), "Mon, 01 Jun 2020 07:01:20 GMT");
    }
}
