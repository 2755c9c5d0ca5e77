//! The rows a policy snapshot is compiled from: restrictions, pass/block rules and
//! permissions, as `store` reads them and `gate` compiles them. Here, below both, so that
//! neither has to import the other.

use serde::Serialize;
use time::OffsetDateTime;

/// A `permissions` row: (role, verb, path prefix) → ACCEPT | DROP | AUDIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRow {
    pub id: i64,
    pub action: String,
    pub role: String,
    pub verb: String,
    pub path: String,
    pub topic: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A `restrictions` row: whitelist, maintenance, blacklist or blocklogin, by scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestrictionRow {
    pub id: i64,
    pub category: String,
    pub scope: String,
    pub value: String,
    pub code: Option<i32>,
    pub state: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What an `authz_rules` row does with the paths under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Allowed without identity.
    Pass,
    /// Refused outright.
    Block,
}

impl RuleKind {
    /// The `kind` column value; `None` for anything the table's CHECK would refuse.
    pub fn parse(value: &str) -> Option<RuleKind> {
        match value {
            "pass" => Some(RuleKind::Pass),
            "block" => Some(RuleKind::Block),
            _ => None,
        }
    }
}

/// An `authz_rules` row: a raw path prefix that passes without identity or is blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzRuleRow {
    pub id: i64,
    pub kind: RuleKind,
    pub path: String,
}

/// The three tables, read together (one snapshot of the database).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRows {
    pub restrictions: Vec<RestrictionRow>,
    pub rules: Vec<AuthzRuleRow>,
    pub permissions: Vec<PermissionRow>,
}
