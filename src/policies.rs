//! The default rule set as files (`policies/*.toml`): reading, validating, applying to the
//! database (rows that already exist are left alone, as Barong's seeding does), the diff of
//! the files against the database that `portcullis policies apply [--dry-run]` prints, and the
//! linter behind `portcullis policies check` (decisions.md #2).
//!
//! Applying only ever adds: the database is what the gate runs on, and staff edit it through
//! the admin API, so a row the files lack (or hold differently) is reported, never undone.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::domain::policy::{PolicyRows, RuleKind};
use crate::gate::permissions::{ACTIONS, VERBS};
use crate::gate::restrictions::{self, CATEGORIES, SCOPES};
use crate::store::permissions::{NewPermission, PermissionRow};
use crate::store::restrictions::NewRestriction;
use crate::store::{self, Store};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionsFile {
    permissions: Vec<PermissionEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionEntry {
    role: String,
    verb: String,
    path: String,
    action: String,
    #[serde(default)]
    topic: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    pass: Vec<String>,
    #[serde(default)]
    block: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestrictionsFile {
    restrictions: Vec<RestrictionEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestrictionEntry {
    category: String,
    scope: String,
    value: String,
    #[serde(default)]
    code: Option<i32>,
    #[serde(default = "enabled")]
    state: String,
}

fn enabled() -> String {
    "enabled".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelsFile {
    levels: Vec<LevelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelEntry {
    id: i32,
    key: String,
    value: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AbilitiesFile {
    abilities: Vec<AbilityEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AbilityEntry {
    role: String,
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    manage: Vec<String>,
}

/// The files of a policy directory, parsed and validated, `{auth}` expanded.
#[derive(Debug)]
pub struct PolicySet {
    permissions: Vec<PermissionEntry>,
    rules: RulesFile,
    restrictions: Vec<RestrictionEntry>,
    levels: Vec<LevelEntry>,
    abilities: Vec<AbilityEntry>,
}

/// How many rows an `apply` added.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub permissions: usize,
    pub rules: usize,
    pub restrictions: usize,
    pub levels: usize,
    pub abilities: usize,
}

fn read<T: for<'de> Deserialize<'de>>(dir: &Path, name: &str) -> anyhow::Result<Option<T>> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

impl PolicySet {
    /// Reads `dir`; `public_prefix` (e.g. `/api/v2/auth`) replaces `{auth}` in paths.
    pub fn read(dir: &Path, public_prefix: &str) -> anyhow::Result<PolicySet> {
        if !dir.is_dir() {
            anyhow::bail!("policies directory {} does not exist", dir.display());
        }
        let auth = public_prefix.trim_start_matches('/');
        let expand = |path: &str| path.replace("{auth}", auth);
        let mut permissions = read::<PermissionsFile>(dir, "permissions.toml")?
            .map(|f| f.permissions)
            .unwrap_or_default();
        for (i, p) in permissions.iter_mut().enumerate() {
            p.path = expand(&p.path);
            p.verb = p.verb.to_ascii_uppercase();
            p.action = p.action.to_ascii_uppercase();
            if !VERBS.contains(&p.verb.as_str()) {
                anyhow::bail!(
                    "permissions.toml entry {i}: verb {:?} is not one of {VERBS:?}",
                    p.verb
                );
            }
            if !ACTIONS.contains(&p.action.as_str()) {
                anyhow::bail!(
                    "permissions.toml entry {i}: action {:?} is not one of {ACTIONS:?}",
                    p.action
                );
            }
            if p.role.trim().is_empty() || p.path.is_empty() {
                anyhow::bail!("permissions.toml entry {i}: role and path must not be empty");
            }
        }
        let mut rules = read::<RulesFile>(dir, "authz_rules.toml")?.unwrap_or(RulesFile {
            pass: vec![],
            block: vec![],
        });
        rules.pass = rules.pass.iter().map(|p| expand(p)).collect();
        rules.block = rules.block.iter().map(|p| expand(p)).collect();
        let restrictions = read::<RestrictionsFile>(dir, "restrictions.toml")?
            .map(|f| f.restrictions)
            .unwrap_or_default();
        for (i, r) in restrictions.iter().enumerate() {
            if !CATEGORIES.contains(&r.category.as_str()) {
                anyhow::bail!(
                    "restrictions.toml entry {i}: category {:?} is not one of {CATEGORIES:?}",
                    r.category
                );
            }
            if !SCOPES.contains(&r.scope.as_str()) {
                anyhow::bail!(
                    "restrictions.toml entry {i}: scope {:?} is not one of {SCOPES:?}",
                    r.scope
                );
            }
            if !["enabled", "disabled"].contains(&r.state.as_str()) {
                anyhow::bail!("restrictions.toml entry {i}: state must be enabled or disabled");
            }
            restrictions::validate_value(&r.scope, &r.value)
                .map_err(|code| anyhow::anyhow!("restrictions.toml entry {i}: {code}"))?;
            if let Some(code) = r.code
                && !(400..=599).contains(&code)
            {
                anyhow::bail!("restrictions.toml entry {i}: code must be 400-599");
            }
        }
        let levels = read::<LevelsFile>(dir, "levels.toml")?
            .map(|f| f.levels)
            .unwrap_or_default();
        let abilities = read::<AbilitiesFile>(dir, "abilities.toml")?
            .map(|f| f.abilities)
            .unwrap_or_default();
        Ok(PolicySet {
            permissions,
            rules,
            restrictions,
            levels,
            abilities,
        })
    }

    /// Inserts what is missing, in one transaction.
    pub async fn apply(&self, store: &Store) -> anyhow::Result<ApplyReport> {
        let mut client = store.client().await?;
        let tx = client.transaction().await?;
        let mut report = ApplyReport::default();
        for p in &self.permissions {
            let new = NewPermission {
                action: &p.action,
                role: &p.role,
                verb: &p.verb,
                path: &p.path,
                topic: p.topic.as_deref(),
            };
            report.permissions += store::permissions::insert_if_missing(&tx, &new).await? as usize;
        }
        for (kind, paths) in [("pass", &self.rules.pass), ("block", &self.rules.block)] {
            for path in paths {
                report.rules +=
                    store::authz_rules::insert_if_missing(&tx, kind, path).await? as usize;
            }
        }
        for r in &self.restrictions {
            let new = NewRestriction {
                category: &r.category,
                scope: &r.scope,
                value: r.value.trim(),
                code: restrictions::effective_code(&r.category, &r.scope, r.code) as i32,
                state: &r.state,
            };
            report.restrictions +=
                store::restrictions::insert_if_missing(&tx, &new).await? as usize;
        }
        for l in &self.levels {
            report.levels += store::levels::insert_if_missing(
                &tx,
                l.id,
                &l.key,
                &l.value,
                l.description.as_deref(),
            )
            .await? as usize;
        }
        for a in &self.abilities {
            for (action, subjects) in [("read", &a.read), ("manage", &a.manage)] {
                for subject in subjects {
                    report.abilities +=
                        store::admin_abilities::insert_if_missing(&tx, &a.role, action, subject)
                            .await? as usize;
                }
            }
        }
        tx.commit().await?;
        Ok(report)
    }
}

/// What the database holds of what the files describe.
#[derive(Debug, Default)]
pub struct Current {
    pub rows: PolicyRows,
    /// (id, key, value).
    pub levels: Vec<(i32, String, String)>,
    /// (role, action, subject).
    pub abilities: Vec<(String, String, String)>,
}

impl Current {
    pub async fn read(store: &Store) -> anyhow::Result<Current> {
        let rows = store::policy::rows(store).await?;
        let client = store.client().await?;
        Ok(Current {
            rows,
            levels: store::levels::all(&client).await?,
            abilities: store::admin_abilities::all(&client).await?,
        })
    }
}

/// The files against the database, row by row, each row described in one line
/// (`permission member GET api/v2/x ACCEPT`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// In the files, not in the database: what applying inserts.
    pub added: Vec<String>,
    /// In the database, not in the files.
    pub removed: Vec<String>,
    /// In both under the same key, with other values: `<row>: <field> <database> (files:
    /// <files>)`.
    pub changed: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// `+ row`, `- row` and `~ row: …` lines, in that order.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        lines.extend(self.added.iter().map(|row| format!("+ {row}")));
        lines.extend(self.removed.iter().map(|row| format!("- {row}")));
        lines.extend(self.changed.iter().map(|row| format!("~ {row}")));
        lines
    }

    /// Compares two keyed tables: keys only in `files` are added, only in `database` removed,
    /// and a value that differs is described by `describe(database, files)`.
    fn table<K: Ord, V: PartialEq>(
        &mut self,
        files: BTreeMap<K, V>,
        mut database: BTreeMap<K, V>,
        name: impl Fn(&K) -> String,
        describe: impl Fn(&V, &V) -> String,
    ) {
        for (key, wanted) in files {
            match database.remove(&key) {
                None => self.added.push(name(&key)),
                Some(held) if held != wanted => {
                    self.changed
                        .push(format!("{}: {}", name(&key), describe(&held, &wanted)))
                }
                Some(_) => {}
            }
        }
        self.removed.extend(database.keys().map(name));
    }
}

/// `field database (files: files)` for each field that differs.
fn differences(fields: &[(&str, String, String)]) -> String {
    fields
        .iter()
        .filter(|(_, held, wanted)| held != wanted)
        .map(|(field, held, wanted)| format!("{field} {held} (files: {wanted})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn or_none(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_string(), str::to_string)
}

impl PolicySet {
    /// How the database differs from these files. Rows are keyed as applying matches them:
    /// permissions by (role, verb, path, action), restrictions by (category, scope, value),
    /// rules by (kind, path), levels by id, abilities by (role, action, subject).
    pub fn diff(&self, current: &Current) -> Diff {
        let mut diff = Diff::default();
        type PermissionKey = (String, String, String, String);
        let key = |role: &str, verb: &str, path: &str, action: &str| -> PermissionKey {
            (role.into(), verb.into(), path.into(), action.into())
        };
        diff.table(
            self.permissions
                .iter()
                .map(|p| (key(&p.role, &p.verb, &p.path, &p.action), p.topic.clone()))
                .collect(),
            current
                .rows
                .permissions
                .iter()
                .map(|p| (key(&p.role, &p.verb, &p.path, &p.action), p.topic.clone()))
                .collect(),
            |(role, verb, path, action)| format!("permission {role} {verb} {path} {action}"),
            |held, wanted| {
                differences(&[(
                    "topic",
                    or_none(held.as_deref()),
                    or_none(wanted.as_deref()),
                )])
            },
        );
        diff.table(
            self.restrictions
                .iter()
                .map(|r| {
                    let code = restrictions::effective_code(&r.category, &r.scope, r.code);
                    (
                        (
                            r.category.clone(),
                            r.scope.clone(),
                            r.value.trim().to_string(),
                        ),
                        (i32::from(code), r.state.clone()),
                    )
                })
                .collect(),
            current
                .rows
                .restrictions
                .iter()
                .map(|r| {
                    let code = restrictions::effective_code(&r.category, &r.scope, r.code);
                    (
                        (r.category.clone(), r.scope.clone(), r.value.clone()),
                        (i32::from(code), r.state.clone()),
                    )
                })
                .collect(),
            |(category, scope, value)| format!("restriction {category} {scope} {value}"),
            |(held_code, held_state), (code, state)| {
                differences(&[
                    ("code", held_code.to_string(), code.to_string()),
                    ("state", held_state.clone(), state.clone()),
                ])
            },
        );
        let kind = |kind: RuleKind| match kind {
            RuleKind::Pass => "pass",
            RuleKind::Block => "block",
        };
        diff.table(
            [("pass", &self.rules.pass), ("block", &self.rules.block)]
                .into_iter()
                .flat_map(|(kind, paths)| paths.iter().map(move |p| ((kind, p.clone()), ())))
                .collect(),
            current
                .rows
                .rules
                .iter()
                .map(|r| ((kind(r.kind), r.path.clone()), ()))
                .collect(),
            |(kind, path)| format!("rule {kind} {path}"),
            |_, _| String::new(),
        );
        diff.table(
            self.levels
                .iter()
                .map(|l| (l.id, (l.key.clone(), l.value.clone())))
                .collect(),
            current
                .levels
                .iter()
                .map(|(id, key, value)| (*id, (key.clone(), value.clone())))
                .collect(),
            |id| format!("level {id}"),
            |(held_key, held_value), (key, value)| {
                differences(&[
                    ("key", held_key.clone(), key.clone()),
                    ("value", held_value.clone(), value.clone()),
                ])
            },
        );
        diff.table(
            self.abilities
                .iter()
                .flat_map(|a| {
                    let read = a.read.iter().map(|m| (a.role.clone(), "read", m.clone()));
                    let manage = a
                        .manage
                        .iter()
                        .map(|m| (a.role.clone(), "manage", m.clone()));
                    read.chain(manage)
                        .map(|(role, action, model)| ((role, action.to_string(), model), ()))
                })
                .collect(),
            current
                .abilities
                .iter()
                .map(|ability| (ability.clone(), ()))
                .collect(),
            |(role, action, model)| format!("ability {role} {action} {model}"),
            |_, _| String::new(),
        );
        diff
    }
}

/// Reads `dir` and how the database differs from it, without writing.
pub async fn diff(store: &Store, dir: &Path, public_prefix: &str) -> anyhow::Result<Diff> {
    let set = PolicySet::read(dir, public_prefix)?;
    Ok(set.diff(&Current::read(store).await?))
}

/// Reads `dir` and applies it.
pub async fn apply(store: &Store, dir: &Path, public_prefix: &str) -> anyhow::Result<ApplyReport> {
    PolicySet::read(dir, public_prefix)?.apply(store).await
}

/// A finding of the linter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub id: i64,
    pub message: String,
}

/// Rows that can never take effect: paths starting with `/` (rule paths never do), unknown
/// verbs or actions, and ACCEPT rows that a DROP of the same role always overrides.
pub fn lint(rows: &[PermissionRow]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for row in rows {
        let verb = row.verb.to_ascii_uppercase();
        let action = row.action.to_ascii_uppercase();
        if row.path.starts_with('/') {
            findings.push(Finding {
                id: row.id,
                message: format!("path {:?} starts with '/': it can never match", row.path),
            });
        }
        if !VERBS.contains(&verb.as_str()) {
            findings.push(Finding {
                id: row.id,
                message: format!(
                    "verb {:?} is not one of {VERBS:?}: the row never matches",
                    row.verb
                ),
            });
        }
        if !ACTIONS.contains(&action.as_str()) {
            findings.push(Finding {
                id: row.id,
                message: format!(
                    "action {:?} is not one of {ACTIONS:?}: the row is ignored",
                    row.action
                ),
            });
        }
        if action == "ACCEPT" {
            let shadow = rows.iter().find(|d| {
                d.role == row.role
                    && d.action.eq_ignore_ascii_case("DROP")
                    && (d.verb.eq_ignore_ascii_case("ALL") || d.verb.eq_ignore_ascii_case(&verb))
                    && row.path.starts_with(d.path.as_str())
            });
            if let Some(drop) = shadow {
                findings.push(Finding {
                    id: row.id,
                    message: format!(
                        "ACCEPT {} {:?} for {} is always overridden by DROP #{} ({} {:?})",
                        verb, row.path, row.role, drop.id, drop.verb, drop.path
                    ),
                });
            }
        }
    }
    findings
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

    #[test]
    fn default_policy_files_are_valid_and_expand_the_auth_prefix() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let set = PolicySet::read(&dir, "/api/v2/barong").unwrap();
        assert!(
            set.permissions
                .iter()
                .any(|p| p.role == "member" && p.path == "api/v2/barong/resource")
        );
        assert!(
            set.rules
                .pass
                .contains(&"api/v2/barong/identity".to_string())
        );
        assert!(set.permissions.iter().all(|p| !p.path.contains('{')));
        assert_eq!(set.restrictions.len(), 6);
        assert_eq!(set.levels.len(), 3);
        // The shipped rules have no dead rows, except ACCEPTs Barong itself shadows on purpose.
        let rows: Vec<PermissionRow> = set
            .permissions
            .iter()
            .enumerate()
            .map(|(i, p)| row(i as i64, &p.role, &p.verb, &p.path, &p.action))
            .collect();
        assert!(
            lint(&rows)
                .iter()
                .all(|f| !f.message.contains("can never match"))
        );
    }

    #[test]
    fn the_diff_names_added_removed_and_changed_rows() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let set = PolicySet::read(&dir, "/api/v2/auth").unwrap();
        let restriction = |id, category: &str, scope: &str, value: &str, code, state: &str| {
            crate::domain::policy::RestrictionRow {
                id,
                category: category.into(),
                scope: scope.into(),
                value: value.into(),
                code: Some(code),
                state: state.into(),
                created_at: OffsetDateTime::UNIX_EPOCH,
                updated_at: OffsetDateTime::UNIX_EPOCH,
            }
        };
        // The files' rows as the database would hold them after applying, but one permission
        // missing, one extra, one restriction switched on and one level renamed.
        let mut current = Current::default();
        current.rows.permissions = set
            .permissions
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, p)| PermissionRow {
                topic: p.topic.clone(),
                ..row(i as i64, &p.role, &p.verb, &p.path, &p.action)
            })
            .collect();
        current
            .rows
            .permissions
            .push(row(999, "member", "GET", "api/v2/extra", "ACCEPT"));
        current.rows.restrictions = set
            .restrictions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let code = restrictions::effective_code(&r.category, &r.scope, r.code);
                let state = if r.value == "UA" { "enabled" } else { &r.state };
                restriction(
                    i as i64,
                    &r.category,
                    &r.scope,
                    &r.value,
                    code.into(),
                    state,
                )
            })
            .collect();
        current.rows.rules = [
            (RuleKind::Pass, &set.rules.pass),
            (RuleKind::Block, &set.rules.block),
        ]
        .into_iter()
        .flat_map(|(kind, paths)| {
            paths
                .iter()
                .map(move |path| crate::domain::policy::AuthzRuleRow {
                    id: 0,
                    kind,
                    path: path.clone(),
                })
        })
        .collect();
        current.levels = set
            .levels
            .iter()
            .map(|l| {
                (
                    l.id,
                    l.key.clone(),
                    if l.id == 2 {
                        "confirmed".into()
                    } else {
                        l.value.clone()
                    },
                )
            })
            .collect();
        current.abilities = set
            .abilities
            .iter()
            .flat_map(|a| {
                let read = a
                    .read
                    .iter()
                    .map(|m| (a.role.clone(), "read".to_string(), m.clone()));
                read.chain(
                    a.manage
                        .iter()
                        .map(|m| (a.role.clone(), "manage".to_string(), m.clone())),
                )
            })
            .collect();
        let first = &set.permissions[0];
        let diff = set.diff(&current);
        assert_eq!(
            diff.added,
            [format!(
                "permission {} {} {} {}",
                first.role, first.verb, first.path, first.action
            )]
        );
        assert_eq!(diff.removed, ["permission member GET api/v2/extra ACCEPT"]);
        assert_eq!(
            diff.changed,
            [
                "restriction whitelist country UA: state enabled (files: disabled)",
                "level 2: value confirmed (files: verified)",
            ]
        );
        assert_eq!(diff.lines()[0].chars().next(), Some('+'));

        // What applying leaves: nothing to add.
        let mut applied = current;
        applied.rows.permissions.push(PermissionRow {
            topic: first.topic.clone(),
            ..row(0, &first.role, &first.verb, &first.path, &first.action)
        });
        assert!(set.diff(&applied).added.is_empty());
    }

    #[test]
    fn lint_reports_dead_and_shadowed_rows() {
        let rows = vec![
            row(1, "member", "GET", "/api/v2/resource", "ACCEPT"),
            row(2, "admin", "ALL", "api/v2/admin", "DROP"),
            row(3, "admin", "GET", "api/v2/admin/users", "ACCEPT"),
            row(4, "admin", "GET", "api/v2/other", "ACCEPT"),
            row(5, "admin", "GET", "api/v2/x", "ALL"),
        ];
        let findings = lint(&rows);
        let ids: Vec<i64> = findings.iter().map(|f| f.id).collect();
        assert_eq!(ids, vec![1, 3, 5]);
        assert!(findings[1].message.contains("DROP #2"));
    }
}
