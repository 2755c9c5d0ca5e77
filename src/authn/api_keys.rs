//! API-key authentication: Barong's HMAC scheme, the (kid, nonce) replay guard, and a
//! per-node cache of keys so that a signed request costs no database query.
//!
//! `X-Auth-Signature` = hex(HMAC-SHA256(key = the secret as its 32-character hex string,
//! message = the nonce header exactly as sent + the kid)). Compared in constant time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use http::HeaderMap;

use crate::crypto::SecretBox;
use crate::domain::subject::SubjectKind;
use crate::kv::{Kv, KvError};
use crate::store::{self, Store, StoreError};

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
    pub state: String,
    pub holder_kind: SubjectKind,
    pub holder_uid: String,
}

struct Entry {
    key: Option<Arc<ApiKey>>,
    loaded: Instant,
}

/// Keys by kid, including "no such kid" for a while, refreshed on change notices.
pub struct ApiKeyCache {
    entries: RwLock<HashMap<String, Entry>>,
    ttl: Duration,
    hits: metrics::Counter,
    misses: metrics::Counter,
}

/// Bound on cached entries: random kids from a scanner must not grow memory without limit.
const MAX_ENTRIES: usize = 50_000;

impl ApiKeyCache {
    pub fn new(ttl: Duration) -> ApiKeyCache {
        ApiKeyCache {
            entries: RwLock::new(HashMap::new()),
            ttl,
            hits: metrics::counter!("portcullis_cache_hits_total", "cache" => "api_key"),
            misses: metrics::counter!("portcullis_cache_misses_total", "cache" => "api_key"),
        }
    }

    pub async fn get(
        &self,
        store: &Store,
        sbox: &SecretBox,
        kid: &str,
    ) -> Result<Option<Arc<ApiKey>>, StoreError> {
        if let Some(entry) = self.entries.read().expect("lock").get(kid)
            && entry.loaded.elapsed() < self.ttl
        {
            self.hits.increment(1);
            return Ok(entry.key.clone());
        }
        self.misses.increment(1);
        let client = store.client().await?;
        let key = match store::api_keys::find_for_auth(&client, kid).await? {
            Some(row) => {
                let mut secret = sbox
                    .open(
                        &store::api_keys::secret_context(&row.kid),
                        &row.secret_encrypted,
                    )
                    .map_err(|e| StoreError::Other(format!("api key {}: {e}", row.kid)))?;
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
            None => None,
        };
        let mut entries = self.entries.write().expect("lock");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            kid.to_string(),
            Entry {
                key: key.clone(),
                loaded: Instant::now(),
            },
        );
        Ok(key)
    }

    pub fn invalidate(&self, kid: &str) {
        self.entries.write().expect("lock").remove(kid);
    }

    pub fn clear(&self) {
        self.entries.write().expect("lock").clear();
    }
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

    /// True the first time (kid, nonce) is seen; false for a replay.
    pub async fn first_use(&self, kid: &str, nonce: &str) -> Result<bool, KvError> {
        let key = self.kv.key(&format!("nonce:{kid}:{nonce}"));
        // A nonce stays acceptable for `window` on either side of now; remember it that long.
        self.kv
            .set_nx_px(&key, "1", self.window_ms.saturating_mul(2))
            .await
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
