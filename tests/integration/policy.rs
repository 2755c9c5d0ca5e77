//! Restrictions of every category and scope, pass/block rules, permission semantics, and hot
//! reload of all of them across running nodes.

use std::time::{Duration, Instant};

use crate::support::{Client, TestEnv};

const PUBLIC: &str = "/api/v2/peatio/public/markets";

async fn add_restriction(
    env: &TestEnv,
    category: &str,
    scope: &str,
    value: &str,
    code: Option<i32>,
) {
    env.restrict(category, scope, value, code).await;
}

/// GET of a public path from `ip` (via a trusted proxy's X-Forwarded-For).
async fn public_from(server: &crate::support::Server, ip: &str) -> crate::support::Response {
    Client::new()
        .get(server.decision(PUBLIC))
        .header("x-forwarded-for", ip)
        .send()
        .await
}

#[tokio::test]
async fn restrictions_of_every_scope_deny_with_their_code() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    add_restriction(&env, "blacklist", "ip", "203.0.113.7", Some(433)).await;
    add_restriction(&env, "blacklist", "ip_subnet", "198.51.100.0/24", None).await;
    add_restriction(&env, "blacklist", "country", "se", Some(435)).await;
    add_restriction(&env, "blacklist", "continent", "North America", Some(436)).await;
    add_restriction(&env, "blacklist", "country", "GBR", None).await;
    add_restriction(&env, "blacklist", "country", "Philippines", None).await;
    add_restriction(&env, "blacklist", "country", "JP", None).await;
    // Seven statements, seven notices: wait for the last one to be in the snapshot.
    TestEnv::eventually(2000, || async {
        public_from(&server, "2001:218::1").await.status == 423
    })
    .await;

    public_from(&server, "203.0.113.7")
        .await
        .assert_error(433, "authz.restrict.blacklist");
    public_from(&server, "198.51.100.99")
        .await
        .assert_error(403, "authz.restrict.blacklist");
    public_from(&server, "89.160.20.112")
        .await
        .assert_error(435, "authz.restrict.blacklist"); // SE
    public_from(&server, "216.160.83.56")
        .await
        .assert_error(436, "authz.restrict.blacklist"); // US
    public_from(&server, "50.114.0.1")
        .await
        .assert_error(436, "authz.restrict.blacklist"); // US
    public_from(&server, "81.2.69.142")
        .await
        .assert_error(423, "authz.restrict.blacklist"); // GB by alpha-3
    public_from(&server, "202.196.224.1")
        .await
        .assert_error(423, "authz.restrict.blacklist"); // PH by name
    public_from(&server, "2001:218::1")
        .await
        .assert_error(423, "authz.restrict.blacklist"); // JP, IPv6
    assert_eq!(public_from(&server, "67.43.156.1").await.status, 200); // BT: not listed
    assert_eq!(public_from(&server, "10.1.2.3").await.status, 200); // no geo record
}

#[tokio::test]
async fn categories_apply_in_order_and_blocklogin_only_blocks_login() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;

    add_restriction(&env, "maintenance", "all", "all", None).await;
    TestEnv::eventually(2000, || async {
        public_from(&server, "1.1.1.1").await.status == 471
    })
    .await;
    public_from(&server, "1.1.1.1")
        .await
        .assert_error(471, "authz.restrict.maintenance");
    // Whitelist beats maintenance.
    add_restriction(&env, "whitelist", "ip", "1.1.1.1", None).await;
    TestEnv::eventually(2000, || async {
        public_from(&server, "1.1.1.1").await.status == 200
    })
    .await;
    public_from(&server, "1.1.1.2")
        .await
        .assert_error(471, "authz.restrict.maintenance");
    // Maintenance beats blacklist.
    add_restriction(&env, "blacklist", "ip", "1.1.1.2", Some(499)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    public_from(&server, "1.1.1.2")
        .await
        .assert_error(471, "authz.restrict.maintenance");
    env.sql("DELETE FROM restrictions WHERE category = 'maintenance'")
        .await;
    TestEnv::eventually(2000, || async {
        public_from(&server, "1.1.1.2").await.status == 499
    })
    .await;

    // Restrictions guard our own API too: the whitelink path is exempt.
    let blocked = Client::new()
        .post(server.identity("sessions"))
        .header("x-forwarded-for", "1.1.1.2")
        .json(&serde_json::json!({}))
        .send()
        .await;
    blocked.assert_error(499, "authz.restrict.blacklist");
    let exempt = Client::new()
        .post(server.decision("/api/v2/auth/identity/users/access"))
        .header("x-forwarded-for", "1.1.1.2")
        .send()
        .await;
    assert_eq!(exempt.status, 200, "{}", exempt.text());

    // Blocklogin: logging in is refused, other requests pass.
    add_restriction(&env, "blocklogin", "ip_subnet", "5.5.0.0/16", None).await;
    let login = || async {
        Client::new()
            .post(server.identity("sessions"))
            .header("x-forwarded-for", "5.5.5.5")
            .json(&serde_json::json!({ "email": user.email, "password": user.password }))
            .send()
            .await
    };
    TestEnv::eventually(2000, || async { login().await.status == 403 }).await;
    login().await.assert_error(403, "authz.restrict.blocklogin");
    assert_eq!(public_from(&server, "5.5.5.5").await.status, 200);
    // Through the decision endpoint too, any verb.
    Client::new()
        .request("DELETE", server.decision("/api/v2/auth/identity/sessions"))
        .header("x-forwarded-for", "5.5.5.5")
        .send()
        .await
        .assert_error(403, "authz.restrict.blocklogin");
}

#[tokio::test]
async fn pass_rules_skip_identity_and_block_rules_refuse_everyone() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let admin = env.user("superadmin").await;
    let session = server.login(&admin).await;
    let client = Client::new();

    // A pass-listed path answers 200 without a token even with a valid session.
    let passed = client
        .get(server.decision(PUBLIC))
        .session(&session)
        .send()
        .await;
    assert_eq!(passed.status, 200);
    assert!(passed.header("authorization").is_none());
    // Raw prefix: api/v2/peatio/publicity is passed too (Barong).
    assert_eq!(
        client
            .get(server.decision("/api/v2/peatio/publicity"))
            .send()
            .await
            .status,
        200
    );

    // Blocked whoever asks, before identity.
    client
        .get(server.decision("/api/v2/peatio/management/deposits"))
        .session(&session)
        .send()
        .await
        .assert_error(401, "authz.permission_denied");
    client
        .get(server.decision("/api/v2/auth/management/users"))
        .send()
        .await
        .assert_error(401, "authz.permission_denied");
    // The decision endpoint judges the path Envoy will forward, so a path any normaliser
    // would rewrite (dot segments, doubled slashes) is refused rather than guessed at.
    for rewritten in [
        "/api/v2/peatio/public/../management/x",
        "/api/v2/peatio//management/x",
        "/api/v2/peatio/public/%2e%2e/account/balances",
    ] {
        client
            .get(server.decision(rewritten))
            .send()
            .await
            .assert_error(400, "authz.invalid_path");
    }
    // Paths upstreams read differently are refused outright.
    for ambiguous in [
        "/api/v2/peatio/account/x/..%2F..%2Fpublic",
        "/api/v2/peatio/public/..;/account/balances",
        "/api/v2/peatio/public\\..\\account",
        "/api/v2/peatio/account;/withdraws",
        "/api/v2/peatio/account/%3Bwithdraws",
    ] {
        client
            .get(server.decision(ambiguous))
            .session(&session)
            .send()
            .await
            .assert_error(400, "authz.invalid_path");
    }
}

#[tokio::test]
async fn permissions_drop_accept_audit_and_all() {
    let env = TestEnv::new().await;
    env.sql(
        "INSERT INTO permissions (role, verb, path, action, topic) VALUES
           ('qa', 'GET', 'api/v2/qa', 'ACCEPT', NULL),
           ('qa', 'ALL', 'api/v2/qa/open', 'ACCEPT', NULL),
           ('qa', 'ALL', 'api/v2/qa/open/closed', 'DROP', NULL),
           ('qa', 'POST', 'api/v2/qa/open/watched', 'AUDIT', 'watch'),
           ('qa', 'PUT', 'api/v2/qa/audit-only', 'AUDIT', NULL),
           ('qa', 'GET', '/api/v2/qa/slash', 'ACCEPT', NULL)",
    )
    .await;
    let server = env.start().await;
    let user = env.user("qa").await;
    let session = server.login(&user).await;
    let client = Client::new();
    let call = |method: &'static str, path: &'static str| {
        let request = client
            .request(method, server.decision(path))
            .session(&session)
            .header("x-csrf-token", &session.csrf);
        async move { request.send().await }
    };

    assert_eq!(call("GET", "/api/v2/qa/x").await.status, 200);
    call("POST", "/api/v2/qa/x")
        .await
        .assert_error(401, "authz.invalid_permission");
    // HEAD needs a HEAD or ALL row (no body on HEAD answers: the status says it).
    assert_eq!(call("HEAD", "/api/v2/qa/x").await.status, 401);
    assert_eq!(call("DELETE", "/api/v2/qa/open/x").await.status, 200);
    call("GET", "/api/v2/qa/open/closed/x")
        .await
        .assert_error(401, "authz.invalid_permission");
    call("PUT", "/api/v2/qa/audit-only")
        .await
        .assert_error(401, "authz.invalid_permission");
    // A leading slash row never matches: the path is covered by the GET api/v2/qa row only.
    assert_eq!(call("GET", "/api/v2/qa/slash").await.status, 200);
    call("POST", "/api/v2/other")
        .await
        .assert_error(401, "authz.invalid_permission");

    assert_eq!(
        call("POST", "/api/v2/qa/open/watched?uid=ID1").await.status,
        200
    );
    TestEnv::eventually(3000, || async {
        env.count(&format!(
            "SELECT count(*) FROM activities WHERE user_id = {} AND result = 'succeed' AND topic = 'watch'
             AND action = 'create' AND target_uid = 'ID1' AND data LIKE '%\"path\":\"api/v2/qa/open/watched\"%'",
            user.id
        ))
        .await
            == 1
    })
    .await;
}

#[tokio::test]
async fn a_policy_change_reaches_every_node_within_a_second() {
    let env = TestEnv::new().await;
    let (a, b) = (env.start().await, env.start().await);
    let user = env.user("member").await;
    let (sa, sb) = (a.login(&user).await, b.login(&user).await);
    let client = Client::new();
    let path = "/api/v2/newservice/orders";
    for (server, session) in [(&a, &sa), (&b, &sb)] {
        client
            .get(server.decision(path))
            .session(session)
            .send()
            .await
            .assert_error(401, "authz.invalid_permission");
    }
    // The operator's command line, as an operator would use it.
    let settings = env.settings("");
    let started = Instant::now();
    portcullis::cli::run(
        portcullis::cli::Command::Permissions(portcullis::cli::PermissionsCommand::Add {
            role: "member".into(),
            verb: "get".into(),
            path: "api/v2/newservice".into(),
            action: "accept".into(),
            topic: None,
        }),
        settings,
    )
    .await
    .unwrap();
    for (server, session) in [(&a, &sa), (&b, &sb)] {
        TestEnv::eventually(1000, || async {
            client
                .get(server.decision(path))
                .session(session)
                .send()
                .await
                .status
                == 200
        })
        .await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );

    // Restrictions too, and a blocklogin enabled by the command line ends every session.
    let settings = env.settings("");
    portcullis::cli::run(
        portcullis::cli::Command::Restrictions(portcullis::cli::RestrictionsCommand::Add {
            category: "blocklogin".into(),
            scope: "ip".into(),
            value: "7.7.7.7".into(),
            code: None,
            state: "enabled".into(),
        }),
        settings,
    )
    .await
    .unwrap();
    // Each node drops its cached copy of the ended sessions when the invalidation notice
    // arrives (Redis pub/sub): within a second, not before the command returns.
    let ended = Instant::now();
    for (server, session) in [(&a, &sa), (&b, &sb)] {
        TestEnv::eventually(1000, || async {
            let answer = client
                .get(server.decision(path))
                .session(session)
                .send()
                .await;
            answer.status == 401 && answer.errors() == ["authz.invalid_session"]
        })
        .await;
    }
    assert!(
        ended.elapsed() < Duration::from_secs(1),
        "took {:?}",
        ended.elapsed()
    );
}

/// Nodes that start together on an empty permissions table each load the default policies
/// (`app::prepare_database`); the applications take turns, so every row is there once.
#[tokio::test]
async fn policy_applications_at_the_same_time_insert_each_row_once() {
    let env = TestEnv::new().await;
    let tables = ["permissions", "authz_rules", "restrictions"];
    let counts = || async {
        let mut counts = Vec::new();
        for table in tables {
            counts.push(env.count(&format!("SELECT count(*) FROM {table}")).await);
        }
        counts
    };
    // What one application of the shipped files made (the environment's start).
    let once = counts().await;
    assert!(once[0] > 0, "{once:?}");
    env.sql("DELETE FROM permissions; DELETE FROM authz_rules; DELETE FROM restrictions")
        .await;
    let dir = crate::support::repo_path("policies");
    let apply = || portcullis::policies::apply(&env.store, &dir, "/api/v2/auth");
    let (first, second, third) = tokio::join!(apply(), apply(), apply());
    let inserted: Vec<usize> = [first, second, third]
        .into_iter()
        .map(|report| report.unwrap().permissions)
        .collect();
    assert_eq!(counts().await, once);
    // One of them inserted the permissions; the others found them there.
    assert_eq!(
        inserted.iter().sum::<usize>() as i64,
        once[0],
        "{inserted:?}"
    );
}
