//! The policy snapshot: restrictions, pass/block rules and permissions, compiled together from
//! the rows `store::policy` reads, and swapped atomically. Decisions read it without locks or
//! queries; a change notice rebuilds it (`app`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use super::permissions::Permissions;
use super::restrictions::Restrictions;
use crate::domain::policy::{PolicyRows, RuleKind};

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
    /// Compiles the three tables (generation 0 until it is swapped in).
    pub fn compile(rows: &PolicyRows) -> Policy {
        let mut rules = Rules::default();
        for row in &rows.rules {
            match row.kind {
                RuleKind::Pass => rules.pass.push(row.path.clone()),
                RuleKind::Block => rules.block.push(row.path.clone()),
            }
        }
        Policy {
            restrictions: Restrictions::compile(&rows.restrictions),
            rules,
            permissions: Permissions::compile(&rows.permissions),
            generation: 0,
        }
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

    /// Swaps in a new snapshot; returns its generation.
    pub fn replace(&self, mut policy: Policy) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        policy.generation = generation;
        self.current.store(Arc::new(policy));
        metrics::counter!("portcullis_policy_reloads_total").increment(1);
        tracing::info!(generation, "policy snapshot rebuilt");
        generation
    }
}

impl Default for PolicyHandle {
    fn default() -> Self {
        Self::new()
    }
}
