//! The `kyc_callbacks` table: the KYC provider's verified callbacks, one row per callback
//! however often the provider redelivers it.

use super::{Db, StoreError, execute};
use crate::domain::kyc::KycaidCallback;

/// Records `callback`; false when a callback with its `request_id` was already recorded (a
/// redelivery, which is acknowledged like the first delivery).
pub async fn record_kycaid_callback<C: Db>(
    c: &C,
    callback: &KycaidCallback,
) -> Result<bool, StoreError> {
    let inserted = execute(
        c,
        "INSERT INTO kyc_callbacks
             (request_id, type, applicant_id, verification_id, verification_status, verified)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (request_id) DO NOTHING",
        &[
            &callback.request_id,
            &callback.kind,
            &callback.applicant_id,
            &callback.verification_id,
            &callback.verification_status,
            &callback.verified,
        ],
    )
    .await?;
    Ok(inserted == 1)
}
