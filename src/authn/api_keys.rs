//! API-key authentication: Barong's HMAC scheme, the (kid, nonce) replay guard, and a
//! per-node cache of keys so that a signed request costs no database query.
//!
//! The cache reads through the loader port (`domain::loader::SubjectLoader`) on a miss; the
//! replay guard is the gate's second port, [`NonceGuard`] (Redis, or [`MemoryNonces`] in tests).
//!
//! `X-Auth-Signature` = hex(HMAC-SHA256(key = the secret as its 32-character hex string,
//! message = the nonce header exactly as sent + the kid)). Compared in constant time.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_lc_rs::hmac;
use http::HeaderMap;

use crate::cache::Cache;
use crate::config::Limit;
use crate::crypto::SecretBox;
use crate::domain::loader::{KeyState, LoadError, SubjectLoader, secret_context};
use crate::domain::subject::SubjectKind;
use crate::kv::{Kv, KvError};
use crate::net::client_ip::network_key;

/// The three API-key headers as received (`None` = absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiKeyHeaders<'a> {
    pub kid: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
}

impl<'a> ApiKeyHeaders<'a> {
    pub fn from_headers(headers: &'a HeaderMap) -> ApiKeyHeaders<'a> {
        // A header that is present but not valid text counts as present and blank.
        use crate::net::headers::{X_AUTH_APIKEY, X_AUTH_NONCE, X_AUTH_SIGNATURE};
        let get = |name| {
            headers
                .get(name)
                .map(|v: &http::HeaderValue| v.to_str().unwrap_or(""))
        };
        ApiKeyHeaders {
            kid: get(X_AUTH_APIKEY),
            nonce: get(X_AUTH_NONCE),
            signature: get(X_AUTH_SIGNATURE),
        }
    }

    /// Any of the three present (even blank) selects the API-key path (Barong §1.2 step 4).
    pub fn any_present(&self) -> bool {
        self.kid.is_some() || self.nonce.is_some() || self.signature.is_some()
    }

    /// All three present and not blank (whitespace counts as blank).
    pub fn complete(&self) -> Option<(&'a str, &'a str, &'a str)> {
        let filled = |v: Option<&'a str>| v.filter(|s| !s.trim().is_empty());
        Some((
            filled(self.kid)?,
            filled(self.nonce)?,
            filled(self.signature)?,
        ))
    }
}

/// Ruby's `String#to_i`: optional leading whitespace and sign, then the leading digits; 0
/// when there are none ("123abc" → 123, "abc" → 0). Saturates instead of overflowing.
pub fn ruby_to_i(text: &str) -> i64 {
    let text = text.trim_start();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let mut value: i64 = 0;
    for b in digits.bytes() {
        if b == b'_' {
            continue;
        }
        if !b.is_ascii_digit() {
            break;
        }
        value = value.saturating_mul(10).saturating_add((b - b'0') as i64);
    }
    if negative { -value } else { value }
}

fn hmac_algorithm(algorithm: &str) -> Option<hmac::Algorithm> {
    match algorithm.to_ascii_uppercase().as_str() {
        "HS256" => Some(hmac::HMAC_SHA256),
        "HS384" => Some(hmac::HMAC_SHA384),
        "HS512" => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

/// A key's HMAC, with its key schedule computed once (when the key is cached), not per request.
#[derive(Debug)]
pub struct Verifier {
    key: Option<hmac::Key>,
}

impl Verifier {
    /// `None` inside for an algorithm we do not sign with: every signature then fails.
    pub fn new(algorithm: &str, secret: &[u8]) -> Verifier {
        Verifier {
            key: hmac_algorithm(algorithm).map(|alg| hmac::Key::new(alg, secret)),
        }
    }

    /// True when `signature_hex` is the key's signature of `nonce + kid`.
    pub fn verify(&self, nonce: &str, kid: &str, signature_hex: &str) -> bool {
        let Some(key) = &self.key else {
            return false;
        };
        let Ok(tag) = hex::decode(signature_hex.trim()) else {
            return false;
        };
        let mut context = hmac::Context::with_key(key);
        context.update(nonce.as_bytes());
        context.update(kid.as_bytes());
        let expected = context.sign();
        crate::crypto::constant_time_eq(expected.as_ref(), &tag)
    }
}

/// True when `signature_hex` is the signature of `nonce + kid` under `secret`.
pub fn signature_valid(
    algorithm: &str,
    secret: &[u8],
    nonce: &str,
    kid: &str,
    signature_hex: &str,
) -> bool {
    Verifier::new(algorithm, secret).verify(nonce, kid, signature_hex)
}

/// The signature a client computes (used by tests, benchmarks and the CLI).
pub fn sign(secret: &str, nonce: &str, kid: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, format!("{nonce}{kid}").as_bytes()).as_ref())
}

/// A key as the gate needs it: its secret is kept only as the HMAC key schedule.
#[derive(Debug)]
pub struct ApiKey {
    pub kid: String,
    pub verifier: Verifier,
    pub state: KeyState,
    pub holder_kind: SubjectKind,
    pub holder_uid: String,
}

/// What a key id turned out to be.
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Arc<ApiKey>),
    /// No such key (remembered for a while, so asking again costs nothing).
    Unknown,
    /// The caller asked for too many unknown ids lately; not looked up.
    Throttled,
}

/// Keys by kid, including "no such kid" for a while, refreshed on change notices (on
/// `crate::cache`: size-bounded, and never caching a read that raced a change notice).
///
/// Random kids from a scanner would each cost a database query: unknown kids are remembered,
/// and an address (an IPv6 /64) that asks for more than `api_keys.unknown_per_ip.max` unknown
/// kids in a window gets no more lookups until it ends.
pub struct ApiKeyCache {
    cache: Cache<Option<Arc<ApiKey>>>,
    unknown: moka::sync::Cache<IpAddr, Arc<AtomicU32>>,
    unknown_max: u32,
}

/// Longest kid the database can hold; anything longer is unknown without a lookup.
const MAX_KID_LEN: usize = 255;

impl ApiKeyCache {
    pub fn new(ttl: Duration, capacity: u64, unknown_per_ip: Limit) -> ApiKeyCache {
        ApiKeyCache {
            cache: Cache::new("api_key", capacity, ttl),
            unknown: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(unknown_per_ip.window)
                .build(),
            unknown_max: unknown_per_ip.max,
        }
    }

    /// The key `kid` names, as far as `client` may ask; `loader` answers a miss.
    pub async fn get(
        &self,
        loader: &dyn SubjectLoader,
        sbox: &SecretBox,
        kid: &str,
        client: IpAddr,
    ) -> Result<Lookup, LoadError> {
        if kid.len() > MAX_KID_LEN {
            return Ok(Lookup::Unknown);
        }
        if let Some(entry) = self.cache.get(kid) {
            return Ok(entry.map_or(Lookup::Unknown, Lookup::Found));
        }
        let asker = network_key(client);
        if self
            .unknown
            .get(&asker)
            .is_some_and(|count| count.load(Ordering::Relaxed) >= self.unknown_max)
        {
            metrics::counter!("portcullis_api_key_lookups_throttled_total").increment(1);
            return Ok(Lookup::Throttled);
        }
        let ticket = self.cache.ticket(kid);
        let key = match loader.api_key(kid).await? {
            Some(row) => {
                let mut secret = sbox
                    .open(&secret_context(&row.kid), &row.secret_encrypted)
                    .map_err(|e| LoadError::new(format!("api key {}: {e}", row.kid)))?;
                let verifier = Verifier::new(&row.algorithm, &secret);
                // Leave no copy of the secret behind in freed memory.
                secret.iter_mut().for_each(|b| *b = 0);
                Some(Arc::new(ApiKey {
                    kid: row.kid,
                    verifier,
                    state: row.state,
                    holder_kind: row.holder_kind,
                    holder_uid: row.holder_uid,
                }))
            }
            None => {
                self.unknown
                    .get_with(asker, || Arc::new(AtomicU32::new(0)))
                    .fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        self.cache.insert(kid, key.clone(), ticket);
        Ok(key.map_or(Lookup::Unknown, Lookup::Found))
    }

    pub fn invalidate(&self, kid: &str) {
        self.cache.invalidate(kid);
    }

    pub fn clear(&self) {
        self.cache.clear();
    }
}

/// The replay check as the gate uses it: true the first time (kid, nonce) is seen. The gate is
/// generic over it, so the check costs no boxed future.
pub trait NonceGuard: Send + Sync {
    fn first_use(
        &self,
        kid: &str,
        nonce: &str,
    ) -> impl Future<Output = Result<bool, KvError>> + Send;
}

/// Accepts each (kid, nonce) once within the nonce window, across every node.
#[derive(Clone)]
pub struct ReplayGuard {
    kv: Kv,
    window_ms: u64,
}

impl ReplayGuard {
    pub fn new(kv: Kv, window_ms: u64) -> ReplayGuard {
        ReplayGuard { kv, window_ms }
    }
}

impl NonceGuard for ReplayGuard {
    /// True the first time (kid, nonce) is seen; false for a replay.
    async fn first_use(&self, kid: &str, nonce: &str) -> Result<bool, KvError> {
        let key = self.kv.key(&format!("nonce:{kid}:{nonce}"));
        // A nonce stays acceptable for `window` on either side of now; remember it that long.
        self.kv
            .set_nx_px(&key, "1", self.window_ms.saturating_mul(2))
            .await
    }
}

/// A [`NonceGuard`] on a set, for tests: remembers every (kid, nonce) for ever (the gate's
/// window check refuses old nonces before the guard is asked), and can be made unavailable.
#[derive(Default)]
pub struct MemoryNonces {
    seen: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    unavailable: std::sync::atomic::AtomicBool,
}

impl MemoryNonces {
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::Relaxed);
    }
}

impl NonceGuard for MemoryNonces {
    async fn first_use(&self, kid: &str, nonce: &str) -> Result<bool, KvError> {
        if self.unavailable.load(Ordering::Relaxed) {
            return Err(KvError(
                "the in-memory nonce guard is set unavailable".into(),
            ));
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        Ok(seen.insert((kid.to_string(), nonce.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_to_i_semantics() {
        assert_eq!(ruby_to_i("1600000000000"), 1_600_000_000_000);
        assert_eq!(ruby_to_i("123abc"), 123);
        assert_eq!(ruby_to_i("abc"), 0);
        assert_eq!(ruby_to_i("  42"), 42);
        assert_eq!(ruby_to_i("-5"), -5);
        assert_eq!(ruby_to_i("+7"), 7);
        assert_eq!(ruby_to_i(""), 0);
        assert_eq!(ruby_to_i("99999999999999999999999"), i64::MAX);
    }

    #[test]
    fn signatures_verify_against_the_hex_string_key() {
        let secret = "0123456789abcdef0123456789abcdef";
        let sig = sign(secret, "1600000000000", "kid1");
        assert_eq!(sig.len(), 64);
        assert!(signature_valid(
            "HS256",
            secret.as_bytes(),
            "1600000000000",
            "kid1",
            &sig
        ));
        assert!(signature_valid(
            "HS256",
            secret.as_bytes(),
            "1600000000000",
            "kid1",
            &sig.to_uppercase()
        ));
        assert!(!signature_valid(
            "HS256",
            secret.as_bytes(),
            "1600000000001",
            "kid1",
            &sig
        ));
        assert!(!signature_valid(
            "HS256",
            secret.as_bytes(),
            "1600000000000",
            "kid2",
            &sig
        ));
        assert!(!signature_valid(
            "HS256",
            secret.as_bytes(),
            "1600000000000",
            "kid1",
            "zz"
        ));
        assert!(!signature_valid(
            "RS256",
            secret.as_bytes(),
            "1600000000000",
            "kid1",
            &sig
        ));
    }

    #[test]
    fn header_completeness() {
        let h = ApiKeyHeaders {
            kid: Some("k"),
            nonce: Some(" "),
            signature: Some("s"),
        };
        assert!(h.any_present());
        assert!(h.complete().is_none());
        let h = ApiKeyHeaders {
            kid: Some("k"),
            nonce: Some("1"),
            signature: Some("s"),
        };
        assert_eq!(h.complete(), Some(("k", "1", "s")));
        assert!(!ApiKeyHeaders::default().any_present());
    }
}
