//! The compiled matchers against the linear scans they replaced (issue 13): thousands of
//! random tables and requests from a seeded generator, each answered by the compiled
//! structure and by a copy of the old scan kept here as the oracle. Any difference is a
//! change of semantics.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::permissions::{Action, Matched, Permissions, Verdict};
use crate::domain::policy::PermissionRow;
use crate::net::fuzz::Gen;

/// The permissions table as it was before issue 13: every row of the role, in order.
mod linear_permissions {
    use super::*;

    struct Rule {
        id: i64,
        verb: String,
        path: String,
        action: Action,
        topic: Option<String>,
    }

    pub struct Linear {
        by_role: HashMap<String, Vec<Rule>>,
    }

    impl Linear {
        pub fn compile(rows: &[PermissionRow]) -> Linear {
            let mut by_role: HashMap<String, Vec<Rule>> = HashMap::new();
            for row in rows {
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
            Linear { by_role }
        }

        pub fn role_exists(&self, role: &str) -> bool {
            self.by_role.contains_key(role)
        }

        pub fn evaluate(&self, role: &str, verb: &str, path: &str) -> (Verdict, Matched) {
            let mut matched = Matched::default();
            let mut audit_topic: Option<Option<String>> = None;
            for rule in self.by_role.get(role).map(Vec::as_slice).unwrap_or(&[]) {
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
}

fn pick<'a>(g: &mut Gen, from: &[&'a str]) -> &'a str {
    from[g.below(from.len())]
}

/// `text` cut at a random place (on a character boundary): a prefix of it.
fn cut(g: &mut Gen, text: &str) -> String {
    let mut at = g.below(text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text[..at].to_string()
}

const ROLES: &[&str] = &["member", "admin", "trader", "Member"];
const ROW_VERBS: &[&str] = &[
    "GET", "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "ALL", "ALL", "all", "get", "head",
    "OPTIONS",
];
const REQUEST_VERBS: &[&str] = &[
    "GET", "HEAD", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "ALL", "get",
];
const ACTIONS: &[&str] = &[
    "ACCEPT", "ACCEPT", "DROP", "AUDIT", "accept", "drop", "Audit", "ALL", "bogus",
];
const PATH_PIECES: &[&str] = &["api", "/", "v2", "peatio", "a", "ab", "b", "x", "/", "é"];

fn permission_table(g: &mut Gen) -> Vec<PermissionRow> {
    // Paths grow from a few stems, cut and extended, so that prefixes overlap a lot.
    let stems: Vec<String> = (0..1 + g.below(4))
        .map(|_| g.string(PATH_PIECES, 8))
        .collect();
    let size = if g.below(10) == 0 { 200 } else { g.below(30) };
    (0..size)
        .map(|_| {
            let stem = &stems[g.below(stems.len())];
            let path = match g.below(6) {
                0 => String::new(),
                1 => format!("/{stem}"),
                2 => format!("{}{}", cut(g, stem), g.string(PATH_PIECES, 2)),
                _ => cut(g, stem),
            };
            PermissionRow {
                id: g.below(50) as i64,
                action: pick(g, ACTIONS).into(),
                role: pick(g, ROLES).into(),
                verb: pick(g, ROW_VERBS).into(),
                path,
                topic: match g.below(3) {
                    0 => None,
                    _ => Some(format!("topic{}", g.below(5))),
                },
                created_at: OffsetDateTime::UNIX_EPOCH,
                updated_at: OffsetDateTime::UNIX_EPOCH,
            }
        })
        .collect()
}

#[test]
fn compiled_permissions_decide_as_the_linear_scan() {
    let mut g = Gen::new(0x13_0001);
    let mut allowed = 0;
    let mut audited = 0;
    for _ in 0..3_000 {
        let rows = permission_table(&mut g);
        let compiled = Permissions::compile(&rows);
        let linear = linear_permissions::Linear::compile(&rows);
        for role in ROLES.iter().chain(&["nobody", ""]) {
            assert_eq!(compiled.role_exists(role), linear.role_exists(role));
        }
        for _ in 0..30 {
            let role = pick(&mut g, ROLES);
            let verb = pick(&mut g, REQUEST_VERBS);
            let base = rows
                .get(g.below(rows.len().max(1)))
                .map(|row| row.path.as_str());
            let path = match (base, g.below(4)) {
                (Some(base), 0) => cut(&mut g, base),
                (Some(base), 1 | 2) => format!("{base}{}", g.string(PATH_PIECES, 3)),
                _ => g.string(PATH_PIECES, 8),
            };
            let expected = linear.evaluate(role, verb, &path);
            assert_eq!(
                compiled.evaluate(role, verb, &path),
                expected,
                "{role} {verb} {path:?} over {rows:#?}"
            );
            assert_eq!(compiled.check(role, verb, &path), expected.0);
            if let Verdict::Allow { audit } = &expected.0 {
                allowed += 1;
                audited += usize::from(audit.is_some());
            }
        }
    }
    // The generator must reach the interesting outcomes, not only denials.
    assert!(allowed > 5_000 && audited > 1_000, "{allowed} {audited}");
}
