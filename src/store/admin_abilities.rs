//! `admin_abilities`: what each admin role may read or manage in the admin API.

use super::{Db, StoreError, execute, query};
use crate::domain::abilities::Abilities;

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

/// Every grant as (role, action, subject), in insertion order.
pub async fn all<C: Db>(c: &C) -> Result<Vec<(String, String, String)>, StoreError> {
    let rows = query(
        c,
        "SELECT role, action, subject FROM admin_abilities ORDER BY id",
        &[],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// The abilities of `role` (none when the role has no row).
pub async fn for_role<C: Db>(c: &C, role: &str) -> Result<Abilities, StoreError> {
    let rows = query(
        c,
        "SELECT action, subject FROM admin_abilities WHERE role = $1 ORDER BY id",
        &[&role],
    )
    .await?;
    let pairs: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(Abilities::from_rows(
        pairs.iter().map(|(a, m)| (a.as_str(), m.as_str())),
    ))
}
