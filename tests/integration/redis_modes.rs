//! Every mode Redis runs in (one server, a Redis Cluster, a master watched by Sentinel)
//! carries what the nodes share. Three nodes see each change within a second in each mode,
//! and a Redis lost while load runs fails closed, with the wrong allows counted (there must be
//! none), and recovers within 5 s of its return without a restart of the gateway.

use std::time::{Duration, Instant};

use crate::support::load::{Tally, through_outage};
use crate::support::redis_server::{RedisCluster, RedisSentinel, RedisServer, cli};
use crate::support::{Client, Server, Session, TestEnv, TestKey};

const BALANCES: &str = "/api/v2/peatio/account/balances";
const PUBLIC: &str = "/api/v2/peatio/public/markets";
const NEW_SERVICE: &str = "/api/v2/newservice/orders";

/// Nodes trust cached sessions for a minute, so only the announcements can end them in time.
const NODE_SETTINGS: &str = "[session]\ncache_ttl_ms = 60000\n\
     [rate_limits]\nlogin_per_account = { max = 3, window = 60 }";

fn merged(mode: &str, extra: &str) -> String {
    format!("{mode}\n{extra}")
}

async fn with_key(server: &Server, key: &TestKey) -> crate::support::Response {
    Client::new()
        .get(server.decision(BALANCES))
        .headers(&key.headers())
        .send()
        .await
}

/// Waits (at most a second in all) until `check` holds on every node.
macro_rules! on_every_node_within_a_second {
    ($nodes:expr, $what:expr, |$node:ident| $check:expr) => {{
        let started = Instant::now();
        for $node in $nodes.iter() {
            TestEnv::eventually(1_000, || async { $check }).await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{}: took {:?}",
            $what,
            started.elapsed()
        );
    }};
}

async fn cli_command(env: &TestEnv, mode: &str, command: portcullis::cli::Command) {
    portcullis::cli::run(command, env.settings(mode))
        .await
        .unwrap();
}

/// Each fact the nodes share, set on one node or by an operator, seen by all three within a
/// second: a replayed nonce, a rate limit, a permission change, a restriction, a key
/// revocation, a ban, a logout, and a blocklogin that ends every session.
async fn three_nodes_share_every_fact(env: &TestEnv, mode: &str) {
    let settings = merged(mode, NODE_SETTINGS);
    let nodes = [
        env.start_with(&settings).await,
        env.start_with(&settings).await,
        env.start_with(&settings).await,
    ];
    let client = Client::new();

    // A replayed nonce.
    let bot = env.user_with("member", "active", true).await;
    let key = env.api_key(&bot.uid).await;
    let headers = key.headers();
    let first = client
        .get(nodes[0].decision(BALANCES))
        .headers(&headers)
        .send()
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    for node in &nodes[1..] {
        client
            .get(node.decision(BALANCES))
            .headers(&headers)
            .send()
            .await
            .assert_error(401, "authz.nonce_expired");
    }

    // A rate limit: three wrong passwords on one node, and the others refuse the right one.
    let guessed = env.user("member").await;
    for _ in 0..3 {
        let wrong = client
            .post(nodes[0].identity("sessions"))
            .json(&serde_json::json!({ "email": guessed.email, "password": "Wrong-pass1" }))
            .send()
            .await;
        assert_eq!(wrong.status, 401, "{}", wrong.text());
    }
    for node in &nodes[1..] {
        client
            .post(node.identity("sessions"))
            .json(&serde_json::json!({ "email": guessed.email, "password": guessed.password }))
            .send()
            .await
            .assert_error(429, "identity.session.too_many_attempts");
    }

    // Sessions of three users, each read (and cached) by every node.
    let (member, banned, leaving) = (
        env.user("member").await,
        env.user("member").await,
        env.user("member").await,
    );
    let session = nodes[0].login(&member).await;
    let banned_session = nodes[1].login(&banned).await;
    let leaving_session = nodes[2].login(&leaving).await;
    for node in &nodes {
        for session in [&session, &banned_session, &leaving_session] {
            assert_eq!(node.balances_status(session).await, 200);
        }
    }

    // A permission change, by the operator's command line.
    for node in &nodes {
        client
            .get(node.decision(NEW_SERVICE))
            .session(&session)
            .send()
            .await
            .assert_error(401, "authz.invalid_permission");
    }
    cli_command(
        env,
        mode,
        portcullis::cli::Command::Permissions(portcullis::cli::PermissionsCommand::Add {
            role: "member".into(),
            verb: "get".into(),
            path: "api/v2/newservice".into(),
            action: "accept".into(),
            topic: None,
        }),
    )
    .await;
    on_every_node_within_a_second!(nodes, "permission", |node| {
        client
            .get(node.decision(NEW_SERVICE))
            .session(&session)
            .send()
            .await
            .status
            == 200
    });

    // A restriction.
    cli_command(
        env,
        mode,
        portcullis::cli::Command::Restrictions(portcullis::cli::RestrictionsCommand::Add {
            category: "blacklist".into(),
            scope: "ip".into(),
            value: "203.0.113.9".into(),
            code: None,
            state: "enabled".into(),
        }),
    )
    .await;
    on_every_node_within_a_second!(nodes, "restriction", |node| {
        let answer = client
            .get(node.decision(PUBLIC))
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await;
        answer.status == 401 && answer.errors() == ["authz.restrict.blacklist"]
    });

    // A key revocation.
    for node in &nodes {
        assert_eq!(with_key(node, &key).await.status, 200);
    }
    env.sql(&format!(
        "UPDATE api_keys SET state = 'disabled' WHERE kid = '{}'",
        key.kid
    ))
    .await;
    on_every_node_within_a_second!(nodes, "key revocation", |node| {
        with_key(node, &key).await.status == 401
    });

    // A ban.
    env.sql(&format!(
        "UPDATE users SET state = 'banned' WHERE id = {}",
        banned.id
    ))
    .await;
    on_every_node_within_a_second!(nodes, "ban", |node| {
        node.balances_status(&banned_session).await == 401
    });

    // A logout, on another node than the one that logged in.
    let logout = client
        .delete(nodes[0].identity("sessions"))
        .session(&leaving_session)
        .send()
        .await;
    assert_eq!(logout.status, 200, "{}", logout.text());
    on_every_node_within_a_second!(nodes, "logout", |node| {
        node.balances_status(&leaving_session).await == 401
    });
    assert_eq!(nodes[2].balances_status(&session).await, 200);

    // A blocklogin restriction ends every session, wherever (on whichever primary) it is kept.
    cli_command(
        env,
        mode,
        portcullis::cli::Command::Restrictions(portcullis::cli::RestrictionsCommand::Add {
            category: "blocklogin".into(),
            scope: "ip".into(),
            value: "7.7.7.7".into(),
            code: None,
            state: "enabled".into(),
        }),
    )
    .await;
    on_every_node_within_a_second!(nodes, "blocklogin", |node| {
        node.balances_status(&session).await == 401
    });
}

#[tokio::test]
async fn three_nodes_on_one_redis_share_every_fact_within_a_second() {
    let env = TestEnv::new().await;
    three_nodes_share_every_fact(&env, "").await;
}

#[tokio::test]
async fn three_nodes_on_a_redis_cluster_share_every_fact_within_a_second() {
    let cluster = RedisCluster::start(3, 0).await;
    let env = TestEnv::new().await;
    let mode = format!("[redis]\nurl = \"{}\"\ncluster = true", cluster.url());
    three_nodes_share_every_fact(&env, &mode).await;
    // The keys did spread over the primaries (a hash tag on everything would defeat the cluster).
    let holding = cluster
        .nodes
        .iter()
        .filter(|node| cli(node.port, &["DBSIZE"]).trim() != "0")
        .count();
    assert!(holding >= 2, "keys on {holding} primaries");
}

#[tokio::test]
async fn three_nodes_on_redis_sentinel_share_every_fact_within_a_second() {
    let sentinel = RedisSentinel::start().await;
    let env = TestEnv::new().await;
    three_nodes_share_every_fact(&env, &sentinel.settings()).await;
}

/// A node under load on Redis in `mode`; `outage` takes Redis away and brings it back,
/// returning when it is back (the moment recovery is timed from). Checks that decisions failed
/// closed meanwhile, that none was a wrong allow, that none outlived the Redis timeout by
/// much, and that a valid session is allowed again within 5 s of Redis' return.
async fn fails_closed_and_recovers<F, Fut>(env: &TestEnv, mode: &str, outage: F) -> Tally
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // No session cache: every decision asks Redis, so the outage shows in every answer.
    // `mode` ends inside its [redis] table.
    let node = env
        .start_with(&format!(
            "{mode}\ntimeout_ms = 300\n[session]\ncache_ttl_ms = 0"
        ))
        .await;
    let (user, other) = (env.user("member").await, env.user("member").await);
    let valid = node.login(&user).await;
    let ended = node.login(&other).await;
    let logout = Client::new()
        .delete(node.identity("sessions"))
        .session(&ended)
        .send()
        .await;
    assert_eq!(logout.status, 200);
    assert_eq!(node.balances_status(&valid).await, 200);

    let forged = Session {
        cookie: "0".repeat(32),
        csrf: ended.csrf.clone(),
    };
    let (tally, recovered) = through_outage(&node, &valid, &[ended, forged], outage()).await;
    eprintln!("{mode:?}: recovered {recovered:?} after the store's return; {tally:?}");
    // 300 ms per Redis call; a decision makes few. None hangs.
    tally.assert_failed_closed_only(Duration::from_secs(3));
    tally
}

#[tokio::test]
async fn one_redis_killed_and_restarted_under_load() {
    let dir =
        std::env::temp_dir().join(format!("pc-redis-aof-{}", crate::support::random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    // With an append-only file, as a Redis that keeps sessions across restarts runs.
    let mut redis = RedisServer::start_in(Some(&dir), |_| {
        ["--appendonly", "yes", "--appendfsync", "always"]
            .map(String::from)
            .to_vec()
    })
    .await;
    let env = TestEnv::new().await;
    let mode = format!("[redis]\nurl = \"redis://127.0.0.1:{}/0\"", redis.port);
    let server = &mut redis;
    fails_closed_and_recovers(&env, &mode, move || async move {
        server.stop();
        tokio::time::sleep(Duration::from_secs(2)).await;
        server.restart().await;
    })
    .await;
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_cluster_primary_killed_under_load_is_replaced_by_its_replica() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let env = TestEnv::new().await;
    let mode = format!("[redis]\nurl = \"{}\"\ncluster = true", cluster.url());
    let prefix = env.redis_prefix.clone();
    let nodes = &mut cluster.nodes;
    fails_closed_and_recovers(&env, &mode, move || async move {
        // The primary that holds the sessions' keys (each node answers MOVED for the others).
        let holder = nodes
            .iter()
            .position(|node| {
                cli(
                    node.port,
                    &["--scan", "--pattern", &format!("{prefix}session:*")],
                )
                .lines()
                .count()
                    >= 1
                    && cli(node.port, &["ROLE"]).starts_with("master")
            })
            .expect("a primary holds the sessions");
        let killed_port = nodes[holder].port;
        let replica = nodes
            .iter()
            .position(|node| {
                let role = cli(node.port, &["ROLE"]);
                role.starts_with("slave") && role.contains(&killed_port.to_string())
            })
            .expect("the primary has a replica");
        nodes[holder].stop();
        // The store is back when its replica has taken over and the cluster serves every slot.
        TestEnv::eventually(15_000, || async {
            cli(nodes[replica].port, &["ROLE"]).starts_with("master")
                && nodes
                    .iter()
                    .filter(|n| n.port != killed_port)
                    .all(|node| cli(node.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        })
        .await;
    })
    .await;
    // The old primary comes back as a replica; the cluster stays whole.
    let killed = cluster
        .nodes
        .iter()
        .position(|node| cli(node.port, &["PING"]).trim() != "PONG")
        .expect("the killed node");
    cluster.nodes[killed].restart().await;
    cluster.healthy().await;
}

#[tokio::test]
async fn a_sentinel_failover_under_load_moves_every_node_to_the_new_master() {
    let mut sentinel = RedisSentinel::start().await;
    let env = TestEnv::new().await;
    let mode = sentinel.settings();
    let (old_port, name) = (sentinel.master.port, sentinel.name.clone());
    let sentinel_port = sentinel.sentinel.port;
    let master = &mut sentinel.master;
    fails_closed_and_recovers(&env, &mode, move || async move {
        master.stop();
        // The store is back when the sentinel names the promoted replica.
        TestEnv::eventually(15_000, || async {
            let named = cli(
                sentinel_port,
                &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", &name],
            );
            !named.is_empty() && !named.contains(&old_port.to_string())
        })
        .await;
    })
    .await;
    assert_eq!(sentinel.master_port(), sentinel.replica.port);
}
