//! The `portcullis` binary as an operator runs it.

use std::process::Command;

use crate::support::{Client, TestEnv};

/// The binary with the test database, Redis namespace and policies, and no keys.
fn bare(env: &TestEnv) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.env("DATABASE_URL", &env.db_url)
        .env("PORTCULLIS_REDIS__URL", crate::support::redis_url())
        .env("PORTCULLIS_REDIS__KEY_PREFIX", &env.redis_prefix)
        .env(
            "PORTCULLIS_POLICIES__DIR",
            crate::support::repo_path("policies"),
        )
        .env(
            "PORTCULLIS_JWT__DEV_KEY_PATH",
            std::env::temp_dir().join(format!("pc-cli-{}.pem", crate::support::random_suffix())),
        )
        .env(
            "PORTCULLIS_ENCRYPTION__DEV_KEY_PATH",
            std::env::temp_dir().join(format!("pc-cli-{}.key", crate::support::random_suffix())),
        )
        .env_remove("JWT_PRIVATE_KEY_PATH")
        .env_remove("PORTCULLIS_ENCRYPTION__KEY")
        .env("RUST_LOG", "info");
    cmd
}

/// As an operator runs it: with the environment's encryption key.
fn portcullis(env: &TestEnv) -> Command {
    let mut cmd = bare(env);
    cmd.env("PORTCULLIS_ENCRYPTION__KEY", &env.encryption_key)
        .env("RUST_LOG", "warn");
    cmd
}

#[tokio::test]
async fn operators_create_admins_and_keys_from_the_command_line() {
    let env = TestEnv::new().await;
    let out = portcullis(&env)
        .args([
            "users",
            "create",
            "--email",
            "root@example.com",
            "--password",
            "Iequ4geiEWQw!",
            "--role",
            "superadmin",
            "--level",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uid = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(uid.starts_with("ID") && uid.len() == 12, "{uid}");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM users u JOIN labels l ON l.user_id = u.id
             WHERE u.uid = '{uid}' AND u.role = 'superadmin' AND u.state = 'active' AND u.level = 3 AND l.scope = 'private'"
        ))
        .await,
        3
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM event_outbox WHERE name = 'model.user.created'
             AND payload->'record'->>'uid' = '{uid}' AND payload->'record'->>'role' = 'superadmin'"
        ))
        .await,
        1
    );

    for (password, code) in [
        ("password", "password.requirements"),
        ("Password1", "password.weak"),
    ] {
        let out = portcullis(&env)
            .args([
                "users",
                "create",
                "--email",
                "weak@example.com",
                "--password",
                password,
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = portcullis(&env)
        .args([
            "users",
            "create",
            "--email",
            "x@example.com",
            "--password",
            "Iequ4geiEWQw!",
            "--role",
            "nosuchrole",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("role.doesnt_exist"));
    let out = portcullis(&env)
        .args([
            "users",
            "create",
            "--email",
            "ROOT@example.com",
            "--password",
            "Iequ4geiEWQw!",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("email.taken"));

    // A key for the admin; its secret is stored sealed, never in clear.
    env.sql(&format!("UPDATE users SET otp = true WHERE uid = '{uid}'"))
        .await;
    let out = portcullis(&env)
        .args(["api-keys", "create", "--uid", &uid])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (kid, secret) = (
        key["kid"].as_str().unwrap(),
        key["secret"].as_str().unwrap(),
    );
    assert_eq!((kid.len(), secret.len()), (16, 32));
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM api_keys WHERE kid = '{kid}' AND secret_encrypted LIKE 'v1:%'
             AND position('{secret}' in secret_encrypted) = 0"
        ))
        .await,
        1
    );
    let server = env.start().await;
    let key = crate::support::TestKey {
        kid: kid.into(),
        secret: secret.into(),
    };
    let ok = Client::new()
        .get(server.decision("/api/v2/peatio/account/balances"))
        .headers(&key.headers())
        .send()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
}

/// `users create` runs signup's checks (one validation for both), so an operator sees every
/// refused field at once, and a state no account may start in is refused before any of them.
#[tokio::test]
async fn users_create_reports_every_refused_check_like_signup() {
    let env = TestEnv::new().await;
    let create = |args: &[&str]| {
        let mut all = vec!["users", "create"];
        all.extend_from_slice(args);
        portcullis(&env).args(all).output().unwrap()
    };
    let out = create(&[
        "--email",
        "not-an-address",
        "--password",
        "password",
        "--username",
        "ab",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for code in [
        "email.invalid",
        "password.requirements",
        "username.too_short",
    ] {
        assert!(stderr.contains(code), "{code}: {stderr}");
    }

    let out = create(&[
        "--email",
        "ok@example.com",
        "--password",
        "Iequ4geiEWQw!",
        "--state",
        "disabled",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("state.invalid: one of pending, active, banned, deleted, locked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.count("SELECT count(*) FROM users").await, 0);
}

#[tokio::test]
async fn policy_lint_reports_rows_that_never_take_effect() {
    let env = TestEnv::new().await;
    let out = portcullis(&env)
        .args(["policies", "check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    env.sql("INSERT INTO permissions (role, verb, path, action) VALUES ('member', 'GET', '/api/v2/x', 'ACCEPT')").await;
    let out = portcullis(&env)
        .args(["policies", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("can never match"));
}

#[test]
fn a_bad_configuration_names_the_key_and_does_not_panic() {
    let dir = std::env::temp_dir().join(format!("pc-conf-{}", crate::support::random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[session]\nexpire_time = \"half an hour\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("session.expire_time"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["migrate"])
        .env("BARONG_SESSION_EXPIRE_TIME", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BARONG_SESSION_EXPIRE_TIME"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn an_operator_logs_a_user_out_everywhere() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let (first, second) = (server.login(&user).await, server.login(&user).await);
    let other = env.user("member").await;
    let bystander = server.login(&other).await;
    let out = portcullis(&env)
        .args(["sessions", "revoke", "--uid", &user.uid])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sessions_ended"], 2);
    for session in [&first, &second] {
        Client::new()
            .get(server.decision("/api/v2/peatio/account/balances"))
            .session(session)
            .send()
            .await
            .assert_error(401, "authz.invalid_session");
    }
    let still = Client::new()
        .get(server.decision("/api/v2/peatio/account/balances"))
        .session(&bystander)
        .send()
        .await;
    assert_eq!(still.status, 200);
}

#[tokio::test]
async fn production_without_keys_refuses_to_start_and_names_the_setting() {
    let env = TestEnv::new().await;
    let serve = || {
        let mut cmd = bare(&env);
        cmd.arg("serve")
            .env("PORTCULLIS_SERVER__LISTEN", "127.0.0.1:0")
            .env("PORTCULLIS_EVENTS__PUBLISH", "false");
        cmd
    };
    let out = serve().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "served without keys: {stderr}");
    assert!(stderr.contains("encryption.key"), "{stderr}");
    let out = serve()
        .env("PORTCULLIS_ENCRYPTION__KEY", &env.encryption_key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "served without a signing key: {stderr}"
    );
    assert!(stderr.contains("jwt.private_key_path"), "{stderr}");
    // Asking for development mode is what makes generated keys acceptable.
    let out = bare(&env).args(["keys", "public"]).output().unwrap();
    assert!(!out.status.success());
    let out = bare(&env)
        .args(["--dev", "keys", "public"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("BEGIN PUBLIC KEY"));
}

/// `keys init` makes the development keys once, for nodes that share them; a second run (the
/// next node, a restart) keeps them; without `--dev` it refuses like `serve`.
#[tokio::test]
async fn keys_init_makes_the_shared_development_keys_once() {
    let env = TestEnv::new().await;
    let dir = scratch_dir("keys-init");
    let (jwt, key) = (dir.join("jwt.pem"), dir.join("enc.key"));
    let init = || {
        let mut cmd = bare(&env);
        cmd.env("PORTCULLIS_JWT__DEV_KEY_PATH", &jwt)
            .env("PORTCULLIS_ENCRYPTION__DEV_KEY_PATH", &key)
            .args(["keys", "init"]);
        cmd
    };
    let refused = init().output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("encryption.key"));
    assert!(!jwt.exists() && !key.exists());

    let made = init().arg("--dev").output().unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let said: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(said["signing_key"], jwt.display().to_string());
    assert_eq!(said["encryption_key"], key.display().to_string());
    let first = (std::fs::read(&jwt).unwrap(), std::fs::read(&key).unwrap());
    assert!(String::from_utf8_lossy(&first.0).contains("PRIVATE KEY"));

    let again = init().arg("--dev").output().unwrap();
    assert!(again.status.success());
    assert_eq!(
        (std::fs::read(&jwt).unwrap(), std::fs::read(&key).unwrap()),
        first,
        "a second run replaced the keys"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn kubernetes_service_variables_do_not_stop_the_start() {
    let env = TestEnv::new().await;
    let out = bare(&env)
        .arg("migrate")
        .env("PORTCULLIS_PORT", "tcp://10.96.0.12:8080")
        .env("PORTCULLIS_PORT_8080_TCP", "tcp://10.96.0.12:8080")
        .env("PORTCULLIS_PORT_8080_TCP_ADDR", "10.96.0.12")
        .env("PORTCULLIS_PORT_8080_TCP_PORT", "8080")
        .env("PORTCULLIS_PORT_8080_TCP_PROTO", "tcp")
        .env("PORTCULLIS_SERVICE_HOST", "10.96.0.12")
        .env("PORTCULLIS_SERVICE_PORT", "8080")
        .env("PORTCULLIS_SESSION_EXPIRE_TIME", "900")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Only the misspelt setting is worth a word; the orchestrator's variables are not.
    assert!(
        stderr.contains("did you mean PORTCULLIS_SESSION__EXPIRE_TIME"),
        "{stderr}"
    );
    assert!(!stderr.contains("PORTCULLIS_SERVICE_HOST"), "{stderr}");
    assert!(!stderr.contains("PORTCULLIS_PORT"), "{stderr}");
    // Logs that go to a pipe (journald, Docker, a file) carry no colour codes.
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    assert!(
        stderr.contains("INFO") || stderr.contains("WARN"),
        "{stderr}"
    );
}

#[tokio::test]
async fn explain_on_the_command_line_names_the_deciding_rows() {
    let env = TestEnv::new().await;
    let member = env.user("member").await;
    let out = portcullis(&env)
        .args([
            "--dev",
            "explain",
            "--method",
            "delete",
            "--path",
            "/api/v2/auth/admin/users",
            "--uid",
            &member.uid,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["decision"], "deny");
    assert_eq!(answer["error"], "authz.invalid_permission");
    assert_eq!(answer["steps"][3]["role"], "member");
    assert_eq!(answer["steps"][4]["accept"], serde_json::json!([]));

    let missing = portcullis(&env)
        .args(["--dev", "explain", "--path", "/api/v2/x"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--uid"));
}

/// `policies apply --dry-run` prints how the database differs from the files and writes
/// nothing; `policies apply` adds what is missing and keeps what the database holds otherwise.
#[tokio::test]
async fn policies_apply_prints_the_diff_and_dry_run_writes_nothing() {
    let env = TestEnv::new().await;
    let apply = |dry_run: bool| {
        let mut args = vec!["policies", "apply"];
        if dry_run {
            args.push("--dry-run");
        }
        let out = portcullis(&env).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines: Vec<String> = stdout.lines().map(str::to_string).collect();
        let summary: serde_json::Value = serde_json::from_str(&lines.pop().unwrap()).unwrap();
        (lines, summary)
    };
    let (lines, summary) = apply(true);
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(
        summary,
        serde_json::json!({ "dry_run": true, "added": 0, "removed": 0, "changed": 0 })
    );

    env.sql(
        "DELETE FROM permissions WHERE role = 'member' AND path = 'api/v2/peatio/account';
         INSERT INTO permissions (role, verb, path, action) VALUES ('member', 'GET', 'api/v2/extra', 'ACCEPT');
         UPDATE restrictions SET state = 'enabled' WHERE category = 'whitelist' AND value = 'UA';",
    )
    .await;
    let permissions = env.count("SELECT count(*) FROM permissions").await;
    let expected = [
        "+ permission member ALL api/v2/peatio/account ACCEPT",
        "- permission member GET api/v2/extra ACCEPT",
        "~ restriction whitelist country UA: state enabled (files: disabled)",
    ];
    let (lines, summary) = apply(true);
    assert_eq!(lines, expected);
    assert_eq!(
        summary,
        serde_json::json!({ "dry_run": true, "added": 1, "removed": 1, "changed": 1 })
    );
    assert_eq!(
        env.count("SELECT count(*) FROM permissions").await,
        permissions
    );
    assert_eq!(
        env.count("SELECT count(*) FROM permissions WHERE role = 'member' AND path = 'api/v2/peatio/account'").await,
        0
    );

    // Applying adds the missing row and keeps what staff may have changed.
    let (lines, summary) = apply(false);
    assert_eq!(lines, expected);
    assert_eq!(summary["permissions"], 1);
    assert_eq!(summary["kept"], 2);
    assert_eq!(
        env.count("SELECT count(*) FROM permissions").await,
        permissions + 1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM restrictions WHERE value = 'UA' AND state = 'enabled'")
            .await,
        1
    );
    let (lines, summary) = apply(true);
    assert_eq!(lines, &expected[1..]);
    assert_eq!(summary["added"], 0);
}

/// A scratch directory for policy files, removed by the test that made it.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pc-{name}-{}", crate::support::random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `policies check` lints the files (by default policies.dir) and the database: the shipped
/// files have no findings; a directory with one of each bad entry gets one line per problem,
/// naming the file and the entry, and exit status 1; a file that does not parse is a finding.
#[tokio::test]
async fn policies_check_reports_every_bad_entry_of_the_files() {
    let env = TestEnv::new().await;
    let out = portcullis(&env)
        .args(["policies", "check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no findings\n");

    let dir = scratch_dir("check");
    let files = [
        (
            "permissions.toml",
            r#"permissions = [
  { role = "member", verb = "get", path = "/api/v2/x", action = "accept" },
  { role = "member", verb = "fetch", path = "api/v2/y", action = "accept" },
  { role = "member", verb = "get", path = "api/v2/z", action = "allow" },
  { role = "member", verb = "all", path = "{auth}/resource", action = "drop" },
  { role = "member", verb = "head", path = "{auth}/resource/users", action = "accept" },
  { role = "member", verb = "get", path = "api/v2/peatio", action = "drop" },
  { role = "member", verb = "get", path = "api/v2/peatio/account", action = "accept" },
  { role = "member", verb = "post", path = "api/v2/finex", action = "audit" },
  { role = "member", verb = "get", path = "api/v2/peatio/account", action = "accept" },
]
"#,
        ),
        (
            "restrictions.toml",
            r#"restrictions = [
  { category = "blacklist", scope = "ip", value = "1.2.3", state = "enabled" },
  { category = "blacklist", scope = "ip_subnet", value = "10.0.0.0/33", state = "enabled" },
  { category = "blacklist", scope = "country", value = "XX", state = "enabled" },
  { category = "blacklist", scope = "continent", value = "Atlantis", state = "enabled" },
  { category = "greylist", scope = "planet", value = "mars", state = "on", code = 200 },
  { category = "blacklist", scope = "country", value = "UA", state = "disabled" },
]
"#,
        ),
        (
            "abilities.toml",
            r#"abilities = [
  { role = "ghost", read = ["User"] },
  { role = "member", manage = ["Unicorn"] },
]
"#,
        ),
        ("authz_rules.toml", "pass = [\"/api/v2/x\", \"\"]\n"),
        (
            "levels.toml",
            "levels = [ { id = 1, key = \"email\", value = \"verified\", colour = \"red\" } ]\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let out = portcullis(&env)
        .args(["policies", "check", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let expected = [
        "permissions.toml: permission #1 (role member, GET /api/v2/x): path \"/api/v2/x\" starts with '/'",
        "permissions.toml: permission #2 (role member, FETCH api/v2/y): verb \"FETCH\" is not one of",
        "permissions.toml: permission #3 (role member, GET api/v2/z): action \"ALLOW\" is not one of",
        "permissions.toml: permission #5 (role member, HEAD api/v2/auth/resource/users): ACCEPT is always overridden by DROP #4 (ALL api/v2/auth/resource)",
        "permissions.toml: permission #7 (role member, GET api/v2/peatio/account): ACCEPT is always overridden by DROP #6 (GET api/v2/peatio)",
        "permissions.toml: permission #8 (role member, POST api/v2/finex): AUDIT never fires",
        "permissions.toml: permission #9 (role member, GET api/v2/peatio/account): duplicate of permission #7",
        "authz_rules.toml: pass #1 (pass \"/api/v2/x\"): path starts with '/'",
        "authz_rules.toml: pass #2 (pass \"\"): an empty path matches every request",
        "restrictions.toml: restriction #1 (blacklist ip 1.2.3): \"1.2.3\" is not an IP address (value.invalid)",
        "restrictions.toml: restriction #2 (blacklist ip_subnet 10.0.0.0/33): \"10.0.0.0/33\" is not a subnet in CIDR notation (value.invalid)",
        "restrictions.toml: restriction #3 (blacklist country XX): country \"XX\" is not an ISO 3166 alpha-2 code",
        "restrictions.toml: restriction #4 (blacklist continent Atlantis): continent \"Atlantis\" is none of",
        "restrictions.toml: restriction #5 (greylist planet mars): category \"greylist\" is not one of",
        "restrictions.toml: restriction #5 (greylist planet mars): scope \"planet\" is not one of",
        "restrictions.toml: restriction #5 (greylist planet mars): state \"on\" is not one of",
        "restrictions.toml: restriction #5 (greylist planet mars): code 200 is not in 400-599 (code.invalid)",
        "levels.toml: does not parse: line 1, column ",
        "abilities.toml: ability #1 (role ghost): role \"ghost\" has no row in permissions.toml",
        "abilities.toml: ability #2 (role member): model \"Unicorn\" is not one of",
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    for (line, want) in lines.iter().zip(expected) {
        assert!(line.starts_with(want), "{line}\n  wanted: {want}\n{stdout}");
    }
    assert_eq!(lines.len(), expected.len(), "{stdout}");
    assert!(lines[17].contains("unknown field `colour`"), "{stdout}");

    // Without the database (as CI lints a checkout), the files alone decide.
    let out = bare(&env)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .args(["policies", "check", "--no-database", "--dir"])
        .arg(crate::support::repo_path("policies"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every row of the tables `policies export` writes, without ids and timestamps, sorted.
async fn policy_tables(env: &TestEnv) -> Vec<(&'static str, Vec<String>)> {
    let client = env.store.client().await.unwrap();
    let mut tables = Vec::new();
    for (table, columns) in [
        ("permissions", "role, verb, path, action, topic"),
        ("restrictions", "category, scope, value, code, state"),
        ("authz_rules", "kind, path"),
        ("levels", "id, key, value, description"),
        ("admin_abilities", "role, action, subject"),
    ] {
        let rows = client
            .query(
                &format!("SELECT concat_ws('|', {columns}) FROM {table}"),
                &[],
            )
            .await
            .unwrap();
        let mut rows: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        rows.sort();
        tables.push((table, rows));
    }
    tables
}

/// `policies export` writes what the database holds, staff's changes included, as files that
/// `policies apply` reads back into an empty database as the same rows; the public prefix is
/// written as `{auth}`, and an unchanged database exports files with nothing to apply.
#[tokio::test]
async fn policies_export_round_trips_through_apply() {
    let env = TestEnv::new().await;
    // What staff changed through the admin API (as SQL here).
    env.sql(
        "INSERT INTO permissions (role, verb, path, action, topic)
           VALUES ('member', 'PUT', 'api/v2/auth/resource/extra', 'AUDIT', 'audit \"x\"');
         INSERT INTO restrictions (category, scope, value, code, state)
           VALUES ('blacklist', 'ip', '10.1.2.3', 450, 'enabled');
         INSERT INTO authz_rules (kind, path) VALUES ('block', 'api/v2/peatio/private');
         INSERT INTO levels (id, key, value, description) VALUES (4, 'kyc', 'approved', NULL);
         INSERT INTO admin_abilities (role, action, subject) VALUES ('support', 'read', 'Permission');",
    )
    .await;
    let dir = scratch_dir("export");
    let out = portcullis(&env)
        .args(["policies", "export", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let tables = policy_tables(&env).await;
    for ((table, rows), file) in tables.iter().zip([
        "permissions.toml",
        "restrictions.toml",
        "authz_rules.toml",
        "levels.toml",
        "abilities.toml",
    ]) {
        let line = format!("{}: {} rows", dir.join(file).display(), rows.len());
        assert!(stdout.contains(&line), "{table}: {line}\n{stdout}");
    }
    let permissions = std::fs::read_to_string(dir.join("permissions.toml")).unwrap();
    assert!(
        permissions.contains(
            r#"{ role = "member", verb = "put", path = "{auth}/resource/extra", action = "audit", topic = 'audit "x"' }"#
        ),
        "{permissions}"
    );
    assert!(!permissions.contains("api/v2/auth/"), "{permissions}");
    let restrictions = std::fs::read_to_string(dir.join("restrictions.toml")).unwrap();
    assert!(restrictions.contains(r#"value = "10.1.2.3", code = 450, state = "enabled""#));

    // The export, applied to this database, has nothing to add or change.
    let out = portcullis(&env)
        .args(["policies", "apply", "--dry-run", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(summary.lines().count(), 1, "{summary}");

    // Applied to an empty database, it gives the same rows.
    let fresh = TestEnv::new().await;
    fresh
        .sql("DELETE FROM permissions; DELETE FROM restrictions; DELETE FROM authz_rules; DELETE FROM levels; DELETE FROM admin_abilities;")
        .await;
    let out = portcullis(&fresh)
        .args(["policies", "apply", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(policy_tables(&fresh).await, tables);
}
