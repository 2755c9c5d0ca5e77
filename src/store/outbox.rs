//! `event_outbox`: events written in the transaction of the change they describe, and the
//! publisher's claims on them. Claims lock rows with `FOR UPDATE SKIP LOCKED`, so the
//! publishers of several nodes share the outbox without sending a row twice at once.

use serde_json::Value;

use super::{Db, StoreError, execute, query, query_one};

/// One pending event, claimed.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Also the message id consumers dedupe by: the same on every attempt.
    pub id: i64,
    pub name: String,
    pub payload: Value,
}

/// Records event `name` with its body.
pub async fn insert<C: Db>(c: &C, name: &str, payload: &Value) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO event_outbox (name, payload) VALUES ($1, $2)",
        &[&name, payload],
    )
    .await?;
    Ok(())
}

/// Locks up to `limit` unpublished rows, oldest first, until `tx` ends; rows another node
/// holds are skipped.
pub async fn claim<C: Db>(tx: &C, limit: i64) -> Result<Vec<Pending>, StoreError> {
    let rows = query(
        tx,
        "SELECT id, name, payload FROM event_outbox WHERE published_at IS NULL \
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        &[&limit],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| Pending {
            id: row.get(0),
            name: row.get(1),
            payload: row.get(2),
        })
        .collect())
}

/// Marks rows published (the broker took them, or they can never be delivered).
pub async fn mark_published<C: Db>(c: &C, ids: &[i64]) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE event_outbox SET published_at = now() WHERE id = ANY($1)",
        &[&ids],
    )
    .await?;
    Ok(())
}

/// Counts a failed attempt on rows that stay pending.
pub async fn count_attempt<C: Db>(c: &C, ids: &[i64]) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE event_outbox SET attempts = attempts + 1 WHERE id = ANY($1)",
        &[&ids],
    )
    .await?;
    Ok(())
}

/// Rows not yet published, on every node. Cheap: the partial index holds only pending rows.
pub async fn pending_count<C: Db>(c: &C) -> Result<i64, StoreError> {
    let row = query_one(
        c,
        "SELECT count(*) FROM event_outbox WHERE published_at IS NULL",
        &[],
    )
    .await?;
    Ok(row.get(0))
}
