//! Fail closed: when Redis or Postgres cannot answer, decisions are denials (503), quickly.

use std::time::{Duration, Instant};

use crate::support::redis_server::RedisServer;
use crate::support::{Client, TestEnv};

const BALANCES: &str = "/api/v2/peatio/account/balances";

#[tokio::test]
async fn redis_down_denies_with_503_within_the_timeout() {
    let mut redis = RedisServer::start().await;
    let env = TestEnv::new().await;
    let server = env
        .start_with(&format!(
            "[redis]\nurl = \"redis://127.0.0.1:{}/0\"\ntimeout_ms = 300",
            redis.port
        ))
        .await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let client = Client::new();
    assert_eq!(
        client
            .get(server.decision(BALANCES))
            .session(&session)
            .send()
            .await
            .status,
        200
    );

    redis.stop();
    let started = Instant::now();
    // A node trusts the sessions it cached only while it follows the logout announcements;
    // losing Redis ends that subscription, and from then on every decision asks Redis.
    TestEnv::eventually(1_000, || async {
        client
            .get(server.decision(BALANCES))
            .session(&session)
            .send()
            .await
            .status
            == 403
    })
    .await;
    let denied = client
        .get(server.url("/api/v2/auth/_/forward-auth"))
        .session(&session)
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", BALANCES)
        .send()
        .await;
    denied.assert_error(503, "authz.unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // Envoy must not see a 5xx (it could fail open): 403 with the real status alongside.
    let envoy = client
        .get(server.decision(BALANCES))
        .session(&session)
        .send()
        .await;
    envoy.assert_error(403, "authz.unavailable");
    // Over gRPC it is a denial, not a failed call: Envoy's failure_mode_allow never sees an
    // error it could turn into an allow.
    let grpc = crate::grpc::check(
        &server,
        serde_json::json!({ "method": "GET", "path": BALANCES, "headers": {
            "cookie": session.cookie_header(), "user-agent": crate::support::UA,
        }}),
    )
    .await;
    assert_eq!(
        crate::grpc::denied(&grpc),
        (14, 503, r#"{"errors":["authz.unavailable"]}"#.into())
    );
    assert_eq!(envoy.header("x-authz-status"), Some("503"));
    // API keys need Redis for the replay guard: denied as well.
    let bot = env.user_with("member", "active", true).await;
    let key = env.api_key(&bot.uid).await;
    client
        .get(server.url("/api/v2/auth/_/forward-auth"))
        .headers(&key.headers())
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", BALANCES)
        .send()
        .await
        .assert_error(503, "authz.unavailable");
    // Logging in needs Redis too.
    client
        .post(server.identity("sessions"))
        .json(&serde_json::json!({ "email": user.email, "password": user.password }))
        .send()
        .await
        .assert_error(503, "server.unavailable");
    let health = client.get(server.url("/health")).send().await;
    assert_eq!(health.status, 503);
    assert_eq!(health.json()["redis"], false);
    // Not ready, but alive: an orchestrator must not restart the node for Redis' outage.
    let live = client.get(server.url("/health/live")).send().await;
    assert_eq!(
        (live.status, live.json()["status"].as_str()),
        (200, Some("alive"))
    );
}

#[tokio::test]
async fn postgres_down_denies_subjects_it_has_not_cached() {
    let env = TestEnv::new().await;
    let server = env.start_with("[database]\ntimeout_ms = 500").await;
    let user = env.user("member").await;
    let bot = env.user_with("member", "active", true).await;
    let key = env.api_key(&bot.uid).await;
    let session = server.login(&user).await;
    let client = Client::new();
    let db = env.db_url.rsplit('/').next().unwrap().to_string();

    // Cut the node off its database: no new connections, existing ones terminated.
    let admin = tokio_postgres::connect(
        &format!("{}/postgres", crate::support::database_base_url()),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(admin.1);
    let admin = admin.0;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}';"
        ))
        .await
        .unwrap();

    let started = Instant::now();
    client
        .get(server.url("/api/v2/auth/_/forward-auth"))
        .session(&session)
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", BALANCES)
        .send()
        .await
        .assert_error(503, "authz.unavailable");
    client
        .get(server.url("/api/v2/auth/_/forward-auth"))
        .headers(&key.headers())
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", BALANCES)
        .send()
        .await
        .assert_error(503, "authz.unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    // Pass-rule paths need neither database: they keep working.
    assert_eq!(
        client
            .get(server.decision("/api/v2/peatio/public/markets"))
            .send()
            .await
            .status,
        200
    );

    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    // Back: the same session is served again.
    TestEnv::eventually(5000, || async {
        client
            .get(server.decision(BALANCES))
            .session(&session)
            .send()
            .await
            .status
            == 200
    })
    .await;
}
