//! The permissions table, compiled per role.
//!
//! Barong's semantics (§4.2), kept on purpose (decisions.md #2): candidate rows are those of the
//! subject's role whose verb equals the request's (or is `ALL`) and whose path is a raw string
//! prefix of the request path. Deny when there is no candidate, when any candidate is DROP, or
//! when none is ACCEPT. AUDIT grants nothing but asks for an audit record. One addition: a
//! DROP row for GET applies to HEAD too (HEAD runs the GET action upstream).
//!
//! Compiled so that a decision costs the length of the path, not the size of the table (issue
//! 13): per role, one [`PrefixTrie`] over the row paths; each path carries, per verb, what its
//! rows say together (accept, drop, the first audit row) for [`Permissions::check`], and the
//! rows themselves for [`Permissions::evaluate`].

use std::collections::HashMap;

use super::prefix_trie::PrefixTrie;
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

/// A row as `evaluate` reports it; `order` is its place in the table, which orders the ids.
#[derive(Debug, Clone, Copy)]
struct Row {
    order: u32,
    id: i64,
    action: Action,
}

/// The rows of one role with one path and one verb, summed up.
#[derive(Debug, Clone)]
struct Entry {
    /// Index into [`Permissions::verbs`].
    verb: u8,
    accept: bool,
    drop: bool,
    /// The first AUDIT row's place in the table and its topic.
    audit: Option<(u32, Option<String>)>,
    rows: Vec<Row>,
}

/// What the request's verb selects among a role's entries.
#[derive(Debug, Clone, Copy)]
struct VerbMatch {
    /// The request's own verb, when some row has it.
    exact: Option<u8>,
    all: Option<u8>,
    /// GET, for a HEAD request: its DROP rows apply.
    get_drops: Option<u8>,
}

impl VerbMatch {
    /// `Some(drops_only)` when `entry` is a candidate.
    fn selects(self, entry: &Entry) -> Option<bool> {
        let verb = Some(entry.verb);
        if verb == self.exact || verb == self.all {
            Some(false)
        } else if verb == self.get_drops {
            Some(true)
        } else {
            None
        }
    }
}

/// The candidates' verdict, summed up entry by entry.
#[derive(Default)]
struct Tally<'a> {
    accept: bool,
    drop: bool,
    audit: Option<(u32, &'a Option<String>)>,
}

impl<'a> Tally<'a> {
    fn add(&mut self, entry: &'a Entry, drops_only: bool) {
        self.drop |= entry.drop;
        if drops_only {
            return;
        }
        self.accept |= entry.accept;
        if let Some((order, topic)) = &entry.audit
            && self.audit.is_none_or(|(first, _)| *order < first)
        {
            self.audit = Some((*order, topic));
        }
    }

    fn verdict(self) -> Verdict {
        if self.drop || !self.accept {
            return Verdict::Deny;
        }
        Verdict::Allow {
            audit: self.audit.map(|(_, topic)| topic.clone()),
        }
    }
}

#[derive(Debug, Default)]
pub struct Permissions {
    by_role: foldhash::HashMap<String, PrefixTrie<Entry>>,
    /// Every verb some row names (upper-cased), so that an entry holds a small index.
    verbs: Vec<String>,
}

impl Permissions {
    pub fn compile(rows: &[PermissionRow]) -> Permissions {
        let mut verbs: Vec<String> = Vec::new();
        // (role, path, verb) → entry, the entries of a role in the order first seen.
        let mut entries: HashMap<&str, Vec<(&str, Entry)>> = HashMap::new();
        let mut slots: HashMap<(&str, &str, u8), usize> = HashMap::new();
        for (order, row) in rows.iter().enumerate() {
            // Rows with an unknown action (the admin update endpoint can store one) never match.
            let Some(action) = Action::parse(&row.action) else {
                continue;
            };
            let verb = row.verb.to_ascii_uppercase();
            let verb = match verbs.iter().position(|v| *v == verb) {
                Some(index) => index,
                None => {
                    verbs.push(verb);
                    verbs.len() - 1
                }
            };
            // Verbs are few (the admin API stores seven); past 256 distinct ones the table is
            // not a policy, and the extra verbs' rows are left out rather than mismatched.
            let Ok(verb) = u8::try_from(verb) else {
                continue;
            };
            let role = entries.entry(row.role.as_str()).or_default();
            let slot = *slots
                .entry((row.role.as_str(), row.path.as_str(), verb))
                .or_insert_with(|| {
                    role.push((row.path.as_str(), Entry::new(verb)));
                    role.len() - 1
                });
            role[slot].1.add(order as u32, row, action);
        }
        let by_role = entries
            .into_iter()
            .map(|(role, entries)| (role.to_string(), PrefixTrie::new(entries)))
            .collect();
        Permissions { by_role, verbs }
    }

    pub fn role_exists(&self, role: &str) -> bool {
        self.by_role.contains_key(role)
    }

    fn verb_match(&self, verb: &str) -> VerbMatch {
        let find = |name: &str| {
            self.verbs
                .iter()
                .position(|v| v == name)
                .map(|index| index as u8)
        };
        VerbMatch {
            exact: find(verb),
            all: find("ALL"),
            // A DROP of GET also drops HEAD: upstreams (Rails among them) answer HEAD by
            // running the GET action, so a GET-only DROP must not be walked around with HEAD.
            get_drops: if verb == "HEAD" { find("GET") } else { None },
        }
    }

    /// Calls `visit` with every candidate entry and whether only its DROP rows count.
    fn candidates<'a>(
        &'a self,
        role: &str,
        verb: &str,
        path: &str,
        mut visit: impl FnMut(&'a Entry, bool),
    ) {
        let Some(trie) = self.by_role.get(role) else {
            return;
        };
        let verbs = self.verb_match(verb);
        trie.for_each_prefix(path.as_bytes(), |entries| {
            for entry in entries {
                if let Some(drops_only) = verbs.selects(entry) {
                    visit(entry, drops_only);
                }
            }
        });
    }

    /// `verb` upper-case as received (HEAD stays HEAD); `path` without a leading slash.
    pub fn check(&self, role: &str, verb: &str, path: &str) -> Verdict {
        let mut tally = Tally::default();
        self.candidates(role, verb, path, |entry, drops_only| {
            tally.add(entry, drops_only)
        });
        tally.verdict()
    }

    /// The verdict and the rows behind it, each list in table order.
    pub fn evaluate(&self, role: &str, verb: &str, path: &str) -> (Verdict, Matched) {
        let mut tally = Tally::default();
        let mut rows: Vec<Row> = Vec::new();
        self.candidates(role, verb, path, |entry, drops_only| {
            tally.add(entry, drops_only);
            let counted = entry
                .rows
                .iter()
                .filter(|row| !drops_only || row.action == Action::Drop);
            rows.extend(counted);
        });
        rows.sort_unstable_by_key(|row| row.order);
        let mut matched = Matched::default();
        for row in rows {
            match row.action {
                Action::Accept => matched.accept.push(row.id),
                Action::Drop => matched.drop.push(row.id),
                Action::Audit => matched.audit.push(row.id),
            }
        }
        (tally.verdict(), matched)
    }
}

impl Entry {
    fn new(verb: u8) -> Entry {
        Entry {
            verb,
            accept: false,
            drop: false,
            audit: None,
            rows: Vec::new(),
        }
    }

    fn add(&mut self, order: u32, row: &PermissionRow, action: Action) {
        match action {
            Action::Accept => self.accept = true,
            Action::Drop => self.drop = true,
            Action::Audit => {
                self.audit.get_or_insert_with(|| (order, row.topic.clone()));
            }
        }
        self.rows.push(Row {
            order,
            id: row.id,
            action,
        });
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
