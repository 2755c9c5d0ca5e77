//! What the per-node caches must not change: a logout, a ban and a key revocation are refused
//! on every node within a second, a replayed nonce is refused across nodes, and a session that
//! vanished from Redis without an announcement is refused within `session.cache_ttl_ms`.

use crate::support::{Client, Response, Server, Session, TestEnv, TestKey};

const BALANCES: &str = "/api/v2/peatio/account/balances";

async fn with_session(server: &Server, session: &Session) -> Response {
    Client::new()
        .get(server.decision(BALANCES))
        .session(session)
        .send()
        .await
}

async fn with_key(server: &Server, key: &TestKey) -> Response {
    Client::new()
        .get(server.decision(BALANCES))
        .headers(&key.headers())
        .send()
        .await
}

/// Waits (at most a second) until `server` refuses `session` with `code`.
async fn refused_within_a_second(server: &Server, session: &Session, code: &'static str) {
    TestEnv::eventually(1_000, || async {
        let answer = with_session(server, session).await;
        answer.status == 401 && answer.errors() == [code]
    })
    .await;
}

#[tokio::test]
async fn a_logout_is_refused_at_once_here_and_within_a_second_on_every_other_node() {
    // Copies trusted for a minute: only the announcement can end them in time.
    let env = TestEnv::new().await;
    let long = "[session]\ncache_ttl_ms = 60000";
    let (node_a, node_b, node_c) = (
        env.start_with(long).await,
        env.start_with(long).await,
        env.start_with(long).await,
    );
    let user = env.user("member").await;
    let session = node_a.login(&user).await;
    // Every node has read (and cached) the session.
    for node in [&node_a, &node_b, &node_c] {
        for _ in 0..3 {
            assert_eq!(with_session(node, &session).await.status, 200);
        }
    }
    let logout = Client::new()
        .delete(node_b.identity("sessions"))
        .session(&session)
        .send()
        .await;
    assert_eq!(logout.status, 200);
    // The node that ended it forgets it before answering.
    with_session(&node_b, &session)
        .await
        .assert_error(401, "authz.invalid_session");
    for node in [&node_a, &node_c] {
        refused_within_a_second(node, &session, "authz.invalid_session").await;
    }
}

#[tokio::test]
async fn a_node_that_caches_nothing_still_announces_the_sessions_it_ends() {
    // Nodes need not share cache settings (a rolling change, the command line): a logout on a
    // node without a cache must still reach the caches of the others.
    let env = TestEnv::new().await;
    let caching = env.start_with("[session]\ncache_ttl_ms = 60000").await;
    let uncached = env.start_with("[session]\ncache_ttl_ms = 0").await;
    let user = env.user("member").await;
    let session = caching.login(&user).await;
    assert_eq!(with_session(&caching, &session).await.status, 200);
    let logout = Client::new()
        .delete(uncached.identity("sessions"))
        .session(&session)
        .send()
        .await;
    assert_eq!(logout.status, 200);
    refused_within_a_second(&caching, &session, "authz.invalid_session").await;
}

#[tokio::test]
async fn a_ban_is_refused_on_every_node_within_a_second() {
    let env = TestEnv::new().await;
    let (node_a, node_b) = (env.start().await, env.start().await);
    let user = env.user("member").await;
    let session = node_a.login(&user).await;
    for node in [&node_a, &node_b] {
        assert_eq!(with_session(node, &session).await.status, 200);
    }
    env.sql(&format!(
        "UPDATE users SET state = 'banned' WHERE id = {}",
        user.id
    ))
    .await;
    for node in [&node_a, &node_b] {
        refused_within_a_second(node, &session, "authz.user_not_active").await;
    }
}

#[tokio::test]
async fn a_key_revocation_is_refused_on_every_node_within_a_second() {
    let env = TestEnv::new().await;
    let (node_a, node_b) = (env.start().await, env.start().await);
    let user = env.user_with("member", "active", true).await;
    let key = env.api_key(&user.uid).await;
    for node in [&node_a, &node_b] {
        assert_eq!(with_key(node, &key).await.status, 200);
    }
    env.sql(&format!(
        "UPDATE api_keys SET state = 'disabled' WHERE kid = '{}'",
        key.kid
    ))
    .await;
    for node in [&node_a, &node_b] {
        TestEnv::eventually(1_000, || async { with_key(node, &key).await.status == 401 }).await;
    }
}

#[tokio::test]
async fn a_replayed_nonce_is_refused_on_another_node() {
    let env = TestEnv::new().await;
    let (node_a, node_b) = (env.start().await, env.start().await);
    let user = env.user_with("member", "active", true).await;
    let key = env.api_key(&user.uid).await;
    let headers = key.headers();
    let first = Client::new()
        .get(node_a.decision(BALANCES))
        .headers(&headers)
        .send()
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    for node in [&node_b, &node_a] {
        Client::new()
            .get(node.decision(BALANCES))
            .headers(&headers)
            .send()
            .await
            .assert_error(401, "authz.nonce_expired");
    }
}

#[tokio::test]
async fn a_session_gone_from_redis_unannounced_is_refused_within_the_cache_ttl() {
    let env = TestEnv::new().await;
    let server = env.start_with("[session]\ncache_ttl_ms = 700").await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    assert_eq!(with_session(&server, &session).await.status, 200);
    // Expired, flushed or deleted by hand: no announcement.
    let hash = portcullis::crypto::sha256_hex(session.cookie.as_bytes());
    let deleted = server
        .app
        .kv
        .del(&[server.app.kv.key(&format!("session:{hash}"))])
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    // The node still trusts its copy (this is what the cache saves: a Redis round trip)...
    assert_eq!(with_session(&server, &session).await.status, 200);
    // ... for at most cache_ttl_ms.
    refused_within_a_second(&server, &session, "authz.invalid_session").await;
}

#[tokio::test]
async fn with_the_cache_off_every_request_reads_redis() {
    let env = TestEnv::new().await;
    let server = env.start_with("[session]\ncache_ttl_ms = 0").await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    assert_eq!(with_session(&server, &session).await.status, 200);
    let hash = portcullis::crypto::sha256_hex(session.cookie.as_bytes());
    server
        .app
        .kv
        .del(&[server.app.kv.key(&format!("session:{hash}"))])
        .await
        .unwrap();
    with_session(&server, &session)
        .await
        .assert_error(401, "authz.invalid_session");
}
