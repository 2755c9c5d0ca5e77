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
        self.block_of(path).is_some()
    }

    pub fn passes(&self, path: &str) -> bool {
        self.pass_of(path).is_some()
    }

    /// The first block rule over `path`.
    pub fn block_of(&self, path: &str) -> Option<&str> {
        first_prefix(&self.block, path)
    }

    /// The first pass rule over `path`.
    pub fn pass_of(&self, path: &str) -> Option<&str> {
        first_prefix(&self.pass, path)
    }
}

fn first_prefix<'r>(prefixes: &'r [String], path: &str) -> Option<&'r str> {
    prefixes
        .iter()
        .map(String::as_str)
        .find(|prefix| path.starts_with(prefix))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::AuthzRuleRow;

    fn rule(kind: RuleKind, path: &str) -> AuthzRuleRow {
        AuthzRuleRow {
            id: 0,
            kind,
            path: path.into(),
        }
    }

    #[test]
    fn rules_compile_by_kind_and_match_raw_prefixes() {
        let rows = PolicyRows {
            rules: vec![
                rule(RuleKind::Pass, "api/v2/barong/identity"),
                rule(RuleKind::Block, "api/v2/barong/admin"),
            ],
            ..PolicyRows::default()
        };
        let policy = Policy::compile(&rows);
        assert!(policy.rules.passes("api/v2/barong/identity/sessions"));
        // Raw prefixes, no segment boundary (Barong).
        assert!(policy.rules.passes("api/v2/barong/identityX"));
        assert!(!policy.rules.blocks("api/v2/barong/identity/sessions"));
        assert!(policy.rules.blocks("api/v2/barong/admin/users"));
        assert!(!policy.rules.passes("api/v2/barong/admin/users"));
        assert!(policy.restrictions.is_empty());
    }

    #[test]
    fn every_swap_has_a_new_generation_and_the_handle_starts_empty() {
        let handle = PolicyHandle::new();
        assert_eq!(handle.current().generation, 0);
        assert!(handle.current().rules.pass.is_empty());
        let rows = PolicyRows {
            rules: vec![rule(RuleKind::Pass, "api/v2/public")],
            ..PolicyRows::default()
        };
        assert_eq!(handle.replace(Policy::compile(&rows)), 1);
        assert_eq!(handle.replace(Policy::compile(&rows)), 2);
        let current = handle.current();
        assert_eq!(current.generation, 2);
        assert!(current.rules.passes("api/v2/public/markets"));
    }
}
