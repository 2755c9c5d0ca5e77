//! Reads the rows a policy snapshot is compiled from (`gate::policy::Policy::compile`).

use super::{Store, StoreError};
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
