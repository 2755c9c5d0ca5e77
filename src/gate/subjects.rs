//! Per-node cache of subjects (users and service accounts) and of the token minted for each
//! (on `crate::cache`: size-bounded, and never caching a read that raced a change notice).
//!
//! The token lives inside the cached subject: when a change notice replaces the subject
//! (ban, role, level, state, email...), the token goes with it, so a stale claim is never
//! handed out again. A token is reused while less than `reuse_fraction` of its lifetime has
//! passed, and never across a signing-key change.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cache::Cache;
use crate::domain::loader::{LoadError, SubjectLoader};
use crate::domain::subject::{SubjectKind, SubjectRecord};
use crate::jwt::{Bearer, Issuer, MintedToken};

pub struct CachedSubject {
    pub record: SubjectRecord,
    token: Mutex<Option<MintedToken>>,
}

/// How minted tokens are reused.
#[derive(Debug, Clone, Copy)]
pub struct TokenReuse {
    pub enabled: bool,
    pub fraction: f64,
}

impl CachedSubject {
    pub fn new(record: SubjectRecord) -> CachedSubject {
        CachedSubject {
            record,
            token: Mutex::new(None),
        }
    }

    /// `Bearer <jwt>` for this subject: the cached token while it is fresh enough, else a new one.
    pub fn bearer(&self, issuer: &Issuer, reuse: TokenReuse, now: i64) -> Bearer {
        if !reuse.enabled {
            return issuer.mint_session(&self.record, now).bearer;
        }
        // Held while signing: concurrent requests for the same subject wait for one signature
        // instead of each computing their own.
        let mut slot = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = slot.as_ref() {
            let reuse_until = token.iat + ((token.exp - token.iat) as f64 * reuse.fraction) as i64;
            if now < reuse_until && now >= token.iat && token.kid == *issuer.kid() {
                issuer.count_reuse();
                return token.bearer.clone();
            }
        }
        let token = issuer.mint_session(&self.record, now);
        let bearer = token.bearer.clone();
        *slot = Some(token);
        bearer
    }
}

/// Subjects by kind and uid, with the token minted for each: one cache per kind, keyed by
/// the uid itself, so a lookup builds no key.
pub struct Subjects {
    users: Cache<Arc<CachedSubject>>,
    service_accounts: Cache<Arc<CachedSubject>>,
}

impl Subjects {
    pub fn new(ttl: Duration, capacity: u64) -> Subjects {
        Subjects {
            users: Cache::new("subject", capacity, ttl),
            service_accounts: Cache::new("subject", capacity, ttl),
        }
    }

    fn cache(&self, kind: SubjectKind) -> &Cache<Arc<CachedSubject>> {
        match kind {
            SubjectKind::User => &self.users,
            SubjectKind::ServiceAccount => &self.service_accounts,
        }
    }

    /// The subject, from the cache or (once per change or TTL) from `loader`.
    pub async fn get(
        &self,
        loader: &dyn SubjectLoader,
        kind: SubjectKind,
        uid: &str,
    ) -> Result<Option<Arc<CachedSubject>>, LoadError> {
        let cache = self.cache(kind);
        if let Some(subject) = cache.get(uid) {
            return Ok(Some(subject));
        }
        let ticket = cache.ticket(uid);
        let Some(record) = loader.subject(kind, uid).await? else {
            return Ok(None);
        };
        // Keep the token minted for the old entry when nothing changed (a TTL refresh).
        let token = cache
            .get_stale(uid)
            .filter(|existing| existing.record == record)
            .and_then(|existing| {
                existing
                    .token
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
            });
        let subject = Arc::new(CachedSubject {
            record,
            token: Mutex::new(token),
        });
        // Not cached when a change notice for it arrived meanwhile: this read may predate it.
        cache.insert(uid, subject.clone(), ticket);
        Ok(Some(subject))
    }

    pub fn invalidate(&self, kind: SubjectKind, uid: &str) {
        self.cache(kind).invalidate(uid);
    }

    pub fn clear(&self) {
        self.users.clear();
        self.service_accounts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JwtAlgorithm;
    use crate::domain::loader::MemoryLoader;
    use crate::jwt::SigningKey;

    fn record(role: &str) -> SubjectRecord {
        SubjectRecord {
            kind: SubjectKind::User,
            id: 1,
            uid: "ID1".into(),
            username: None,
            email: "id1@example.com".into(),
            role: role.into(),
            level: 3,
            state: "active".into(),
            referral_id: None,
            otp: true,
        }
    }

    #[tokio::test]
    async fn a_ttl_refresh_keeps_the_token_unless_the_subject_changed() {
        let issuer = Issuer::new(SigningKey::generate(), JwtAlgorithm::RS256, 3600, false);
        let reuse = TokenReuse {
            enabled: true,
            fraction: 0.5,
        };
        let loader = MemoryLoader::default();
        loader.add_subject(record("member"));
        let subjects = Subjects::new(Duration::from_millis(30), 100);
        let get = || subjects.get(&loader, SubjectKind::User, "ID1");
        let first = get().await.unwrap().unwrap().bearer(&issuer, reuse, 1000);
        // Fresh: from the cache, no load.
        get().await.unwrap().unwrap();
        assert_eq!(loader.loads(), 1);
        // Stale and unchanged: reloaded, and the token minted for it is kept.
        std::thread::sleep(Duration::from_millis(40));
        let again = get().await.unwrap().unwrap().bearer(&issuer, reuse, 1001);
        assert_eq!(loader.loads(), 2);
        assert_eq!(again, first);
        // Changed: the token goes with the old record.
        std::thread::sleep(Duration::from_millis(40));
        loader.add_subject(record("admin"));
        let changed = get().await.unwrap().unwrap().bearer(&issuer, reuse, 1002);
        assert_ne!(changed, first);
        // Kinds are kept apart: a user's uid names no service account.
        assert!(
            subjects
                .get(&loader, SubjectKind::ServiceAccount, "ID1")
                .await
                .unwrap()
                .is_none()
        );
    }
}
