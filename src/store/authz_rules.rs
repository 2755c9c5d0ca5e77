//! The `authz_rules` table: path prefixes that pass without identity or are blocked outright.

use super::{Db, StoreError, execute, query};
pub use crate::domain::policy::AuthzRuleRow;
use crate::domain::policy::RuleKind;

pub async fn all<C: Db>(c: &C) -> Result<Vec<AuthzRuleRow>, StoreError> {
    let rows = query(c, "SELECT id, kind, path FROM authz_rules ORDER BY id", &[]).await?;
    // The column's CHECK admits only `pass` and `block`; a row of any other kind does nothing.
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(AuthzRuleRow {
                id: r.get(0),
                kind: RuleKind::parse(r.get(1))?,
                path: r.get(2),
            })
        })
        .collect())
}

/// Adds a rule unless it exists; true when inserted.
pub async fn insert_if_missing<C: Db>(c: &C, kind: &str, path: &str) -> Result<bool, StoreError> {
    let n = execute(
        c,
        "INSERT INTO authz_rules (kind, path) VALUES ($1, $2) ON CONFLICT (kind, path) DO NOTHING",
        &[&kind, &path],
    )
    .await?;
    Ok(n == 1)
}

pub async fn delete<C: Db>(c: &C, id: i64) -> Result<bool, StoreError> {
    Ok(execute(c, "DELETE FROM authz_rules WHERE id = $1", &[&id]).await? == 1)
}
