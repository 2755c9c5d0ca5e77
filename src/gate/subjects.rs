//! Per-node cache of subjects (users and service accounts) and of the token minted for each.
//!
//! The token lives inside the cached subject: when a change notice replaces the subject
//! (ban, role, level, state, email...), the token goes with it, so a stale claim is never
//! handed out again. A token is reused while less than `reuse_fraction` of its lifetime has
//! passed, and never across a signing-key change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::domain::subject::{SubjectKind, SubjectRecord};
use crate::jwt::{Issuer, MintedToken};
use crate::store::{self, Store, StoreError};

pub struct CachedSubject {
    pub record: SubjectRecord,
    loaded: Instant,
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
            loaded: Instant::now(),
            token: Mutex::new(None),
        }
    }

    /// `Bearer <jwt>` for this subject: the cached token while it is fresh enough, else a new one.
    pub fn bearer(&self, issuer: &Issuer, reuse: TokenReuse, now: i64) -> Arc<str> {
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

#[derive(Default)]
struct Maps {
    users: HashMap<String, Arc<CachedSubject>>,
    service_accounts: HashMap<String, Arc<CachedSubject>>,
}

impl Maps {
    fn of(&mut self, kind: SubjectKind) -> &mut HashMap<String, Arc<CachedSubject>> {
        match kind {
            SubjectKind::User => &mut self.users,
            SubjectKind::ServiceAccount => &mut self.service_accounts,
        }
    }
}

pub struct Subjects {
    maps: RwLock<Maps>,
    ttl: Duration,
    hits: metrics::Counter,
    misses: metrics::Counter,
}

const MAX_ENTRIES: usize = 200_000;

impl Subjects {
    pub fn new(ttl: Duration) -> Subjects {
        Subjects {
            maps: RwLock::new(Maps::default()),
            ttl,
            hits: metrics::counter!("portcullis_cache_hits_total", "cache" => "subject"),
            misses: metrics::counter!("portcullis_cache_misses_total", "cache" => "subject"),
        }
    }

    /// The subject, from the cache or (once per change or TTL) from the database.
    pub async fn get(
        &self,
        store: &Store,
        kind: SubjectKind,
        uid: &str,
    ) -> Result<Option<Arc<CachedSubject>>, StoreError> {
        {
            let maps = self.maps.read().expect("lock");
            let map = match kind {
                SubjectKind::User => &maps.users,
                SubjectKind::ServiceAccount => &maps.service_accounts,
            };
            if let Some(subject) = map.get(uid)
                && subject.loaded.elapsed() < self.ttl
            {
                self.hits.increment(1);
                return Ok(Some(subject.clone()));
            }
        }
        self.misses.increment(1);
        let client = store.client().await?;
        let record = match kind {
            SubjectKind::User => store::users::find_by_uid(&client, uid)
                .await?
                .map(|u| u.subject()),
            SubjectKind::ServiceAccount => {
                store::service_accounts::subject_by_uid(&client, uid).await?
            }
        };
        let Some(record) = record else {
            return Ok(None);
        };
        let mut maps = self.maps.write().expect("lock");
        let map = maps.of(kind);
        // Keep the existing entry (and its token) when nothing changed.
        if let Some(existing) = map.get(uid)
            && existing.record == record
        {
            let refreshed = Arc::new(CachedSubject {
                record,
                loaded: Instant::now(),
                token: Mutex::new(
                    existing
                        .token
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone(),
                ),
            });
            map.insert(uid.to_string(), refreshed.clone());
            return Ok(Some(refreshed));
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        let subject = Arc::new(CachedSubject::new(record));
        map.insert(uid.to_string(), subject.clone());
        Ok(Some(subject))
    }

    pub fn invalidate(&self, kind: SubjectKind, uid: &str) {
        self.maps.write().expect("lock").of(kind).remove(uid);
    }

    pub fn clear(&self) {
        let mut maps = self.maps.write().expect("lock");
        maps.users.clear();
        maps.service_accounts.clear();
    }
}
