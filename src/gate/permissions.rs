//! The permissions table, compiled per role.
//!
//! Barong's semantics (§4.2), kept on purpose (decisions.md #2): candidate rows are those of the
//! subject's role whose verb equals the request's (or is `ALL`) and whose path is a raw string
//! prefix of the request path. Deny when there is no candidate, when any candidate is DROP, or
//! when none is ACCEPT. AUDIT grants nothing but asks for an audit record. One addition: a
//! DROP row for GET applies to HEAD too (HEAD runs the GET action upstream).

use std::collections::HashMap;

use crate::domain::policy::PermissionRow;

pub const VERBS: [&str; 7] = ["GET", "POST", "DELETE", "PUT", "HEAD", "PATCH", "ALL"];
pub const ACTIONS: [&str; 3] = ["ACCEPT", "DROP", "AUDIT"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Drop,
    Audit,
}

impl Action {
    pub fn parse(value: &str) -> Option<Action> {
        match value.to_ascii_uppercase().as_str() {
            "ACCEPT" => Some(Action::Accept),
            "DROP" => Some(Action::Drop),
            "AUDIT" => Some(Action::Audit),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    id: i64,
    /// Upper-case verb, or `ALL`.
    verb: String,
    path: String,
    action: Action,
    topic: Option<String>,
}

/// What the permissions table says about (role, verb, path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow {
        /// `Some(topic)` when an AUDIT row matched: the first AUDIT row's topic.
        audit: Option<Option<String>>,
    },
    Deny,
}

/// Which rows decided, for `explain` and for the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matched {
    pub accept: Vec<i64>,
    pub drop: Vec<i64>,
    pub audit: Vec<i64>,
}

#[derive(Debug, Default)]
pub struct Permissions {
    by_role: HashMap<String, Vec<Rule>>,
}

impl Permissions {
    pub fn compile(rows: &[PermissionRow]) -> Permissions {
        let mut by_role: HashMap<String, Vec<Rule>> = HashMap::new();
        for row in rows {
            // Rows with an unknown action (the admin update endpoint can store one) never match.
            let Some(action) = Action::parse(&row.action) else {
                continue;
            };
            by_role.entry(row.role.clone()).or_default().push(Rule {
                id: row.id,
                verb: row.verb.to_ascii_uppercase(),
                path: row.path.clone(),
                action,
                topic: row.topic.clone(),
            });
        }
        Permissions { by_role }
    }

    pub fn role_exists(&self, role: &str) -> bool {
        self.by_role.contains_key(role)
    }

    /// `verb` upper-case as received (HEAD stays HEAD); `path` without a leading slash.
    pub fn check(&self, role: &str, verb: &str, path: &str) -> Verdict {
        self.evaluate(role, verb, path).0
    }

    /// The verdict and the rows behind it.
    pub fn evaluate(&self, role: &str, verb: &str, path: &str) -> (Verdict, Matched) {
        let mut matched = Matched::default();
        let mut audit_topic: Option<Option<String>> = None;
        for rule in self.by_role.get(role).map(Vec::as_slice).unwrap_or(&[]) {
            // A DROP of GET also drops HEAD: upstreams (Rails among them) answer HEAD by running
            // the GET action, so a GET-only DROP must not be walked around with HEAD.
            let verb_matches = rule.verb == verb
                || rule.verb == "ALL"
                || (verb == "HEAD" && rule.verb == "GET" && rule.action == Action::Drop);
            if !verb_matches || !path.starts_with(&rule.path) {
                continue;
            }
            match rule.action {
                Action::Accept => matched.accept.push(rule.id),
                Action::Drop => matched.drop.push(rule.id),
                Action::Audit => {
                    matched.audit.push(rule.id);
                    audit_topic.get_or_insert_with(|| rule.topic.clone());
                }
            }
        }
        let verdict = if matched.drop.is_empty() && !matched.accept.is_empty() {
            Verdict::Allow { audit: audit_topic }
        } else {
            Verdict::Deny
        };
        (verdict, matched)
    }
}

/// The admin API's codes for a refused verb and action (Barong's, with its plural prefix).
pub const INVALID_VERB: &str = "admin.permissions.invalid_verb";
pub const INVALID_ACTION: &str = "admin.permissions.invalid_action";

/// A verb as stored (upper-cased, as Barong saves it), or [`INVALID_VERB`] for one the gate
/// would never match. The admin API and the command line both write through this.
pub fn stored_verb(input: &str) -> Result<String, &'static str> {
    let verb = input.trim().to_ascii_uppercase();
    if VERBS.contains(&verb.as_str()) {
        Ok(verb)
    } else {
        Err(INVALID_VERB)
    }
}

/// An action as stored (upper-cased), or [`INVALID_ACTION`] for one the gate would ignore.
pub fn stored_action(input: &str) -> Result<String, &'static str> {
    let action = input.trim().to_ascii_uppercase();
    if ACTIONS.contains(&action.as_str()) {
        Ok(action)
    } else {
        Err(INVALID_ACTION)
    }
}

/// Longest role, path and topic the table holds: longer input is refused with
/// `<field>.too_long` rather than failing in the database.
pub const MAX_ROLE: usize = 64;
pub const MAX_PATH: usize = 255;
pub const MAX_TOPIC: usize = 64;

/// `<field>.too_long` for each of role, path and topic that does not fit its column.
pub fn oversized(role: &str, path: &str, topic: Option<&str>) -> Vec<&'static str> {
    let mut codes = Vec::new();
    if role.chars().count() > MAX_ROLE {
        codes.push("role.too_long");
    }
    if path.chars().count() > MAX_PATH {
        codes.push("path.too_long");
    }
    if topic.is_some_and(|t| t.chars().count() > MAX_TOPIC) {
        codes.push("topic.too_long");
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn row(id: i64, role: &str, verb: &str, path: &str, action: &str) -> PermissionRow {
        PermissionRow {
            id,
            action: action.into(),
            role: role.into(),
            verb: verb.into(),
            path: path.into(),
            topic: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn allow() -> Verdict {
        Verdict::Allow { audit: None }
    }

    #[test]
    fn accept_needs_matching_role_verb_and_prefix() {
        let p = Permissions::compile(&[row(1, "member", "GET", "api/v2/peatio/account", "ACCEPT")]);
        assert_eq!(
            p.check("member", "GET", "api/v2/peatio/account/balances"),
            allow()
        );
        assert_eq!(
            p.check("member", "POST", "api/v2/peatio/account/balances"),
            Verdict::Deny
        );
        assert_eq!(
            p.check("admin", "GET", "api/v2/peatio/account/balances"),
            Verdict::Deny
        );
        assert_eq!(
            p.check("member", "GET", "api/v2/peatio/market"),
            Verdict::Deny
        );
        // Raw string prefix: no segment boundary (Barong).
        assert_eq!(p.check("member", "GET", "api/v2/peatio/accountX"), allow());
    }

    #[test]
    fn all_matches_every_verb_but_head_needs_its_own_row() {
        let p = Permissions::compile(&[row(1, "member", "ALL", "api/v2", "ACCEPT")]);
        for verb in ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"] {
            assert_eq!(p.check("member", verb, "api/v2/x"), allow(), "{verb}");
        }
        let p = Permissions::compile(&[row(1, "member", "GET", "api/v2", "ACCEPT")]);
        assert_eq!(p.check("member", "HEAD", "api/v2/x"), Verdict::Deny);
    }

    #[test]
    fn a_get_drop_also_drops_head() {
        let p = Permissions::compile(&[
            row(1, "member", "ALL", "api/v2", "ACCEPT"),
            row(2, "member", "GET", "api/v2/secret", "DROP"),
        ]);
        assert_eq!(p.check("member", "GET", "api/v2/secret"), Verdict::Deny);
        assert_eq!(p.check("member", "HEAD", "api/v2/secret"), Verdict::Deny);
        assert_eq!(p.check("member", "POST", "api/v2/secret"), allow());
        assert_eq!(p.check("member", "HEAD", "api/v2/public"), allow());
    }

    #[test]
    fn drop_beats_accept_whatever_the_specificity() {
        let p = Permissions::compile(&[
            row(
                1,
                "admin",
                "ALL",
                "api/v2/barong/admin/permissions",
                "ACCEPT",
            ),
            row(2, "admin", "ALL", "api/v2", "DROP"),
        ]);
        assert_eq!(
            p.check("admin", "GET", "api/v2/barong/admin/permissions"),
            Verdict::Deny
        );
        let (_, matched) = p.evaluate("admin", "GET", "api/v2/barong/admin/permissions");
        assert_eq!(matched.drop, vec![2]);
        assert_eq!(matched.accept, vec![1]);
    }

    #[test]
    fn audit_alone_grants_nothing_and_reports_its_topic() {
        let mut audit = row(2, "admin", "POST", "api/v2/", "AUDIT");
        audit.topic = Some("markets".into());
        let p = Permissions::compile(&[audit.clone()]);
        assert_eq!(p.check("admin", "POST", "api/v2/x"), Verdict::Deny);
        let p = Permissions::compile(&[row(1, "admin", "ALL", "api/v2", "ACCEPT"), audit]);
        assert_eq!(
            p.check("admin", "POST", "api/v2/x"),
            Verdict::Allow {
                audit: Some(Some("markets".into()))
            }
        );
        assert_eq!(p.check("admin", "GET", "api/v2/x"), allow());
    }

    #[test]
    fn leading_slash_rows_never_match_and_unknown_actions_are_inert() {
        let p = Permissions::compile(&[
            row(1, "member", "GET", "/api/v2/resource", "ACCEPT"),
            row(2, "member", "GET", "api/v2/x", "ALL"),
        ]);
        assert_eq!(
            p.check("member", "GET", "api/v2/resource/users/me"),
            Verdict::Deny
        );
        assert_eq!(p.check("member", "GET", "api/v2/x"), Verdict::Deny);
        assert!(p.role_exists("member"));
    }

    #[test]
    fn written_verbs_and_actions_are_upper_cased_or_refused() {
        assert_eq!(stored_verb("get").as_deref(), Ok("GET"));
        assert_eq!(stored_verb(" All ").as_deref(), Ok("ALL"));
        assert_eq!(stored_verb("options"), Err(INVALID_VERB));
        assert_eq!(stored_action("drop").as_deref(), Ok("DROP"));
        assert_eq!(stored_action("all"), Err(INVALID_ACTION));
        assert!(oversized("member", "api/v2", Some("x")).is_empty());
        assert_eq!(
            oversized(&"r".repeat(65), &"p".repeat(256), Some(&"t".repeat(65))),
            ["role.too_long", "path.too_long", "topic.too_long"]
        );
    }
}
