//! The session cookie path (Barong §1.2.5, with decisions.md): CSRF header present → session
//! loaded → CSRF token matches → session exists → binding holds (else the session is destroyed)
//! → renewal → user exists → user state. The checks are functions of the facts, the loaded
//! session and `now`; `Gate::session_subject` runs them around the two ports it needs.

use std::sync::Arc;

use super::clock::Now;
use super::subjects::CachedSubject;
use super::{Denial, Facts, Gate, GateSettings, steps, unavailable};
use crate::authn::api_keys::NonceGuard;
use crate::authn::sessions::{SessionData, SessionStore, binding_holds};
use crate::crypto::constant_time_eq;
use crate::domain::subject::{SubjectKind, SubjectRecord};
use crate::net::method;

/// CSRF applies when protection is on and the method is not GET, HEAD or OPTIONS, in any
/// letter case (decisions.md #26).
pub fn csrf_required(settings: &GateSettings, facts: &Facts<'_>) -> bool {
    settings.csrf_protection && !method::is_safe(facts.verb)
}

/// Barong refuses a missing CSRF header before it looks at the session at all (quirk #1): an
/// anonymous POST gets `missing_csrf_token`, not `invalid_session`.
pub fn csrf_present(required: bool, facts: &Facts<'_>) -> Result<(), Denial> {
    if required && facts.csrf_token.is_none() {
        return Err(Denial::MISSING_CSRF);
    }
    Ok(())
}

/// The header equals the session's token (compared in constant time); no session means no
/// token to match.
pub fn csrf_matches(
    required: bool,
    session: Option<&SessionData>,
    facts: &Facts<'_>,
) -> Result<(), Denial> {
    if !required {
        return Ok(());
    }
    let expected = session.map_or(&b""[..], |s| s.csrf_token.as_bytes());
    let given = facts.csrf_token.unwrap_or("").as_bytes();
    if expected.is_empty() || !constant_time_eq(expected, given) {
        return Err(Denial::CSRF_MISMATCH);
    }
    Ok(())
}

/// The session is bound to its User-Agent, its login network and its sliding expiry (§6.3).
pub fn binding(session: &SessionData, facts: &Facts<'_>, now: Now) -> Result<(), Denial> {
    if binding_holds(session, facts.user_agent, facts.ip, now.unix_secs()) {
        Ok(())
    } else {
        Err(Denial::SESSION_MISMATCH)
    }
}

/// The session's user may hold a token.
pub fn user_state(user: &SubjectRecord, settings: &GateSettings) -> Result<(), Denial> {
    if steps::may_hold_token(user, settings) {
        Ok(())
    } else {
        Err(Denial::USER_NOT_ACTIVE)
    }
}

impl<S: SessionStore, N: NonceGuard> Gate<S, N> {
    /// The user the session cookie names, after every check of the cookie path.
    pub(super) async fn session_subject(
        &self,
        facts: &Facts<'_>,
        now: Now,
    ) -> Result<Arc<CachedSubject>, Denial> {
        let csrf = csrf_required(&self.settings, facts);
        csrf_present(csrf, facts)?;
        let session = match facts.session_id {
            Some(id) => self.sessions.load(id).await.map_err(unavailable("redis"))?,
            None => None,
        };
        csrf_matches(csrf, session.as_deref(), facts)?;
        let (Some(session), Some(id)) = (session, facts.session_id) else {
            return Err(Denial::INVALID_SESSION);
        };
        if let Err(denial) = binding(&session, facts, now) {
            self.sessions
                .destroy(id, &session.uid)
                .await
                .map_err(unavailable("redis"))?;
            return Err(denial);
        }
        let sliding = &self.settings.sliding;
        if sliding.due(&session, now.unix_secs()) {
            let renewed = sliding.renewed(&session, now.unix_secs());
            self.sessions
                .renew(id, &renewed)
                .await
                .map_err(unavailable("redis"))?;
        }
        let user = self
            .subjects
            .get(self.loader.as_ref(), SubjectKind::User, &session.uid)
            .await
            .map_err(unavailable("postgres"))?
            .ok_or(Denial::INVALID_SESSION)?;
        user_state(&user.record, &self.settings)?;
        Ok(user)
    }
}
