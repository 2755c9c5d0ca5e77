//! Back Office token families (seed 003): what every node must agree on about an access
//! token beyond its signature. A sign-in opens a *family*; every access and refresh token of
//! that sign-in belongs to it, and the access token carries its id (`sid`). The family lives
//! in Redis while it may still be refreshed; signing out, or a refresh token presented twice,
//! deletes it, and from then on every node refuses the family's access tokens at once (the
//! gate and the admin API ask [`Families::is_active`] on each request, one round trip, as for
//! a session cookie).
//!
//! Refresh tokens themselves (hashed, rotated, reuse detection) are kept in Postgres by the
//! Back Office service; this module is only the shared, fast "is this family still alive".

use crate::kv::{Kv, KvError};

/// The `sub` of a Back Office access token (a session token says `session`).
pub use crate::jwt::token::BACKOFFICE_SUBJECT as SUBJECT;
/// The claim naming the token's family.
pub const FAMILY_CLAIM: &str = "sid";

/// The live families, in Redis.
#[derive(Clone)]
pub struct Families {
    kv: Kv,
}

impl Families {
    pub fn new(kv: Kv) -> Families {
        Families { kv }
    }

    fn key(&self, family: &str) -> String {
        self.kv.key(&format!("bo:family:{family}"))
    }

    /// Opens (or, at a refresh, extends) the family of `uid` for `ttl_secs`.
    pub async fn keep(&self, family: &str, uid: &str, ttl_secs: u64) -> Result<(), KvError> {
        self.kv.set_ex(&self.key(family), uid, ttl_secs).await
    }

    /// Whether the family's tokens are still honoured. An error is a store failure: callers
    /// refuse (fail closed).
    pub async fn is_active(&self, family: &str) -> Result<bool, KvError> {
        Ok(self.kv.get(&self.key(family)).await?.is_some())
    }

    /// Ends the family: its access tokens are refused from the next request on, everywhere.
    pub async fn revoke(&self, family: &str) -> Result<(), KvError> {
        self.kv.del(&[self.key(family)]).await.map(drop)
    }
}

/// A new family id: 128 random bits, hex.
pub fn new_family_id() -> String {
    crate::crypto::random_hex::<16>()
}
