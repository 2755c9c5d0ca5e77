//! `backoffice_refresh_tokens`: the Back Office's refresh tokens, by keyed digest, grouped in
//! families (one per sign-in). Rotation and reuse detection are the service's; this module
//! only reads and writes rows.

use time::OffsetDateTime;

use super::{Db, StoreError, execute, query_one, query_opt};

/// A stored refresh token.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub id: i64,
    pub family: String,
    pub user_id: i64,
    pub expires_at: OffsetDateTime,
    /// Set once the token was exchanged: presenting it again is a reuse.
    pub used_at: Option<OffsetDateTime>,
    /// Set when its family was ended (sign-out, reuse, a user who may no longer sign in).
    pub revoked_at: Option<OffsetDateTime>,
}

/// Stores a new token of `family`; returns its creation time.
pub async fn insert<C: Db>(
    c: &C,
    digest: &str,
    family: &str,
    user_id: i64,
    expires_at: OffsetDateTime,
) -> Result<OffsetDateTime, StoreError> {
    let row = query_one(
        c,
        "INSERT INTO backoffice_refresh_tokens (digest, family, user_id, expires_at)
         VALUES ($1, $2, $3, $4) RETURNING created_at",
        &[&digest, &family, &user_id, &expires_at],
    )
    .await?;
    Ok(row.get(0))
}

/// The token with this digest, locked until the transaction ends: two refreshes with one
/// token are serialised, and the second sees the first's `used_at`.
pub async fn find_for_update<C: Db>(c: &C, digest: &str) -> Result<Option<RefreshRow>, StoreError> {
    let row = query_opt(
        c,
        "SELECT id, family, user_id, expires_at, used_at, revoked_at
         FROM backoffice_refresh_tokens WHERE digest = $1 FOR UPDATE",
        &[&digest],
    )
    .await?;
    Ok(row.map(|r| RefreshRow {
        id: r.get(0),
        family: r.get(1),
        user_id: r.get(2),
        expires_at: r.get(3),
        used_at: r.get(4),
        revoked_at: r.get(5),
    }))
}

/// Marks a token spent.
pub async fn mark_used<C: Db>(c: &C, id: i64) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE backoffice_refresh_tokens SET used_at = now() WHERE id = $1",
        &[&id],
    )
    .await
    .map(drop)
}

/// Revokes every token of `family` not yet revoked; returns how many.
pub async fn revoke_family<C: Db>(c: &C, family: &str) -> Result<u64, StoreError> {
    execute(
        c,
        "UPDATE backoffice_refresh_tokens SET revoked_at = now()
         WHERE family = $1 AND revoked_at IS NULL",
        &[&family],
    )
    .await
}

/// Deletes tokens that expired more than `keep_days` ago (they can no longer be presented,
/// and a reuse of one is refused as expired anyway).
pub async fn purge_expired<C: Db>(c: &C, keep_days: i32) -> Result<u64, StoreError> {
    execute(
        c,
        "DELETE FROM backoffice_refresh_tokens
         WHERE expires_at < now() - make_interval(days => $1)",
        &[&keep_days],
    )
    .await
}
