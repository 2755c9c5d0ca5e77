//! Auth0 id_tokens: RS256 signatures checked against the tenant's JWKS (cached, refetched
//! when an unknown `kid` shows up), issuer `https://<domain>/`, audience = our client id,
//! expiry. The JWKS URL is a setting so that tests can serve one locally.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::config;
use crate::crypto::b64url_decode;
use crate::net::outbound::Outbound;

/// Why an id_token was refused (all answer `identity.session.auth0.invalid_params`).
#[derive(Debug, PartialEq, Eq)]
pub enum Auth0Error {
    Disabled,
    Malformed,
    UnknownKey,
    KeysUnavailable(String),
    Signature,
    Expired,
    Issuer,
    Audience,
}

struct KeySet {
    keys: HashMap<String, (Vec<u8>, Vec<u8>)>,
    fetched: Instant,
}

pub struct Auth0 {
    settings: config::Auth0,
    outbound: Outbound,
    keys: Mutex<Option<KeySet>>,
}

/// A refetch for an unknown kid happens at most this often (a flood of made-up kids must not
/// turn into a flood of requests to Auth0).
const MIN_REFETCH: Duration = Duration::from_secs(10);

impl Auth0 {
    pub fn new(settings: config::Auth0, outbound: Outbound) -> Auth0 {
        Auth0 {
            settings,
            outbound,
            keys: Mutex::new(None),
        }
    }

    /// The token's claims when it is a valid id_token for our client.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Map<String, Value>, Auth0Error> {
        if !self.settings.enabled() {
            return Err(Auth0Error::Disabled);
        }
        let mut parts = token.trim().split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Auth0Error::Malformed);
        };
        let header: Value = b64url_decode(header)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Auth0Error::Malformed)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(Auth0Error::Malformed);
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let (n, e) = self.key(&kid).await?;
        let signature = b64url_decode(signature).ok_or(Auth0Error::Malformed)?;
        let signing_input = &token.trim()[..header_len(token) + 1 + payload.len()];
        RsaPublicKeyComponents { n: &n, e: &e }
            .verify(
                &RSA_PKCS1_2048_8192_SHA256,
                signing_input.as_bytes(),
                &signature,
            )
            .map_err(|_| Auth0Error::Signature)?;
        let claims: Map<String, Value> = b64url_decode(payload)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Auth0Error::Malformed)?;
        if claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_none_or(|exp| now >= exp)
        {
            return Err(Auth0Error::Expired);
        }
        let issuer = format!("https://{}/", self.settings.domain.trim_end_matches('/'));
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(Auth0Error::Issuer);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.settings.client_id,
            Some(Value::Array(list)) => list
                .iter()
                .any(|a| a.as_str() == Some(self.settings.client_id.as_str())),
            _ => false,
        };
        if !audience_ok || self.settings.client_id.is_empty() {
            return Err(Auth0Error::Audience);
        }
        Ok(claims)
    }

    async fn key(&self, kid: &str) -> Result<(Vec<u8>, Vec<u8>), Auth0Error> {
        let mut cached = self.keys.lock().await;
        let ttl = Duration::from_secs(self.settings.jwks_cache);
        let stale = cached
            .as_ref()
            .is_none_or(|set| set.fetched.elapsed() >= ttl);
        let unknown = cached
            .as_ref()
            .is_some_and(|set| !set.keys.contains_key(kid));
        let may_refetch = cached
            .as_ref()
            .is_none_or(|set| set.fetched.elapsed() >= MIN_REFETCH);
        if stale || (unknown && may_refetch) {
            *cached = Some(self.fetch().await?);
        }
        cached
            .as_ref()
            .and_then(|set| set.keys.get(kid).cloned())
            .ok_or(Auth0Error::UnknownKey)
    }

    async fn fetch(&self) -> Result<KeySet, Auth0Error> {
        let url = self.settings.jwks_url();
        let reply = self
            .outbound
            .get(&url, Duration::from_secs(5))
            .await
            .map_err(|e| Auth0Error::KeysUnavailable(e.to_string()))?;
        if reply.status != 200 {
            return Err(Auth0Error::KeysUnavailable(format!(
                "{url} answered {}",
                reply.status
            )));
        }
        let jwks: Value = serde_json::from_slice(&reply.body)
            .map_err(|e| Auth0Error::KeysUnavailable(e.to_string()))?;
        let mut keys = HashMap::new();
        for key in jwks
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = |name: &str| key.get(name).and_then(Value::as_str);
            if text("kty") != Some("RSA") {
                continue;
            }
            if let (Some(kid), Some(n), Some(e)) = (text("kid"), text("n"), text("e"))
                && let (Some(n), Some(e)) = (b64url_decode(n), b64url_decode(e))
            {
                keys.insert(kid.to_string(), (n, e));
            }
        }
        Ok(KeySet {
            keys,
            fetched: Instant::now(),
        })
    }
}

fn header_len(token: &str) -> usize {
    token.trim().find('.').unwrap_or(0)
}
