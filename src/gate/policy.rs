//! The policy snapshot: restrictions, pass/block rules and permissions, compiled together and
//! swapped atomically. Decisions read it without locks or queries; a change notice rebuilds it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use super::permissions::Permissions;
use super::restrictions::Restrictions;
use crate::store::{self, Store, StoreError};

/// Pass and block rules: raw path prefixes (Barong's authz_rules.yml).
#[derive(Debug, Default)]
pub struct Rules {
    pub pass: Vec<String>,
    pub block: Vec<String>,
}

impl Rules {
    pub fn blocks(&self, path: &str) -> bool {
        self.block
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
    }

    pub fn passes(&self, path: &str) -> bool {
        self.pass
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
    }
}

#[derive(Debug, Default)]
pub struct Policy {
    pub restrictions: Restrictions,
    pub rules: Rules,
    pub permissions: Permissions,
    /// Increases with every rebuild on this node.
    pub generation: u64,
}

impl Policy {
    /// Reads the three tables in one repeatable-read transaction and compiles them.
    pub async fn load(store: &Store) -> Result<Policy, StoreError> {
        let mut client = store.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let restriction_rows = store::restrictions::all(&tx).await?;
        let rule_rows = store::authz_rules::all(&tx).await?;
        let permission_rows = store::permissions::all(&tx).await?;
        tx.commit().await?;
        let mut rules = Rules::default();
        for row in rule_rows {
            match row.kind.as_str() {
                "pass" => rules.pass.push(row.path),
                "block" => rules.block.push(row.path),
                _ => {}
            }
        }
        Ok(Policy {
            restrictions: Restrictions::compile(&restriction_rows),
            rules,
            permissions: Permissions::compile(&permission_rows),
            generation: 0,
        })
    }
}

/// The current snapshot, shared by every request on this node.
pub struct PolicyHandle {
    current: ArcSwap<Policy>,
    generation: AtomicU64,
}

impl PolicyHandle {
    /// Starts empty: until the first load, every decision that needs a permission denies.
    pub fn new() -> PolicyHandle {
        PolicyHandle {
            current: ArcSwap::from_pointee(Policy::default()),
            generation: AtomicU64::new(0),
        }
    }

    pub fn current(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.current.load()
    }

    pub fn replace(&self, mut policy: Policy) {
        policy.generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.current.store(Arc::new(policy));
    }

    /// Rebuilds from the database and swaps; the old snapshot stays on failure.
    pub async fn reload(&self, store: &Store) -> Result<u64, StoreError> {
        let policy = Policy::load(store).await?;
        self.replace(policy);
        let generation = self.generation.load(Ordering::Relaxed);
        metrics::counter!("portcullis_policy_reloads_total").increment(1);
        tracing::info!(generation, "policy snapshot rebuilt");
        Ok(generation)
    }
}

impl Default for PolicyHandle {
    fn default() -> Self {
        Self::new()
    }
}
