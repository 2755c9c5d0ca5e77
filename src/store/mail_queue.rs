//! `mail_queue`: emails to send, queued with the event that asks for them, and the mailer's
//! claims on them. Claims lock rows with `FOR UPDATE SKIP LOCKED`, so the mailers of several
//! nodes share the queue; a failed row waits `2^attempts` seconds (at most an hour) before the
//! next try, and is given up after [`MAX_ATTEMPTS`] (it stays in the table for inspection).

use serde_json::Value;

use super::{Db, StoreError, execute, query};

/// A row is given up after this many failed attempts.
pub const MAX_ATTEMPTS: i32 = 10;

/// One queued email, claimed.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: i64,
    pub event: String,
    pub payload: Value,
}

/// Queues the email of event `event`.
pub async fn insert<C: Db>(c: &C, event: &str, payload: &Value) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO mail_queue (event_name, payload) VALUES ($1, $2)",
        &[&event, payload],
    )
    .await?;
    Ok(())
}

/// Locks up to `limit` rows that are due, oldest first, until `tx` ends; rows another node
/// holds are skipped.
pub async fn claim<C: Db>(tx: &C, limit: i64) -> Result<Vec<Queued>, StoreError> {
    let rows = query(
        tx,
        "SELECT id, event_name, payload FROM mail_queue
         WHERE sent_at IS NULL AND attempts < $1 AND next_attempt_at <= now()
         ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
        &[&MAX_ATTEMPTS, &limit],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Queued {
            id: r.get(0),
            event: r.get(1),
            payload: r.get(2),
        })
        .collect())
}

/// Marks a message sent, and drops the secrets it carried (a link's `token`, a one-time
/// `code`): once delivered, they have no business staying in the database.
pub async fn mark_sent<C: Db>(c: &C, id: i64) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE mail_queue SET sent_at = now(), last_error = NULL,
                payload = payload #- '{record,token}' #- '{record,code}'
         WHERE id = $1",
        &[&id],
    )
    .await?;
    Ok(())
}

/// Counts a failed attempt and schedules the next: 2^attempts seconds (1 s, 2 s, 4 s, …), at
/// most an hour. `reason` must carry no secret (it is stored and shown to operators).
pub async fn mark_failed<C: Db>(c: &C, id: i64, reason: &str) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE mail_queue SET attempts = attempts + 1, last_error = $2,
                next_attempt_at = now() + least(power(2, attempts), 3600) * interval '1 second'
         WHERE id = $1",
        &[&id, &reason],
    )
    .await?;
    Ok(())
}
