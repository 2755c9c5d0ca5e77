//! The port through which the gate's caches read subjects and API keys on a miss, and the
//! records it returns. Declared here, below both sides: `store` implements it on Postgres, and
//! [`MemoryLoader`] implements it on maps for tests, so the gate needs neither.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures_util::future::BoxFuture;

use super::subject::{SubjectKind, SubjectRecord};

/// Whether an API key may authenticate (`api_keys.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    /// Any other state (Barong writes `disabled`; nothing but `active` authenticates).
    Inactive,
}

impl KeyState {
    pub fn parse(value: &str) -> KeyState {
        if value == "active" {
            KeyState::Active
        } else {
            KeyState::Inactive
        }
    }
}

/// The sealing context of a key's secret: a sealed secret only opens for its own kid.
pub fn secret_context(kid: &str) -> String {
    format!("api_key:{kid}")
}

/// An API key as authentication needs it: the sealed secret and the holder's uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub kid: String,
    pub algorithm: String,
    /// Sealed with `crypto::SecretBox` under the kid's context.
    pub secret_encrypted: String,
    pub state: KeyState,
    pub holder_kind: SubjectKind,
    pub holder_uid: String,
}

/// The source could not answer (the caller fails closed).
#[derive(Debug)]
pub struct LoadError(Box<dyn std::error::Error + Send + Sync>);

impl LoadError {
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> LoadError {
        LoadError(err.into())
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// Reads what the per-node caches hold, once per miss. A boxed future is fine here: it runs
/// only when the cache has no fresh entry.
pub trait SubjectLoader: Send + Sync {
    /// The user or service account `uid`, if it exists.
    fn subject<'a>(
        &'a self,
        kind: SubjectKind,
        uid: &'a str,
    ) -> BoxFuture<'a, Result<Option<SubjectRecord>, LoadError>>;

    /// The key `kid`, if it exists and its holder does.
    fn api_key<'a>(
        &'a self,
        kid: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, LoadError>>;
}

/// A [`SubjectLoader`] over maps, for tests: records can be added, and the whole source can be
/// made unavailable to see callers fail closed.
#[derive(Default)]
pub struct MemoryLoader {
    subjects: Mutex<HashMap<(SubjectKind, String), SubjectRecord>>,
    keys: Mutex<HashMap<String, ApiKeyRecord>>,
    unavailable: AtomicBool,
    loads: AtomicUsize,
}

impl MemoryLoader {
    pub fn add_subject(&self, record: SubjectRecord) {
        self.subjects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((record.kind, record.uid.clone()), record);
    }

    pub fn add_api_key(&self, record: ApiKeyRecord) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.kid.clone(), record);
    }

    /// From now on every load fails (or succeeds again).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::Relaxed);
    }

    /// How many loads were asked for (to see what the caches spared).
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::Relaxed)
    }

    fn answer<T>(&self, found: impl FnOnce() -> Option<T>) -> Result<Option<T>, LoadError> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        if self.unavailable.load(Ordering::Relaxed) {
            return Err(LoadError::new("the in-memory loader is set unavailable"));
        }
        Ok(found())
    }
}

impl SubjectLoader for MemoryLoader {
    fn subject<'a>(
        &'a self,
        kind: SubjectKind,
        uid: &'a str,
    ) -> BoxFuture<'a, Result<Option<SubjectRecord>, LoadError>> {
        let answer = self.answer(|| {
            let subjects = self.subjects.lock().unwrap_or_else(|p| p.into_inner());
            subjects.get(&(kind, uid.to_string())).cloned()
        });
        Box::pin(std::future::ready(answer))
    }

    fn api_key<'a>(
        &'a self,
        kid: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, LoadError>> {
        let answer = self.answer(|| {
            let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            keys.get(kid).cloned()
        });
        Box::pin(std::future::ready(answer))
    }
}
