//! The default rule set as files (`policies/*.toml`): reading, validating, applying to the
//! database (rows that already exist are left alone, as Barong's seeding does), the diff of
//! the files against the database that `portcullis policies apply [--dry-run]` prints, the
//! linter behind `portcullis policies check` (decisions.md #2), which reads the files entry by
//! entry so that every problem is reported, and `portcullis policies export`, which writes the
//! database's rules back as files that applying reproduces (to keep them in git).
//!
//! Applying only ever adds: the database is what the gate runs on, and staff edit it through
//! the admin API, so a row the files lack (or hold differently) is reported, never undone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::domain::abilities;
use crate::domain::policy::{PolicyRows, RestrictionRow, RuleKind};
use crate::gate::permissions::{ACTIONS, VERBS};
use crate::gate::restrictions::{self, CATEGORIES, Draft, SCOPES, STATES};
use crate::net::method;
use crate::store::permissions::{NewPermission, PermissionRow};
use crate::store::restrictions::NewRestriction;
use crate::store::{self, Store};

#[derive(Debug, Default, Deserialize)]
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    pass: Vec<String>,
    #[serde(default)]
    block: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
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

impl RestrictionEntry {
    /// The entry as the admin API's checks see it (the value trimmed, as it is stored).
    fn draft(&self) -> Draft<'_> {
        Draft {
            category: &self.category,
            scope: &self.scope,
            value: self.value.trim(),
            code: self.code,
            state: &self.state,
        }
    }
}

fn enabled() -> String {
    "enabled".into()
}

#[derive(Debug, Default, Deserialize)]
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

#[derive(Debug, Default, Deserialize)]
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
    parse(dir, name).map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(name).display()))
}

/// One file of `dir` parsed, `None` when it is absent, or why it cannot be read or parsed
/// (without the path: the linter names the file itself).
fn parse<T: for<'de> Deserialize<'de>>(dir: &Path, name: &str) -> Result<Option<T>, String> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| one_line(&e, &text))
}

/// A TOML error on one line (`line 2, column 11: invalid array; expected ']'`), so that
/// each finding stays one line.
fn one_line(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim().replace('\n', "; ");
    let Some(span) = error.span() else {
        return message;
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column}: {message}")
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
                    "permissions.toml: permission #{}: verb {:?} is not one of {VERBS:?}",
                    i + 1,
                    p.verb
                );
            }
            if !ACTIONS.contains(&p.action.as_str()) {
                anyhow::bail!(
                    "permissions.toml: permission #{}: action {:?} is not one of {ACTIONS:?}",
                    i + 1,
                    p.action
                );
            }
            if p.role.trim().is_empty() || p.path.is_empty() {
                anyhow::bail!(
                    "permissions.toml: permission #{}: role and path must not be empty",
                    i + 1
                );
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
        // The admin API's checks (`Draft`), as `policies check` reports them.
        for (i, r) in restrictions.iter().enumerate() {
            let draft = r.draft();
            if let Some(code) = draft.problems().first() {
                anyhow::bail!(
                    "restrictions.toml: restriction #{}: {} (`policies check` lists every problem)",
                    i + 1,
                    restriction_problem(code, &draft)
                );
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

    /// Inserts what is missing, in one transaction, one application at a time across nodes.
    pub async fn apply(&self, store: &Store) -> anyhow::Result<ApplyReport> {
        let mut client = store.client().await?;
        let tx = client.transaction().await?;
        store::policy::lock_for_apply(&tx).await?;
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

// ---------------------------------------------------------------------------------------------
// The linter (`portcullis policies check`)
// ---------------------------------------------------------------------------------------------

/// A problem the linter found: where it is, as an operator looks it up
/// (`permissions.toml: permission #12 (role member, GET api/v2/x)`), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub place: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// Collects findings for one place, so that each check reads as one line.
struct Findings<'a> {
    place: String,
    out: &'a mut Vec<Finding>,
}

impl Findings<'_> {
    fn push(&mut self, message: impl Into<String>) {
        self.out.push(Finding {
            place: self.place.clone(),
            message: message.into(),
        });
    }
}

fn at<'a>(out: &'a mut Vec<Finding>, place: String) -> Findings<'a> {
    Findings { place, out }
}

/// Lints the files of `dir` as `policies apply` would read them (`{auth}` expanded with
/// `public_prefix`), entry by entry: unlike [`PolicySet::read`], which stops at the first
/// invalid entry, every problem is reported. A file that does not parse is one finding.
pub fn check_files(dir: &Path, public_prefix: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        at(&mut out, dir.display().to_string()).push("is not a directory");
        return out;
    }
    let auth = public_prefix.trim_start_matches('/');
    let permissions = check_permissions_file(dir, auth, &mut out);
    check_rules_file(dir, auth, &mut out);
    check_restrictions_file(dir, &mut out);
    let _ = file::<LevelsFile>(dir, "levels.toml", &mut out);
    check_abilities_file(dir, permissions.as_deref(), &mut out);
    out
}

/// `permissions.toml` linted; its entries as rows (numbered from 1, `{auth}` expanded, verbs
/// and actions upper-cased as applying stores them) for the abilities' role check, or `None`
/// when it does not parse.
fn check_permissions_file(
    dir: &Path,
    auth: &str,
    out: &mut Vec<Finding>,
) -> Option<Vec<PermissionRow>> {
    let f = file::<PermissionsFile>(dir, "permissions.toml", out)?;
    let rows: Vec<PermissionRow> = f
        .permissions
        .iter()
        .enumerate()
        .map(|(i, p)| PermissionRow {
            id: i as i64 + 1,
            action: p.action.to_ascii_uppercase(),
            role: p.role.clone(),
            verb: p.verb.to_ascii_uppercase(),
            path: p.path.replace("{auth}", auth),
            topic: p.topic.clone(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        })
        .collect();
    for row in &rows {
        lint_file_only_permission("permissions.toml", row, out);
    }
    out.extend(lint_permissions("permissions.toml", &rows));
    Some(rows)
}

/// `authz_rules.toml` linted: each list numbered from 1.
fn check_rules_file(dir: &Path, auth: &str, out: &mut Vec<Finding>) {
    let Some(rules) = file::<RulesFile>(dir, "authz_rules.toml", out) else {
        return;
    };
    let numbered = |kind: &'static str, paths: &[String]| {
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    format!("{kind} #{}", i + 1),
                    kind,
                    p.replace("{auth}", auth),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut all = numbered("pass", &rules.pass);
    all.extend(numbered("block", &rules.block));
    lint_rules("authz_rules.toml", &all, out);
}

/// `restrictions.toml` linted, entry by entry.
fn check_restrictions_file(dir: &Path, out: &mut Vec<Finding>) {
    let Some(f) = file::<RestrictionsFile>(dir, "restrictions.toml", out) else {
        return;
    };
    for (i, r) in f.restrictions.iter().enumerate() {
        let place = format!("restrictions.toml: restriction #{}", i + 1);
        lint_restriction(place, &r.draft(), out);
    }
}

/// `abilities.toml` linted against the roles of `permissions` (the parsed permissions file;
/// `None` when it did not parse: every role would look unknown, so none is reported).
fn check_abilities_file(dir: &Path, permissions: Option<&[PermissionRow]>, out: &mut Vec<Finding>) {
    let Some(f) = file::<AbilitiesFile>(dir, "abilities.toml", out) else {
        return;
    };
    let roles = permissions.map(|rows| {
        rows.iter()
            .map(|r| r.role.as_str())
            .collect::<BTreeSet<_>>()
    });
    for (i, a) in f.abilities.iter().enumerate() {
        let rights: Vec<(&str, &str)> = a
            .read
            .iter()
            .map(|m| ("read", m.as_str()))
            .chain(a.manage.iter().map(|m| ("manage", m.as_str())))
            .collect();
        let place = format!("abilities.toml: ability #{} (role {})", i + 1, a.role);
        lint_abilities(
            place,
            &a.role,
            &rights,
            roles.as_ref(),
            "permissions.toml",
            out,
        );
    }
}

/// One file parsed for the linter: a file that does not parse becomes a finding (and `None`),
/// an absent one is simply empty as `policies apply` treats it.
fn file<T: for<'de> Deserialize<'de> + Default>(
    dir: &Path,
    name: &str,
    out: &mut Vec<Finding>,
) -> Option<T> {
    match parse::<T>(dir, name) {
        Ok(parsed) => Some(parsed.unwrap_or_default()),
        Err(e) => {
            at(out, name.to_string()).push(format!("does not parse: {e}"));
            None
        }
    }
}

/// Lints what the database holds with the same checks as the files: the gate runs on these
/// rows, and staff change them through the admin API (which accepts some rows the gate
/// ignores, as Barong's does).
pub fn check_database(current: &Current) -> Vec<Finding> {
    let mut out = lint_permissions("database", &current.rows.permissions);
    let kind = |kind: RuleKind| match kind {
        RuleKind::Pass => "pass",
        RuleKind::Block => "block",
    };
    let rules: Vec<(String, &'static str, String)> = current
        .rows
        .rules
        .iter()
        .map(|r| (format!("rule #{}", r.id), kind(r.kind), r.path.clone()))
        .collect();
    lint_rules("database", &rules, &mut out);
    for row in &current.rows.restrictions {
        lint_restriction(
            format!("database: restriction #{}", row.id),
            &Draft::of(row),
            &mut out,
        );
    }
    let roles: BTreeSet<&str> = current
        .rows
        .permissions
        .iter()
        .map(|p| p.role.as_str())
        .collect();
    let mut by_role: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for (role, action, model) in &current.abilities {
        by_role.entry(role).or_default().push((action, model));
    }
    for (role, rights) in by_role {
        let place = format!("database: abilities of role {role}");
        lint_abilities(
            place,
            role,
            &rights,
            Some(&roles),
            "the permissions table",
            &mut out,
        );
    }
    out
}

/// What `policies apply` would refuse in a permissions entry (it stops at the first).
fn lint_file_only_permission(origin: &str, row: &PermissionRow, out: &mut Vec<Finding>) {
    let mut f = at(out, permission_place(origin, row));
    if row.role.trim().is_empty() || row.path.is_empty() {
        f.push("role and path must not be empty (policies apply refuses the entry)");
    }
    for code in crate::gate::permissions::oversized(&row.role, &row.path, row.topic.as_deref()) {
        f.push(format!("{code}: the column cannot hold it"));
    }
}

fn permission_place(origin: &str, row: &PermissionRow) -> String {
    format!(
        "{origin}: permission #{} (role {}, {} {})",
        row.id, row.role, row.verb, row.path
    )
}

/// Permission rows that can never take effect, by the gate's own matching
/// (`gate::permissions`): a duplicate of an earlier row, a path with a leading `/` (the gate matches the path without it),
/// an unknown verb or action, an ACCEPT that a DROP of its role always overrides, and an
/// AUDIT that no ACCEPT of its role can ever let through (AUDIT only marks allowed requests).
pub fn lint_permissions(origin: &str, rows: &[PermissionRow]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let mut f = at(&mut out, permission_place(origin, row));
        let verb = row.verb.to_ascii_uppercase();
        let action = row.action.to_ascii_uppercase();
        if row.path.starts_with('/') {
            f.push(format!(
                "path {:?} starts with '/': it can never match",
                row.path
            ));
        }
        if !VERBS.contains(&verb.as_str()) {
            // OPTIONS or TRACE rows do match such requests, but nothing may write them.
            let effect = if method::KNOWN.contains(&verb.as_str()) {
                "policies apply and the admin API refuse it"
            } else {
                "the row never matches"
            };
            f.push(format!(
                "verb {:?} is not one of {VERBS:?}: {effect}",
                row.verb
            ));
        }
        if !ACTIONS.contains(&action.as_str()) {
            f.push(format!(
                "action {:?} is not one of {ACTIONS:?}: the row is ignored",
                row.action
            ));
        }
        if let Some(first) = rows[..index].iter().find(|r| same_rule(r, row)) {
            f.push(format!(
                "duplicate of permission #{}: it adds nothing",
                first.id
            ));
            // The first of them gets the other findings.
            continue;
        }
        if !can_match(row) {
            continue;
        }
        if action == "ACCEPT"
            && let Some(drop) = rows.iter().find(|d| shadows(d, row))
        {
            f.push(format!(
                "ACCEPT is always overridden by DROP #{} ({} {}): it never grants anything",
                drop.id, drop.verb, drop.path
            ));
        }
        if action == "AUDIT" && !rows.iter().any(|a| may_allow_audited(a, row)) {
            f.push(format!(
                "AUDIT never fires: no ACCEPT of role {} can allow {} {} (AUDIT only marks allowed requests)",
                row.role, verb, row.path
            ));
        }
    }
    out
}

/// Whether two rows say the same (verbs and actions compared as the gate does, upper-cased).
fn same_rule(a: &PermissionRow, b: &PermissionRow) -> bool {
    a.role == b.role
        && a.path == b.path
        && a.verb.eq_ignore_ascii_case(&b.verb)
        && a.action.eq_ignore_ascii_case(&b.action)
}

/// Whether the gate can ever match `row`: a verb some request can carry (`ALL` or a method
/// fronts let through), a known action and no leading `/`.
fn can_match(row: &PermissionRow) -> bool {
    let verb = row.verb.to_ascii_uppercase();
    !row.path.starts_with('/')
        && (VERBS.contains(&verb.as_str()) || method::KNOWN.contains(&verb.as_str()))
        && ACTIONS.contains(&row.action.to_ascii_uppercase().as_str())
}

/// Whether DROP row `drop` denies every request ACCEPT row `accept` could allow: same role,
/// its path a prefix of the ACCEPT's (so every path the ACCEPT matches, the DROP matches too),
/// and its verb covering the ACCEPT's, as the gate compares them: `ALL` covers every verb, a
/// GET DROP also drops HEAD, and an `ALL` ACCEPT (which matches any request verb, OPTIONS
/// included) is covered by an `ALL` DROP only.
fn shadows(drop: &PermissionRow, accept: &PermissionRow) -> bool {
    let drop_verb = drop.verb.to_ascii_uppercase();
    let accept_verb = accept.verb.to_ascii_uppercase();
    drop.role == accept.role
        && drop.action.eq_ignore_ascii_case("DROP")
        && can_match(drop)
        && accept.path.starts_with(drop.path.as_str())
        && (drop_verb == "ALL"
            || drop_verb == accept_verb
            || (drop_verb == "GET" && accept_verb == "HEAD"))
}

/// Whether ACCEPT row `accept` can allow some request AUDIT row `audit` matches: same role,
/// verbs that meet (equal, or either `ALL`) and paths that meet (one a prefix of the other,
/// so some request path matches both).
fn may_allow_audited(accept: &PermissionRow, audit: &PermissionRow) -> bool {
    let (a, b) = (
        accept.verb.to_ascii_uppercase(),
        audit.verb.to_ascii_uppercase(),
    );
    accept.role == audit.role
        && accept.action.eq_ignore_ascii_case("ACCEPT")
        && can_match(accept)
        && (a == b || a == "ALL" || b == "ALL")
        && (accept.path.starts_with(audit.path.as_str())
            || audit.path.starts_with(accept.path.as_str()))
}

/// Pass/block rules that never match (a leading `/`) or match everything (an empty path: a
/// pass rule then lets every request through without identity). `rules` are (name, kind,
/// path).
fn lint_rules(origin: &str, rules: &[(String, &'static str, String)], out: &mut Vec<Finding>) {
    for (name, kind, path) in rules {
        let mut f = at(out, format!("{origin}: {name} ({kind} {path:?})"));
        if path.starts_with('/') {
            f.push("path starts with '/': it can never match");
        }
        if path.is_empty() {
            f.push(format!(
                "an empty path matches every request: it would {kind} them all"
            ));
        }
    }
}

/// Why a restriction cannot be stored (the admin API's and the command line's checks,
/// [`Draft::problems`]), and geo values no client can ever have.
fn lint_restriction(place: String, draft: &Draft<'_>, out: &mut Vec<Finding>) {
    let place = format!(
        "{place} ({} {} {})",
        draft.category, draft.scope, draft.value
    );
    let mut f = at(out, place);
    for code in draft.problems() {
        f.push(restriction_problem(code, draft));
    }
    if let Some(problem) = geo_problem(draft.scope, draft.value) {
        f.push(problem);
    }
}

/// A restriction problem code, said in words with what would be accepted.
fn restriction_problem(code: &str, draft: &Draft<'_>) -> String {
    let what = match code {
        "admin.restriction.invalid_category" => {
            format!("category {:?} is not one of {CATEGORIES:?}", draft.category)
        }
        "admin.restriction.invalid_scope" => {
            format!("scope {:?} is not one of {SCOPES:?}", draft.scope)
        }
        "admin.restriction.invalid_state" => {
            format!("state {:?} is not one of {STATES:?}", draft.state)
        }
        "code.invalid" => format!(
            "code {:?} is not in 400-599",
            draft.code.unwrap_or_default()
        ),
        "value.invalid" if draft.scope == "ip" => format!("{:?} is not an IP address", draft.value),
        "value.invalid" if draft.scope == "ip_subnet" => {
            format!("{:?} is not a subnet in CIDR notation", draft.value)
        }
        "value.blank" => "the value is blank".to_string(),
        "value.too_long" => "the value is longer than 64 characters".to_string(),
        _ => "the value is invalid".to_string(),
    };
    format!("{what} ({code})")
}

/// Continent codes and English names as GeoIP gives them (lower-case).
const CONTINENTS: [&str; 14] = [
    "af",
    "an",
    "as",
    "eu",
    "na",
    "oc",
    "sa",
    "africa",
    "antarctica",
    "asia",
    "europe",
    "north america",
    "oceania",
    "south america",
];

/// A country or continent value no GeoIP lookup can produce. The admin API takes these
/// values as free text (as Barong does) and the gate compares them with GeoIP's ISO codes and
/// English names (decisions.md #8), so only what cannot be either is reported: an unknown
/// continent, a two- or three-letter value that is no ISO 3166 alpha-2 or alpha-3 code, and
/// a country name with characters no name has.
fn geo_problem(scope: &str, value: &str) -> Option<String> {
    let value = value.trim();
    let lower = value.to_lowercase();
    match scope {
        "continent" if !CONTINENTS.contains(&lower.as_str()) => Some(format!(
            "continent {value:?} is none of AF AN AS EU NA OC SA nor their English names: it never matches"
        )),
        "country"
            if value.len() == 2
                && crate::net::geoip::alpha3(&value.to_ascii_uppercase()).is_none() =>
        {
            Some(format!(
                "country {value:?} is not an ISO 3166 alpha-2 code: it never matches"
            ))
        }
        "country" if value.len() == 3 && value.is_ascii() && !is_alpha3(value) => Some(format!(
            "country {value:?} is not an ISO 3166 alpha-3 code: it never matches"
        )),
        "country"
            if !value
                .chars()
                .all(|c| c.is_alphabetic() || " '.,-()".contains(c)) =>
        {
            Some(format!(
                "country {value:?} is neither an ISO code nor a country name: it never matches"
            ))
        }
        _ => None,
    }
}

/// Whether `code` is an ISO 3166 alpha-3 code. `net::geoip` maps alpha-2 to alpha-3 only; the
/// reverse is found through it rather than from a second table.
fn is_alpha3(code: &str) -> bool {
    let code = code.to_ascii_uppercase();
    (b'A'..=b'Z').any(|a| {
        (b'A'..=b'Z').any(|b| {
            let alpha2 = [a, b];
            let alpha2 = std::str::from_utf8(&alpha2).unwrap_or_default();
            crate::net::geoip::alpha3(alpha2) == Some(code.as_str())
        })
    })
}

/// Abilities that grant nothing: a role no permission row names can never reach the admin
/// API (the permissions table guards its paths before abilities are asked), and a model or
/// action the admin API does not know is never checked.
fn lint_abilities(
    place: String,
    role: &str,
    rights: &[(&str, &str)],
    roles: Option<&BTreeSet<&str>>,
    permissions: &str,
    out: &mut Vec<Finding>,
) {
    let mut f = at(out, place);
    if roles.is_some_and(|roles| !roles.contains(role)) {
        f.push(format!(
            "role {role:?} has no row in {permissions}: it can never reach the admin API"
        ));
    }
    for (action, model) in rights {
        if !abilities::ACTIONS.contains(action) {
            f.push(format!(
                "action {action:?} is not one of {:?}: it grants nothing",
                abilities::ACTIONS
            ));
        }
        if !abilities::models::ALL.contains(model) {
            f.push(format!(
                "model {model:?} is not one of {:?}: it grants nothing",
                abilities::models::ALL
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Export (`portcullis policies export`)
// ---------------------------------------------------------------------------------------------

/// One file `export` writes: its name, its text and how many rows it holds.
#[derive(Debug)]
pub struct ExportedFile {
    pub name: &'static str,
    pub text: String,
    pub rows: usize,
}

/// What the database holds that the file format cannot say (ability actions other than read
/// and manage), reported instead of silently dropped.
pub type Skipped = Vec<String>;

/// A level as exported: (id, key, value, description).
pub type LevelRow = (i32, String, String, Option<String>);

/// Writes the database's rules to `dir` as the five policy files, in the format `policies
/// apply` reads, so that applying them to an empty database gives the same rows.
pub async fn export(
    store: &Store,
    dir: &Path,
    public_prefix: &str,
) -> anyhow::Result<(Vec<ExportedFile>, Skipped)> {
    let current = Current::read(store).await?;
    let levels = store::policy::described_levels(&store.client().await?).await?;
    let (files, skipped) = render(&current, &levels, public_prefix);
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    for file in &files {
        let path = dir.join(file.name);
        std::fs::write(&path, &file.text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok((files, skipped))
}

/// The five files' text for what the database holds. Pure, so the format is unit-tested.
pub fn render(
    current: &Current,
    levels: &[LevelRow],
    public_prefix: &str,
) -> (Vec<ExportedFile>, Skipped) {
    let auth = public_prefix.trim_start_matches('/');
    let (abilities, skipped) = render_abilities(&current.abilities);
    let files = vec![
        render_permissions(&current.rows.permissions, auth),
        render_restrictions(&current.rows.restrictions),
        render_rules(&current.rows.rules, auth),
        render_levels(levels),
        abilities,
    ];
    (files, skipped)
}

/// What every exported file starts with. No date: an unchanged database exports the same bytes.
const EXPORTED: &str = "# Exported from the database by `portcullis policies export`; applied by `portcullis\n# policies apply`. `{auth}` stands for api.public_prefix.\n";

/// A TOML string literal (quotes and escapes as TOML wants them).
fn quoted(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// `path` with the public prefix written as `{auth}`, so the files follow a change of
/// api.public_prefix as the shipped ones do. Only a whole segment is replaced.
fn with_placeholder(path: &str, auth: &str) -> String {
    match path.strip_prefix(auth) {
        Some(rest) if !auth.is_empty() && (rest.is_empty() || rest.starts_with('/')) => {
            format!("{{auth}}{rest}")
        }
        _ => path.to_string(),
    }
}

/// `permissions.toml`: grouped by role, roles in the order they first appear (by id), rows by
/// id inside a role. A database loaded from the shipped file exports it in the same order,
/// and a row staff add lands with its role: exports diff cleanly in git.
fn render_permissions(rows: &[PermissionRow], auth: &str) -> ExportedFile {
    let mut by_role: Vec<(&str, Vec<&PermissionRow>)> = Vec::new();
    let mut sorted: Vec<&PermissionRow> = rows.iter().collect();
    sorted.sort_by_key(|r| r.id);
    for row in sorted {
        match by_role.iter_mut().find(|(role, _)| *role == row.role) {
            Some((_, group)) => group.push(row),
            None => by_role.push((&row.role, vec![row])),
        }
    }
    let mut text = format!("{EXPORTED}\npermissions = [\n");
    for (role, group) in by_role {
        text.push_str(&format!("  # {role}\n"));
        for row in group {
            let topic = row
                .topic
                .as_deref()
                .map(|t| format!(", topic = {}", quoted(t)))
                .unwrap_or_default();
            text.push_str(&format!(
                "  {{ role = {}, verb = {}, path = {}, action = {}{topic} }},\n",
                quoted(&row.role),
                quoted(&row.verb.to_ascii_lowercase()),
                quoted(&with_placeholder(&row.path, auth)),
                quoted(&row.action.to_ascii_lowercase()),
            ));
        }
    }
    text.push_str("]\n");
    ExportedFile {
        name: "permissions.toml",
        text,
        rows: rows.len(),
    }
}

/// `restrictions.toml`, by id. A code equal to the scope's default is left out (as in the
/// shipped file): applying stores the default again.
fn render_restrictions(rows: &[RestrictionRow]) -> ExportedFile {
    let mut sorted: Vec<&RestrictionRow> = rows.iter().collect();
    sorted.sort_by_key(|r| r.id);
    let mut text = format!("{EXPORTED}\nrestrictions = [\n");
    for r in sorted {
        let code = r
            .code
            .filter(|&c| c != i32::from(restrictions::effective_code(&r.category, &r.scope, None)))
            .map(|c| format!(", code = {c}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "  {{ category = {}, scope = {}, value = {}{code}, state = {} }},\n",
            quoted(&r.category),
            quoted(&r.scope),
            quoted(&r.value),
            quoted(&r.state),
        ));
    }
    text.push_str("]\n");
    ExportedFile {
        name: "restrictions.toml",
        text,
        rows: rows.len(),
    }
}

/// `authz_rules.toml`: the pass and the block lists, each by id.
fn render_rules(rows: &[crate::domain::policy::AuthzRuleRow], auth: &str) -> ExportedFile {
    let mut sorted: Vec<_> = rows.iter().collect();
    sorted.sort_by_key(|r| r.id);
    let list = |kind: RuleKind| {
        let items: String = sorted
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| format!("  {},\n", quoted(&with_placeholder(&r.path, auth))))
            .collect();
        format!("[\n{items}]\n")
    };
    let text = format!(
        "{EXPORTED}\npass = {}\nblock = {}",
        list(RuleKind::Pass),
        list(RuleKind::Block)
    );
    ExportedFile {
        name: "authz_rules.toml",
        text,
        rows: rows.len(),
    }
}

/// `levels.toml`, by id, with the descriptions.
fn render_levels(levels: &[LevelRow]) -> ExportedFile {
    let mut text = format!("{EXPORTED}\nlevels = [\n");
    for (id, key, value, description) in levels {
        let description = description
            .as_deref()
            .map(|d| format!(", description = {}", quoted(d)))
            .unwrap_or_default();
        text.push_str(&format!(
            "  {{ id = {id}, key = {}, value = {}{description} }},\n",
            quoted(key),
            quoted(value)
        ));
    }
    text.push_str("]\n");
    ExportedFile {
        name: "levels.toml",
        text,
        rows: levels.len(),
    }
}

/// `abilities.toml`: one entry per role (roles and models in the order of the rows' ids), its
/// `read` and `manage` lists. Rows with another action cannot be written and are returned.
fn render_abilities(rows: &[(String, String, String)]) -> (ExportedFile, Skipped) {
    let mut by_role: Vec<(&str, Vec<&str>, Vec<&str>)> = Vec::new();
    let mut skipped = Vec::new();
    let mut written = 0;
    for (role, action, model) in rows {
        let index = match by_role.iter().position(|(r, _, _)| r == role) {
            Some(index) => index,
            None => {
                by_role.push((role, vec![], vec![]));
                by_role.len() - 1
            }
        };
        let (_, read, manage) = &mut by_role[index];
        match action.as_str() {
            "read" => read.push(model),
            "manage" => manage.push(model),
            _ => {
                skipped.push(format!("ability {role} {action} {model}"));
                continue;
            }
        }
        written += 1;
    }
    let list = |name: &str, models: &[&str]| {
        if models.is_empty() {
            return String::new();
        }
        let models: Vec<String> = models.iter().map(|m| quoted(m)).collect();
        format!(", {name} = [{}]", models.join(", "))
    };
    let mut text = format!("{EXPORTED}\nabilities = [\n");
    for (role, read, manage) in &by_role {
        text.push_str(&format!(
            "  {{ role = {}{}{} }},\n",
            quoted(role),
            list("read", read),
            list("manage", manage)
        ));
    }
    text.push_str("]\n");
    let file = ExportedFile {
        name: "abilities.toml",
        text,
        rows: written,
    };
    (file, skipped)
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
        // The shipped files lint clean (`policies check` on them says `no findings`).
        assert_eq!(check_files(&dir, "/api/v2/barong"), []);
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

    /// The findings' places and messages, for compact assertions.
    fn lint(rows: &[PermissionRow]) -> Vec<String> {
        lint_permissions("t", rows)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn lint_reports_dead_and_shadowed_rows() {
        let rows = vec![
            row(1, "member", "GET", "/api/v2/resource", "ACCEPT"),
            row(2, "admin", "ALL", "api/v2/admin", "DROP"),
            row(3, "admin", "GET", "api/v2/admin/users", "ACCEPT"),
            row(4, "admin", "GET", "api/v2/other", "ACCEPT"),
            row(5, "admin", "GET", "api/v2/x", "ALL"),
            row(6, "admin", "OPTIONS", "api/v2/x", "ACCEPT"),
            row(7, "admin", "GET", "api/v2/other", "ACCEPT"),
        ];
        let findings = lint(&rows);
        assert_eq!(findings.len(), 5, "{findings:#?}");
        assert!(findings[0].starts_with("t: permission #1 (role member, GET /api/v2/resource): "));
        assert!(findings[0].contains("can never match"));
        assert!(findings[1].starts_with("t: permission #3 "));
        assert!(findings[1].contains("overridden by DROP #2 (ALL api/v2/admin)"));
        assert!(findings[2].starts_with("t: permission #5 ") && findings[2].contains("action"));
        assert!(findings[3].starts_with("t: permission #6 ") && findings[3].contains("verb"));
        assert!(findings[4].starts_with("t: permission #7 "));
        assert!(findings[4].contains("duplicate of permission #4"));
    }

    /// Shadowing follows the gate's matching: a DROP's path must be a raw prefix of the
    /// ACCEPT's, of the same role, with a verb that covers the ACCEPT's.
    #[test]
    fn a_drop_shadows_an_accept_only_when_it_denies_everything_the_accept_allows() {
        let shadowed = |drop: (&str, &str, &str), accept: (&str, &str, &str)| {
            let rows = [
                row(1, drop.0, drop.1, drop.2, "DROP"),
                row(2, accept.0, accept.1, accept.2, "ACCEPT"),
            ];
            let findings = lint(&rows);
            // Cross-check with the gate: a shadowed ACCEPT allows no request of its own.
            let gate = crate::gate::permissions::Permissions::compile(&rows);
            let probe = if accept.1 == "ALL" {
                "OPTIONS"
            } else {
                accept.1
            };
            let allowed = gate.check(accept.0, probe, &format!("{}/z", accept.2))
                != crate::gate::permissions::Verdict::Deny;
            let found = findings.iter().any(|f| f.contains("overridden by DROP #1"));
            assert_eq!(found, !allowed, "{drop:?} {accept:?} {findings:?}");
            found
        };
        let m = "member";
        // ALL covers every verb; the same verb covers itself; GET covers HEAD.
        assert!(shadowed((m, "ALL", "api/v2/a"), (m, "POST", "api/v2/a/b")));
        assert!(shadowed((m, "ALL", "api/v2/a"), (m, "ALL", "api/v2/a")));
        assert!(shadowed((m, "GET", "api/v2/a"), (m, "GET", "api/v2/a/b")));
        assert!(shadowed((m, "GET", "api/v2/a"), (m, "HEAD", "api/v2/a")));
        // A raw prefix, not a path segment: api/v2/a shadows api/v2/ab too.
        assert!(shadowed((m, "ALL", "api/v2/a"), (m, "GET", "api/v2/ab")));
        // Not shadowed: another role, a narrower DROP, another verb, HEAD does not cover GET,
        // a GET DROP leaves the other verbs of an ALL ACCEPT.
        assert!(!shadowed(
            ("admin", "ALL", "api/v2/a"),
            (m, "GET", "api/v2/a/b")
        ));
        assert!(!shadowed((m, "ALL", "api/v2/a/b"), (m, "GET", "api/v2/a")));
        assert!(!shadowed((m, "POST", "api/v2/a"), (m, "GET", "api/v2/a")));
        assert!(!shadowed((m, "HEAD", "api/v2/a"), (m, "GET", "api/v2/a")));
        assert!(!shadowed((m, "GET", "api/v2/a"), (m, "ALL", "api/v2/a")));
        // A DROP that can never match shadows nothing.
        assert!(!shadowed((m, "ALL", "/api/v2"), (m, "GET", "api/v2/a")));
    }

    #[test]
    fn an_audit_no_accept_can_allow_is_reported() {
        let m = "member";
        let audit = row(1, m, "POST", "api/v2/", "AUDIT");
        let findings = |accept: PermissionRow| lint(&[audit.clone(), accept]);
        // Paths meet either way round; verbs meet when equal or ALL.
        assert_eq!(
            findings(row(2, m, "ALL", "api/v2/peatio", "ACCEPT")),
            Vec::<String>::new()
        );
        assert_eq!(
            findings(row(2, m, "POST", "api", "ACCEPT")),
            Vec::<String>::new()
        );
        assert!(
            findings(row(2, m, "GET", "api/v2/peatio", "ACCEPT"))[0].contains("AUDIT never fires")
        );
        assert!(
            findings(row(2, "admin", "ALL", "api/v2", "ACCEPT"))[0].contains("AUDIT never fires")
        );
        assert!(findings(row(2, m, "ALL", "api/v3", "ACCEPT"))[0].contains("AUDIT never fires"));
    }

    #[test]
    fn geo_values_no_lookup_can_produce_are_reported() {
        for (scope, value) in [
            ("country", "UA"),
            ("country", "usa"),
            ("country", "United Kingdom"),
            ("country", "Côte d'Ivoire"),
            ("continent", "SA"),
            ("continent", "north america"),
            ("ip", "XX"),
        ] {
            assert_eq!(geo_problem(scope, value), None, "{scope} {value}");
        }
        for (scope, value) in [
            ("country", "XX"),
            ("country", "XYZ"),
            ("country", "12"),
            ("country", "Land 7"),
            ("continent", "Atlantis"),
        ] {
            assert!(geo_problem(scope, value).is_some(), "{scope} {value}");
        }
    }

    /// What export writes parses back as `policies apply` reads it, with the same rows.
    #[test]
    fn exported_files_read_back_as_the_same_rows() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let set = PolicySet::read(&dir, "/api/v2/auth").unwrap();
        let mut current = Current::default();
        current.rows.permissions = set
            .permissions
            .iter()
            .enumerate()
            .map(|(i, p)| PermissionRow {
                topic: p.topic.clone(),
                ..row(i as i64, &p.role, &p.verb, &p.path, &p.action)
            })
            .collect();
        current.rows.permissions.push(PermissionRow {
            topic: Some("a \"quoted\" topic".into()),
            ..row(999, "member", "PUT", "api/v2/auth/resource/x", "AUDIT")
        });
        current.abilities = vec![
            ("admin".into(), "read".into(), "User".into()),
            ("admin".into(), "fly".into(), "User".into()),
        ];
        let levels = vec![(1, "email".into(), "verified".into(), Some("Email".into()))];
        let (files, skipped) = render(&current, &levels, "/api/v2/auth");
        assert_eq!(skipped, ["ability admin fly User"]);
        let out = std::env::temp_dir().join(format!("pc-export-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        for file in &files {
            std::fs::write(out.join(file.name), &file.text).unwrap();
        }
        let permissions = &files[0].text;
        assert!(
            permissions.contains("path = \"{auth}/resource/x\""),
            "{permissions}"
        );
        assert!(permissions.contains("  # member\n"));
        let back = PolicySet::read(&out, "/api/v2/auth").unwrap();
        std::fs::remove_dir_all(&out).unwrap();
        let key = |p: &PermissionEntry| {
            (
                p.role.clone(),
                p.verb.clone(),
                p.path.clone(),
                p.action.clone(),
                p.topic.clone(),
            )
        };
        let mut expected: Vec<_> = set.permissions.iter().map(key).collect();
        expected.push((
            "member".into(),
            "PUT".into(),
            "api/v2/auth/resource/x".into(),
            "AUDIT".into(),
            Some("a \"quoted\" topic".into()),
        ));
        let mut got: Vec<_> = back.permissions.iter().map(key).collect();
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
        assert_eq!(back.abilities.len(), 1);
        assert_eq!(back.abilities[0].read, ["User"]);
        assert_eq!(back.levels[0].description.as_deref(), Some("Email"));
    }

    /// `apply` stops at the first bad entry, in the words `check` uses for it.
    #[test]
    fn reading_refuses_a_restriction_the_admin_api_would() {
        let dir = std::env::temp_dir().join(format!("pc-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("restrictions.toml"),
            r#"restrictions = [{ category = "blacklist", scope = "ip", value = "1.2.3" }]"#,
        )
        .unwrap();
        let err = PolicySet::read(&dir, "/api/v2/auth")
            .unwrap_err()
            .to_string();
        let found = check_files(&dir, "/api/v2/auth");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            err.starts_with("restrictions.toml: restriction #1: \"1.2.3\" is not an IP address"),
            "{err}"
        );
        assert_eq!(found.len(), 1);
        assert!(err.contains(&found[0].message), "{err} / {}", found[0]);
    }

    #[test]
    fn the_public_prefix_becomes_the_placeholder_on_whole_segments_only() {
        assert_eq!(
            with_placeholder("api/v2/auth/admin", "api/v2/auth"),
            "{auth}/admin"
        );
        assert_eq!(with_placeholder("api/v2/auth", "api/v2/auth"), "{auth}");
        assert_eq!(
            with_placeholder("api/v2/authx", "api/v2/auth"),
            "api/v2/authx"
        );
        assert_eq!(with_placeholder("api/v2/peatio", ""), "api/v2/peatio");
    }
}
