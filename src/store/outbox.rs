//! The `event_outbox` table: events written in the transaction of the change they describe.
//! A publisher (see `events`) delivers them to RabbitMQ and marks them published.

use super::{Db, StoreError, execute};

/// Records event `name` (e.g. `system.session.create`) with its `record` payload.
pub async fn insert<C: Db>(
    c: &C,
    name: &str,
    record: &serde_json::Value,
) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO event_outbox (name, payload) VALUES ($1, $2)",
        &[&name, record],
    )
    .await?;
    Ok(())
}
