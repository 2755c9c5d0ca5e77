//! The `phones` table: a user's numbers (sealed, with a keyed blind index to find them), the
//! digest of the code last sent to each, and when one was verified. Sealing and digests are the
//! caller's (it holds the key); this module only stores and finds what it is given.

use time::OffsetDateTime;

use super::{Db, StoreError};

/// One row, for the phone endpoints.
#[derive(Debug, Clone)]
pub struct PhoneRecord {
    pub id: i64,
    pub country: String,
    pub number_encrypted: String,
    pub validated_at: Option<OffsetDateTime>,
    pub code_digest: Option<String>,
    pub code_expires_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, country, number_encrypted, validated_at, code_digest, code_expires_at";

fn record(r: &tokio_postgres::Row) -> PhoneRecord {
    PhoneRecord {
        id: r.get(0),
        country: r.get(1),
        number_encrypted: r.get(2),
        validated_at: r.get(3),
        code_digest: r.get(4),
        code_expires_at: r.get(5),
    }
}

/// The user's phone with this number index, locked for the rest of the transaction (two
/// verifications of one phone are then taken one after the other).
pub async fn owned<C: Db>(
    c: &C,
    user_id: i64,
    number_index: &str,
) -> Result<Option<PhoneRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM phones WHERE user_id = $1 AND number_index = $2 FOR UPDATE");
    Ok(super::query_opt(c, &sql, &[&user_id, &number_index])
        .await?
        .as_ref()
        .map(record))
}

/// Whether anyone has verified this number.
pub async fn verified_anywhere<C: Db>(c: &C, number_index: &str) -> Result<bool, StoreError> {
    Ok(super::query_opt(
        c,
        "SELECT 1 FROM phones WHERE number_index = $1 AND validated_at IS NOT NULL LIMIT 1",
        &[&number_index],
    )
    .await?
    .is_some())
}

/// Adds an unverified number. `Conflict` when the user already has it.
pub async fn insert<C: Db>(
    c: &C,
    user_id: i64,
    country: &str,
    number_encrypted: &str,
    number_index: &str,
) -> Result<i64, StoreError> {
    let row = super::query_one(
        c,
        "INSERT INTO phones (user_id, country, number_encrypted, number_index)
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[&user_id, &country, &number_encrypted, &number_index],
    )
    .await?;
    Ok(row.get(0))
}

/// Replaces the phone's pending code (`None`: no code of ours is pending, as with a provider
/// that keeps its own).
pub async fn set_code<C: Db>(
    c: &C,
    phone_id: i64,
    code: Option<(&str, OffsetDateTime)>,
) -> Result<(), StoreError> {
    let (digest, expires_at) = code.unzip();
    super::execute(
        c,
        "UPDATE phones SET code_digest = $2, code_expires_at = $3, updated_at = now() WHERE id = $1",
        &[&phone_id, &digest, &expires_at],
    )
    .await?;
    Ok(())
}

/// Marks the phone verified now and forgets its code (a code verifies once). `Conflict` when
/// another account verified the number meanwhile.
pub async fn mark_verified<C: Db>(c: &C, phone_id: i64) -> Result<OffsetDateTime, StoreError> {
    let row = super::query_one(
        c,
        "UPDATE phones SET validated_at = now(), code_digest = NULL, code_expires_at = NULL,
                updated_at = now()
         WHERE id = $1 RETURNING validated_at",
        &[&phone_id],
    )
    .await?;
    Ok(row.get(0))
}
