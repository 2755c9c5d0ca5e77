//! `admin_abilities`: what each admin role may read or manage in the admin API.

use super::{Db, StoreError, execute};

/// Grants `role` the `action` (`read` or `manage`) on `subject` unless it has it; true when
/// inserted.
pub async fn insert_if_missing<C: Db>(
    c: &C,
    role: &str,
    action: &str,
    subject: &str,
) -> Result<bool, StoreError> {
    let inserted = execute(
        c,
        "INSERT INTO admin_abilities (role, action, subject) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &[&role, &action, &subject],
    )
    .await?;
    Ok(inserted > 0)
}
