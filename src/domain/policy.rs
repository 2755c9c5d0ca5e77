//! The rows a policy snapshot is compiled from: restrictions, pass/block rules and
//! permissions, as `store` reads them and `gate` compiles them. Here, below both, so that
//! neither has to import the other; and what makes a restriction row valid, which the admin
//! API and the command line check and the store writes.

use std::net::IpAddr;

use ipnet::IpNet;
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

pub const CATEGORIES: [&str; 4] = ["whitelist", "maintenance", "blacklist", "blocklogin"];
pub const SCOPES: [&str; 5] = ["all", "ip", "ip_subnet", "continent", "country"];

/// The status a restriction answers with when none (or an unusable one) is stored.
/// Barong: whitelist rows and blank codes take the default; maintenance 471, else by scope.
pub fn effective_code(category: &str, scope: &str, code: Option<i32>) -> u16 {
    let default = || match (category, scope) {
        ("maintenance", _) => 471,
        (_, "continent" | "country") => 423,
        (_, "ip_subnet") => 403,
        _ => 401,
    };
    match code {
        // decisions.md #9: the code becomes the status, but only 400–599 is accepted.
        Some(c) if category != "whitelist" && (400..=599).contains(&c) => c as u16,
        _ => default(),
    }
}

pub const STATES: [&str; 2] = ["enabled", "disabled"];

/// A restriction as an operator writes it (admin API or command line), before it is stored.
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    pub category: &'a str,
    pub scope: &'a str,
    pub value: &'a str,
    pub code: Option<i32>,
    pub state: &'a str,
}

impl Draft<'_> {
    /// The row as stored, to change some of its fields.
    pub fn of(row: &RestrictionRow) -> Draft<'_> {
        Draft {
            category: &row.category,
            scope: &row.scope,
            value: &row.value,
            code: row.code,
            state: &row.state,
        }
    }

    /// Every reason the row cannot be stored, Barong's order: the parameter checks
    /// (`admin.restriction.invalid_category|invalid_scope|invalid_state`, and `code.invalid`
    /// outside 400–599, decisions.md #9) all at once; only when they pass, the value's check
    /// for its scope (`value.invalid`, `value.blank`, `value.too_long`).
    pub fn problems(&self) -> Vec<&'static str> {
        let mut codes = Vec::new();
        if !CATEGORIES.contains(&self.category) {
            codes.push("admin.restriction.invalid_category");
        }
        if !SCOPES.contains(&self.scope) {
            codes.push("admin.restriction.invalid_scope");
        }
        if !STATES.contains(&self.state) {
            codes.push("admin.restriction.invalid_state");
        }
        if self.code.is_some_and(|code| !(400..=599).contains(&code)) {
            codes.push("code.invalid");
        }
        if codes.is_empty()
            && let Err(code) = validate_value(self.scope, self.value)
        {
            codes.push(code);
        }
        codes
    }

    /// The code to store: the given one, or Barong's default ([`effective_code`]).
    pub fn stored_code(&self) -> i32 {
        i32::from(effective_code(self.category, self.scope, self.code))
    }

    /// Whether storing this row (over `before`, if it existed) switches a blocklogin on, which
    /// ends every session (Barong §5.1, decisions.md #10).
    pub fn enables_blocklogin(&self, before: Option<&RestrictionRow>) -> bool {
        self.category == "blocklogin"
            && self.state == "enabled"
            && before.is_none_or(|row| row.state != "enabled" || row.category != "blocklogin")
    }
}

/// Why a restriction value is unusable for its scope, if it is.
pub fn validate_value(scope: &str, value: &str) -> Result<(), &'static str> {
    let value = value.trim();
    if value.is_empty() {
        return Err("value.blank");
    }
    if value.len() > 64 {
        return Err("value.too_long");
    }
    match scope {
        "ip" if value.parse::<IpAddr>().is_err() => Err("value.invalid"),
        "ip_subnet" if value.parse::<IpNet>().is_err() => Err("value.invalid"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_report_parameter_problems_before_the_value() {
        let draft = |category, scope, value, code, state| Draft {
            category,
            scope,
            value,
            code,
            state,
        };
        assert!(
            draft("blacklist", "ip", "1.2.3.4", Some(433), "enabled")
                .problems()
                .is_empty()
        );
        assert_eq!(
            draft("greylist", "planet", "1.2.3", Some(200), "on").problems(),
            [
                "admin.restriction.invalid_category",
                "admin.restriction.invalid_scope",
                "admin.restriction.invalid_state",
                "code.invalid",
            ]
        );
        assert_eq!(
            draft("blacklist", "ip", "1.2.3", None, "enabled").problems(),
            ["value.invalid"]
        );
        let blocklogin = draft("blocklogin", "all", "all", None, "enabled");
        assert!(blocklogin.enables_blocklogin(None));
        let mut row = RestrictionRow {
            id: 1,
            category: "blocklogin".into(),
            scope: "all".into(),
            value: "all".into(),
            code: Some(401),
            state: "disabled".into(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        assert!(blocklogin.enables_blocklogin(Some(&row)));
        row.state = "enabled".into();
        assert!(!blocklogin.enables_blocklogin(Some(&row)));
    }
}
