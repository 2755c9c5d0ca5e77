//! Reads the rows a policy snapshot is compiled from (`gate::policy::Policy::compile`).

use super::{Db, Store, StoreError, query};
use crate::domain::policy::PolicyRows;

/// The restrictions, pass/block rules and permissions, read in one repeatable-read
/// transaction so that the snapshot never mixes two states of the tables.
pub async fn rows(store: &Store) -> Result<PolicyRows, StoreError> {
    let mut client = store.client().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let restrictions = super::restrictions::all(&tx).await?;
    let rules = super::authz_rules::all(&tx).await?;
    let permissions = super::permissions::all(&tx).await?;
    tx.commit().await?;
    Ok(PolicyRows {
        restrictions,
        rules,
        permissions,
    })
}

/// Every level as (id, key, value, description), ordered by id: what `policies export`
/// writes back to `levels.toml` (the description included, so a round trip keeps it).
pub async fn described_levels<C: Db>(
    c: &C,
) -> Result<Vec<(i32, String, String, Option<String>)>, StoreError> {
    let rows = query(
        c,
        "SELECT id, key, value, description FROM levels ORDER BY id",
        &[],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// Arbitrary but fixed: the advisory lock that makes policy applications take turns.
const APPLY_LOCK: i64 = 0x706f_6c69_6369_6573; // "policies"

/// Makes `tx` wait for any policy application in progress, and hold off the others until it
/// ends (a transaction lock: released at commit or rollback, even by a cancelled caller). Two
/// nodes starting on an empty permissions table each load the default policies; without it
/// both would find every row missing and insert it twice.
pub async fn lock_for_apply(tx: &super::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPLY_LOCK])
        .await?;
    Ok(())
}
