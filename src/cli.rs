//! The command line: `serve`, and the operator's tools (migrations, policies, users, API keys,
//! permissions, restrictions, pass/block rules, keys, the OpenAPI document).
//!
//! Every change an operator makes here goes through the same store functions as the admin
//! API, and every node learns of it through the database's change notices.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::app::{self, App};
use crate::config::Settings;
use crate::domain::user_state::UserState;
use crate::gate::permissions::{self as rules_of_permissions, ACTIONS, VERBS};
use crate::gate::restrictions::{CATEGORIES, Draft, SCOPES, STATES};
use crate::services::accounts::{self, Application, OperatorAccount};
use crate::services::api_keys;
use crate::store::permissions::NewPermission;
use crate::store::restrictions::NewRestriction;
use crate::store::{self, Store, StoreError};

#[derive(Parser, Debug)]
#[command(
    name = "portcullis",
    version,
    about = "Authentication and authorization gateway (Barong compatible)"
)]
pub struct Cli {
    /// Configuration file merged over the defaults (also PORTCULLIS_CONFIG).
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Development mode: a missing signing or encryption key is generated and kept under
    /// var/ instead of stopping the start. Never in production.
    #[arg(long, global = true)]
    pub dev: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway: create and migrate the database, load default policies, listen.
    Serve,
    /// Create the database if missing and apply pending migrations.
    Migrate,
    /// Default rule set: apply the files of policies/, lint them, export the database's.
    #[command(subcommand)]
    Policies(PoliciesCommand),
    /// Users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
    /// The permissions table.
    #[command(subcommand)]
    Permissions(PermissionsCommand),
    /// Restrictions.
    #[command(subcommand)]
    Restrictions(RestrictionsCommand),
    /// Pass and block rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// The signing key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI document.
    Openapi,
    /// Explain the gate's decision on a request of a user or API key, with the rows that
    /// decided (as `POST /admin/explain`).
    Explain(ExplainArgs),
}

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The request's method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The request's path as clients send it, e.g. /api/v2/peatio/account/balances.
    #[arg(long)]
    pub path: String,
    /// The user or service account asking.
    #[arg(long, conflicts_with = "kid", required_unless_present = "kid")]
    pub uid: Option<String>,
    /// The API key signing the request.
    #[arg(long)]
    pub kid: Option<String>,
    /// The client's address; without it, restrictions are not evaluated.
    #[arg(long)]
    pub ip: Option<std::net::IpAddr>,
    #[arg(long, default_value = "")]
    pub user_agent: String,
}

#[derive(Subcommand, Debug)]
pub enum PoliciesCommand {
    /// Insert the rows of the policy files that the database lacks, printing how the database
    /// differs from the files: `+` rows added, `-` and `~` rows the database holds otherwise
    /// (kept: staff may have made them through the admin API).
    Apply {
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print the differences only; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Lint the policy files and the database's rules: rows that never match, ACCEPTs a DROP
    /// always overrides, AUDITs that never fire, abilities of roles with no permission, values
    /// that do not parse. One finding per line; exits 1 when there are any.
    Check {
        /// The policy files (default: policies.dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Lint the files only, without connecting to the database (e.g. in CI).
        #[arg(long)]
        no_database: bool,
    },
    /// Write the database's rules as policy files (permissions, restrictions, authz_rules,
    /// levels, abilities) that `policies apply` reads back, to keep them in git.
    Export {
        /// Where to write (default: policies.dir); existing files are overwritten.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Create a user; prints its uid.
    Create(CreateUser),
}

#[derive(Args, Debug)]
pub struct CreateUser {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub password: String,
    #[arg(long, default_value = "member")]
    pub role: String,
    #[arg(long, default_value = "active")]
    pub state: UserState,
    /// Also creates the labels of levels 1..=level.
    #[arg(long, default_value_t = 0)]
    pub level: i32,
    #[arg(long)]
    pub username: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ApiKeysCommand {
    /// Create an HMAC key for a user or service account; prints kid and secret once.
    Create {
        #[arg(long)]
        uid: String,
        #[arg(long, default_value = "HS256")]
        algorithm: String,
        /// Comma-separated scopes.
        #[arg(long, default_value = "")]
        scope: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PermissionsCommand {
    List,
    Add {
        #[arg(long)]
        role: String,
        #[arg(long)]
        verb: String,
        #[arg(long)]
        path: String,
        #[arg(long)]
        action: String,
        #[arg(long)]
        topic: Option<String>,
    },
    Delete {
        #[arg(long)]
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum RestrictionsCommand {
    List,
    Add {
        #[arg(long)]
        category: String,
        #[arg(long)]
        scope: String,
        #[arg(long)]
        value: String,
        #[arg(long)]
        code: Option<i32>,
        #[arg(long, default_value = "enabled")]
        state: String,
    },
    /// Change a restriction's state (enabled or disabled).
    Update {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        state: String,
    },
    Delete {
        #[arg(long)]
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    List,
    Add {
        /// pass or block
        #[arg(long)]
        kind: String,
        #[arg(long)]
        path: String,
    },
    Delete {
        #[arg(long)]
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionsCommand {
    /// End every session of a user ("log out everywhere", e.g. for a compromised account).
    Revoke {
        #[arg(long)]
        uid: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// The public key as PEM (what upstreams verify with).
    Public {
        /// Print it as Peatio's JWT_PUBLIC_KEY wants it (URL-safe base64 of the PEM).
        #[arg(long)]
        peatio: bool,
    },
    /// The JWKS document.
    Jwks,
    /// Makes the signing and encryption keys that `--dev` uses if they are missing, and says
    /// where they are: run once before several development nodes share them (a volume), so
    /// that no two nodes make their own. Configured keys are only checked.
    Init,
}

/// Runs a command other than `serve`.
pub async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => unreachable!("serve is run by main"),
        Command::Migrate => {
            store::create_database_if_missing(&settings.database).await?;
            let applied = store::migrations::run(&Store::new(&settings.database)?).await?;
            println!("{}", json!({ "applied": applied }));
        }
        Command::Policies(cmd) => policies(cmd, &settings).await?,
        Command::Users(UsersCommand::Create(args)) => {
            let uid = create_user(&Store::new(&settings.database)?, &settings, &args).await?;
            println!("{uid}");
        }
        Command::ApiKeys(ApiKeysCommand::Create {
            uid,
            algorithm,
            scope,
        }) => {
            let store = Store::new(&settings.database)?;
            let secrets =
                crate::crypto::SecretBox::new(app::load_encryption_key(&settings)?.bytes());
            let key = api_keys::create(&store, &secrets, &uid, &algorithm, &scope).await?;
            println!(
                "{}",
                json!({ "kid": key.kid, "secret": key.secret, "algorithm": key.algorithm })
            );
        }
        Command::Permissions(cmd) => permissions(cmd, &settings).await?,
        Command::Restrictions(cmd) => restrictions_cmd(cmd, &settings).await?,
        Command::Rules(cmd) => rules(cmd, &settings).await?,
        Command::Sessions(SessionsCommand::Revoke { uid }) => {
            let kv = crate::kv::Kv::connect(&settings.redis).await?;
            let sessions = crate::authn::sessions::Sessions::new(kv, settings.session.clone());
            let ended = sessions.destroy_all_for(&uid, None).await?;
            println!("{}", json!({ "sessions_ended": ended }));
        }
        Command::Keys(KeysCommand::Init) => {
            app::load_encryption_key(&settings)?;
            app::load_issuer(&settings)?;
            println!(
                "{}",
                json!({
                    "signing_key": match &settings.jwt.private_key_path {
                        Some(path) => path.display().to_string(),
                        None => settings.jwt.dev_key_path.display().to_string(),
                    },
                    "encryption_key": match &settings.encryption.key {
                        Some(_) => "configured".to_string(),
                        None => settings.encryption.dev_key_path.display().to_string(),
                    },
                })
            );
        }
        Command::Keys(cmd) => {
            let issuer = app::load_issuer(&settings)?;
            match cmd {
                KeysCommand::Init => unreachable!("handled above"),
                KeysCommand::Public { peatio: false } => print!("{}", issuer.key().public_pem()),
                KeysCommand::Public { peatio: true } => {
                    use base64::Engine;
                    println!(
                        "{}",
                        base64::engine::general_purpose::URL_SAFE.encode(issuer.key().public_pem())
                    );
                }
                KeysCommand::Jwks => println!("{}", serde_json::to_string_pretty(&issuer.jwks())?),
            }
        }
        Command::Explain(args) => explain(args, settings).await?,
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::server::router::document(&settings))?
            );
        }
    }
    Ok(())
}

async fn policies(cmd: PoliciesCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = Store::new(&settings.database)?;
    match cmd {
        PoliciesCommand::Apply { dir, dry_run } => {
            let dir = dir.unwrap_or_else(|| settings.policies.dir.clone());
            let prefix = &settings.api.public_prefix;
            let diff = crate::policies::diff(&store, &dir, prefix).await?;
            for line in diff.lines() {
                println!("{line}");
            }
            if dry_run {
                println!(
                    "{}",
                    json!({
                        "dry_run": true, "added": diff.added.len(),
                        "removed": diff.removed.len(), "changed": diff.changed.len(),
                    })
                );
                return Ok(());
            }
            let report = crate::policies::apply(&store, &dir, prefix).await?;
            println!(
                "{}",
                json!({
                    "permissions": report.permissions, "rules": report.rules,
                    "restrictions": report.restrictions, "levels": report.levels,
                    "abilities": report.abilities,
                    // Rows the database holds otherwise, left as they are.
                    "kept": diff.removed.len() + diff.changed.len(),
                })
            );
        }
        PoliciesCommand::Check { dir, no_database } => {
            let dir = dir.unwrap_or_else(|| settings.policies.dir.clone());
            let mut findings = crate::policies::check_files(&dir, &settings.api.public_prefix);
            if !no_database {
                let current = crate::policies::Current::read(&store).await?;
                findings.extend(crate::policies::check_database(&current));
            }
            for finding in &findings {
                println!("{finding}");
            }
            if !findings.is_empty() {
                std::process::exit(1);
            }
            println!("no findings");
        }
        PoliciesCommand::Export { dir } => {
            let dir = dir.unwrap_or_else(|| settings.policies.dir.clone());
            let (files, skipped) =
                crate::policies::export(&store, &dir, &settings.api.public_prefix).await?;
            for file in &files {
                println!("{}: {} rows", dir.join(file.name).display(), file.rows);
            }
            for row in &skipped {
                eprintln!("not exported (the files have no place for it): {row}");
            }
        }
    }
    Ok(())
}

/// `portcullis explain`: the node's gate, with the policy as stored now, answers.
async fn explain(args: ExplainArgs, settings: Settings) -> anyhow::Result<()> {
    use crate::gate::explain::{Question, Who};
    let app = app::App::build(settings, None).await?;
    app::reload_policy(&app.store, &app.gate.policy).await?;
    let who = match (args.uid, args.kid) {
        (Some(uid), _) => Who::Uid(uid),
        (None, Some(kid)) => Who::Kid(kid),
        (None, None) => anyhow::bail!("one of --uid and --kid is needed"),
    };
    let question = Question {
        method: args.method.to_ascii_uppercase(),
        path: args.path,
        who,
        ip: args.ip,
        user_agent: args.user_agent,
    };
    let answer = crate::api::admin::explain::explained(&app.gate, &app.store, &question)
        .await
        .map_err(|err| anyhow::anyhow!("{:?}", err.codes))?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// Creates a user after the checks signup applies (`services::accounts`); returns the uid.
pub async fn create_user(
    store: &Store,
    settings: &Settings,
    args: &CreateUser,
) -> anyhow::Result<String> {
    let request = OperatorAccount {
        application: Application {
            email: &args.email,
            password: &args.password,
            username: args.username.as_deref(),
            data: None,
            role: &args.role,
        },
        state: args.state,
        level: args.level,
    };
    let user = accounts::create_with_settings(store, settings, &request).await?;
    Ok(user.uid)
}

async fn permissions(cmd: PermissionsCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = Store::new(&settings.database)?;
    let client = store.client().await?;
    match cmd {
        PermissionsCommand::List => {
            for p in store::permissions::all(&client).await? {
                println!(
                    "{}",
                    json!({"id": p.id, "role": p.role, "verb": p.verb, "path": p.path, "action": p.action, "topic": p.topic})
                );
            }
        }
        PermissionsCommand::Add {
            role,
            verb,
            path,
            action,
            topic,
        } => {
            let verb = rules_of_permissions::stored_verb(&verb)
                .map_err(|code| anyhow::anyhow!("{code}: one of {VERBS:?}"))?;
            let action = rules_of_permissions::stored_action(&action)
                .map_err(|code| anyhow::anyhow!("{code}: one of {ACTIONS:?}"))?;
            let oversized = rules_of_permissions::oversized(&role, &path, topic.as_deref());
            if !oversized.is_empty() {
                anyhow::bail!("{}", oversized.join(", "));
            }
            let row = store::permissions::insert(
                &client,
                &NewPermission {
                    action: &action,
                    role: &role,
                    verb: &verb,
                    path: &path,
                    topic: topic.as_deref(),
                },
            )
            .await?;
            println!("{}", json!({ "id": row.id }));
        }
        PermissionsCommand::Delete { id } => {
            if store::permissions::delete(&client, id).await?.is_none() {
                anyhow::bail!("admin.permission.doesnt_exist");
            }
        }
    }
    Ok(())
}

async fn restrictions_cmd(cmd: RestrictionsCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = Store::new(&settings.database)?;
    let client = store.client().await?;
    let enabled_blocklogin = match cmd {
        RestrictionsCommand::List => {
            for r in store::restrictions::all(&client).await? {
                println!(
                    "{}",
                    json!({"id": r.id, "category": r.category, "scope": r.scope, "value": r.value, "code": r.code, "state": r.state})
                );
            }
            false
        }
        RestrictionsCommand::Add {
            category,
            scope,
            value,
            code,
            state,
        } => {
            let draft = Draft {
                category: &category,
                scope: &scope,
                value: value.trim(),
                code,
                state: &state,
            };
            check_restriction(&draft)?;
            let row = store::restrictions::insert(&client, &NewRestriction::from(&draft))
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(_) => anyhow::anyhow!("value.taken"),
                    other => other.into(),
                })?;
            println!("{}", json!({ "id": row.id }));
            draft.enables_blocklogin(None)
        }
        RestrictionsCommand::Update { id, state } => {
            let current = store::restrictions::find(&client, id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("admin.restriction.doesnt_exist"))?;
            let draft = Draft {
                state: &state,
                ..Draft::of(&current)
            };
            check_restriction(&draft)?;
            store::restrictions::update(&client, id, &NewRestriction::from(&draft)).await?;
            draft.enables_blocklogin(Some(&current))
        }
        RestrictionsCommand::Delete { id } => {
            if store::restrictions::delete(&client, id).await?.is_none() {
                anyhow::bail!("admin.restriction.doesnt_exist");
            }
            false
        }
    };
    if enabled_blocklogin {
        // Barong ends every session when a blocklogin restriction is enabled (decisions.md #10).
        let app = App::build(settings.clone(), None).await?;
        let ended = app.sessions().destroy_everyone().await?;
        println!("{}", json!({ "sessions_ended": ended }));
    }
    Ok(())
}

/// The shared checks of a restriction (`gate::restrictions::Draft`), every refusal at once.
fn check_restriction(draft: &Draft<'_>) -> anyhow::Result<()> {
    let problems = draft.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} (categories {CATEGORIES:?}, scopes {SCOPES:?}, states {STATES:?}, codes 400-599)",
            problems.join(", ")
        )
    }
}

async fn rules(cmd: RulesCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = Store::new(&settings.database)?;
    let client = store.client().await?;
    match cmd {
        RulesCommand::List => {
            for r in store::authz_rules::all(&client).await? {
                println!("{}", json!({"id": r.id, "kind": r.kind, "path": r.path}));
            }
        }
        RulesCommand::Add { kind, path } => {
            if kind != "pass" && kind != "block" {
                anyhow::bail!("kind must be pass or block");
            }
            if path.starts_with('/') {
                anyhow::bail!("path must not start with '/': rules match the path without it");
            }
            store::authz_rules::insert_if_missing(&client, &kind, &path).await?;
        }
        RulesCommand::Delete { id } => {
            if !store::authz_rules::delete(&client, id).await? {
                anyhow::bail!("no rule #{id}");
            }
        }
    }
    Ok(())
}
