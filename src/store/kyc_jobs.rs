//! `kyc_jobs`: submissions to the KYC provider, written in the transaction of the change that
//! asks for them (so a submission is never lost, nor sent for a change that rolled back), and
//! the KYC worker's claims on them (`FOR UPDATE SKIP LOCKED`, so nodes share the queue).
//!
//! A job is claimed alone, in a transaction of its own that also holds what applying it writes
//! (labels, the applicant id), so one job's failure never undoes another's. A job that could
//! not be sent waits `retry_first * 2^attempts` (at most `retry_max`) and is tried again; one
//! KYCAID refused for good is finished with its `last_error` kept (`done_at` set, `last_error`
//! not null). `progress` remembers what KYCAID already holds, so a retry does not resend it.

use std::time::Duration;

use serde_json::Value;

use super::{Db, StoreError, execute, query_one, query_opt};
use crate::domain::kyc::KycJob;

/// Queues `job` for the user `user_id`.
pub async fn enqueue<C: Db>(c: &C, user_id: i64, job: &KycJob) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO kyc_jobs (user_id, kind, subject) VALUES ($1, $2, $3)",
        &[&user_id, &job.kind(), &job.subject()],
    )
    .await?;
    Ok(())
}

/// One claimed job. `job` is `None` for a kind this version does not know.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub user_id: i64,
    pub job: Option<KycJob>,
    pub attempts: i32,
    pub progress: Value,
}

/// Locks the oldest due job until `tx` ends; jobs another node holds are skipped.
pub async fn claim_one<C: Db>(tx: &C) -> Result<Option<Claimed>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT id, user_id, kind, subject, attempts, progress FROM kyc_jobs
         WHERE done_at IS NULL AND next_attempt_at <= now()
         ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        &[],
    )
    .await?;
    Ok(row.map(|r| Claimed {
        id: r.get(0),
        user_id: r.get(1),
        job: KycJob::from_row(r.get(2), r.get(3)),
        attempts: r.get(4),
        progress: r.get(5),
    }))
}

/// The job is finished: sent, or (with `refusal`) refused for good.
pub async fn finish<C: Db>(
    c: &C,
    id: i64,
    progress: &Value,
    refusal: Option<&str>,
) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE kyc_jobs SET done_at = now(), progress = $2, last_error = $3 WHERE id = $1",
        &[&id, progress, &refusal],
    )
    .await?;
    Ok(())
}

/// Counts a failed attempt and schedules the next one, `first * 2^attempts` from now, at most
/// `max`. `reason` must carry no secret (it is stored and shown to operators).
pub async fn retry_later<C: Db>(
    c: &C,
    id: i64,
    progress: &Value,
    reason: &str,
    first: Duration,
    max: Duration,
) -> Result<(), StoreError> {
    let first_ms = first.as_millis().min(i64::MAX as u128) as f64;
    let max_ms = max.as_millis().min(i64::MAX as u128) as f64;
    execute(
        c,
        "UPDATE kyc_jobs SET attempts = attempts + 1, last_error = $3, progress = $2,
                next_attempt_at = now() + least($4 * power(2, least(attempts, 40)), $5)
                                          * interval '1 millisecond'
         WHERE id = $1",
        &[&id, progress, &reason, &first_ms, &max_ms],
    )
    .await?;
    Ok(())
}

/// Jobs not finished, on every node (due or waiting for their next attempt).
pub async fn pending_count<C: Db>(c: &C) -> Result<i64, StoreError> {
    let row = query_one(
        c,
        "SELECT count(*) FROM kyc_jobs WHERE done_at IS NULL",
        &[],
    )
    .await?;
    Ok(row.get(0))
}
