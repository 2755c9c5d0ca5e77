//! The API-key path (Barong §3.2, with decisions.md): headers complete → key exists (and the
//! asker is not throttled) → nonce is a timestamp → nonce inside the window → signature →
//! nonce not replayed → key active → holder exists → holder state → holder's 2FA. The checks
//! are functions of the facts, the cached key, the holder and `now`;
//! `Gate::api_key_subject` runs them around the ports.

use std::sync::Arc;
use std::time::Duration;

use super::clock::Now;
use super::subjects::CachedSubject;
use super::{Denial, Facts, Gate, GateSettings, steps, unavailable};
use crate::authn::api_keys::{ApiKey, Lookup, NonceGuard, ruby_to_i};
use crate::authn::sessions::SessionStore;
use crate::domain::loader::KeyState;
use crate::domain::subject::{SubjectKind, SubjectRecord};

/// The signed headers, as the API-key path reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed<'a> {
    pub kid: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
}

/// All three headers present and not blank (whitespace counts as blank).
pub fn headers<'a>(facts: &Facts<'a>) -> Result<Signed<'a>, Denial> {
    let (kid, nonce, signature) = facts
        .api_key
        .complete()
        .ok_or(Denial::INVALID_KEY_HEADERS)?;
    Ok(Signed {
        kid,
        nonce,
        signature,
    })
}

/// What the key lookup found.
pub fn found(lookup: Lookup) -> Result<Arc<ApiKey>, Denial> {
    match lookup {
        Lookup::Found(key) => Ok(key),
        Lookup::Unknown => Err(Denial::UNEXISTENT_KEY),
        Lookup::Throttled => Err(Denial::TOO_MANY_UNKNOWN_KEYS),
    }
}

/// The nonce is a positive integer (Ruby's `to_i`, so "123abc" is 123) of milliseconds less
/// than `lifetime` from now, on either side.
pub fn nonce_window(nonce: &str, now: Now, lifetime: Duration) -> Result<(), Denial> {
    let nonce_ms = ruby_to_i(nonce);
    if nonce_ms <= 0 {
        return Err(Denial::NONCE_NOT_TIMESTAMP);
    }
    if u128::from(now.unix_ms().abs_diff(nonce_ms)) >= lifetime.as_millis() {
        return Err(Denial::NONCE_EXPIRED);
    }
    Ok(())
}

/// The signature is the key's HMAC of the nonce and the kid.
pub fn signature(key: &ApiKey, signed: &Signed<'_>) -> Result<(), Denial> {
    if key
        .verifier
        .verify(signed.nonce, &key.kid, signed.signature)
    {
        Ok(())
    } else {
        Err(Denial::INVALID_SIGNATURE)
    }
}

/// Only an active key authenticates.
pub fn key_state(key: &ApiKey) -> Result<(), Denial> {
    match key.state {
        KeyState::Active => Ok(()),
        KeyState::Inactive => Err(Denial::KEY_NOT_ACTIVE),
    }
}

/// The holder may hold a token (Barong answers `invalid_session` here), and a user holder has
/// 2FA on.
pub fn holder(holder: &SubjectRecord, settings: &GateSettings) -> Result<(), Denial> {
    if !steps::may_hold_token(holder, settings) {
        return Err(Denial::INVALID_SESSION);
    }
    if holder.kind == SubjectKind::User && !holder.otp {
        return Err(Denial::DISABLED_2FA);
    }
    Ok(())
}

impl<S: SessionStore, N: NonceGuard> Gate<S, N> {
    /// The key and its holder, after every check of the API-key path.
    pub(super) async fn api_key_subject(
        &self,
        facts: &Facts<'_>,
        now: Now,
    ) -> Result<(Arc<CachedSubject>, Arc<ApiKey>), Denial> {
        let signed = headers(facts)?;
        let lookup = self
            .api_keys
            .get(self.loader.as_ref(), &self.secrets, signed.kid, facts.ip)
            .await
            .map_err(unavailable("postgres"))?;
        let key = found(lookup)?;
        nonce_window(signed.nonce, now, self.settings.nonce_lifetime)?;
        signature(&key, &signed)?;
        // Checked after the signature, so that nobody but the key holder can burn a nonce.
        if let Some(replay) = &self.replay
            && !replay
                .first_use(&key.kid, signed.nonce)
                .await
                .map_err(unavailable("redis"))?
        {
            metrics::counter!("portcullis_api_key_replays_total").increment(1);
            return Err(Denial::NONCE_EXPIRED);
        }
        key_state(&key)?;
        let subject = self
            .subjects
            .get(self.loader.as_ref(), key.holder_kind, &key.holder_uid)
            .await
            .map_err(unavailable("postgres"))?
            .ok_or(Denial::UNEXISTENT_KEY)?;
        holder(&subject.record, &self.settings)?;
        Ok((subject, key))
    }
}
