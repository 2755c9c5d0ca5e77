//! `kyc_jobs`: submissions to the KYC provider, written in the transaction of the change that
//! asks for them (so a submission is never lost, nor sent for a change that rolled back), and
//! the KYC worker's claims on them (`FOR UPDATE SKIP LOCKED`, so nodes share the queue).

use super::{Db, StoreError, execute};
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
