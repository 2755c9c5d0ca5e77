//! The gate's Back Office path (seed 003): an `Authorization: Bearer` access token that we
//! signed for a Back Office sign-in. Its signature and expiry prove it; its family must still
//! be live (a sign-out or a stolen refresh token ends it on every node at once); its user is
//! read as any session's is, so a ban or a lock refuses it at once; then the permissions of
//! the user's role decide, as for a session.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::subjects::CachedSubject;
use super::{Denial, Gate, Now, session, unavailable};
use crate::authn::api_keys::NonceGuard;
use crate::authn::backoffice::FAMILY_CLAIM;
use crate::authn::sessions::SessionStore;
use crate::domain::subject::SubjectKind;

/// A verified token's claims.
type Claims = Map<String, Value>;

impl<S: SessionStore, N: NonceGuard> Gate<S, N> {
    /// The claims of `token` when it is a Back Office access token of ours (signature,
    /// expiry, issuer, audience, `sub`); `None` for any other bearer token, which is not the
    /// gate's business.
    pub fn backoffice_claims(&self, token: &str, now: Now) -> Option<Claims> {
        self.issuer.verify_access(token, now.unix_secs())
    }

    /// The user of a verified Back Office access token, after every check of its path: a
    /// live family (else `authz.invalid_session`), a user who may hold a token (else
    /// `authz.user_not_active`). Redis or Postgres down: 503, never an allow.
    pub async fn backoffice_subject(&self, claims: &Claims) -> Result<Arc<CachedSubject>, Denial> {
        let (Some(family), Some(uid)) = (
            claims.get(FAMILY_CLAIM).and_then(|v| v.as_str()),
            claims.get("uid").and_then(|v| v.as_str()),
        ) else {
            return Err(Denial::INVALID_SESSION);
        };
        let families = self.families.as_ref().ok_or(Denial::INVALID_SESSION)?;
        if !families
            .is_active(family)
            .await
            .map_err(unavailable("redis"))?
        {
            return Err(Denial::INVALID_SESSION);
        }
        let subject = self
            .subjects
            .get(self.loader.as_ref(), SubjectKind::User, uid)
            .await
            .map_err(unavailable("postgres"))?
            .ok_or(Denial::INVALID_SESSION)?;
        session::user_state(&subject.record, &self.settings)?;
        Ok(subject)
    }
}
