//! Postgres lost and back, on a server of the test's own: decisions fail closed under load
//! with no wrong allow, and carry on within 5 s of its return without a restart (the pool
//! drops dead connections, the change listener reconnects). A streaming replica serves the
//! listings that tolerate lag, and never a decision or a write.

use std::time::Duration;

use crate::admin::Staff;
use crate::support::load::through_outage;
use crate::support::postgres_server::PostgresServer;
use crate::support::{Client, TestEnv};

const BALANCES: &str = "/api/v2/peatio/account/balances";

#[tokio::test]
async fn postgres_killed_and_restarted_under_load() {
    let postgres = PostgresServer::start().await;
    let env = TestEnv::on_database(&postgres.base_url()).await;
    // Subjects are not cached: every decision reads the user, so the outage shows in each.
    let node = env
        .start_with("[cache]\nsubject_ttl = 0\n[database]\ntimeout_ms = 500")
        .await;
    let (user, banned, leaving) = (
        env.user("member").await,
        env.user("member").await,
        env.user("member").await,
    );
    let valid = node.login(&user).await;
    let banned_session = node.login(&banned).await;
    let ended = node.login(&leaving).await;
    env.sql(&format!(
        "UPDATE users SET state = 'banned' WHERE id = {}",
        banned.id
    ))
    .await;
    let logout = Client::new()
        .delete(node.identity("sessions"))
        .session(&ended)
        .send()
        .await;
    assert_eq!(logout.status, 200);
    assert_eq!(node.balances_status(&valid).await, 200);
    assert_eq!(node.balances_status(&banned_session).await, 401);

    let (tally, recovered) = through_outage(&node, &valid, &[banned_session, ended], async {
        postgres.stop();
        tokio::time::sleep(Duration::from_secs(2)).await;
        postgres.restart().await;
    })
    .await;
    eprintln!("postgres: recovered {recovered:?} after its return; {tally:?}");
    // database.timeout_ms is 500; none hangs.
    tally.assert_failed_closed_only(Duration::from_secs(3));

    // The change listener is back too: a permission change reaches the node within a second.
    let path = "/api/v2/newservice/orders";
    Client::new()
        .get(node.decision(path))
        .session(&valid)
        .send()
        .await
        .assert_error(401, "authz.invalid_permission");
    env.sql(
        "INSERT INTO permissions (role, verb, path, action) VALUES ('member', 'GET', 'api/v2/newservice', 'ACCEPT')",
    )
    .await;
    TestEnv::eventually(1_000, || async {
        Client::new()
            .get(node.decision(path))
            .session(&valid)
            .send()
            .await
            .status
            == 200
    })
    .await;
}

/// Runs `sql` on the server at `url`.
async fn on(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
}

#[tokio::test]
async fn a_lagging_replica_serves_listings_and_never_decisions() {
    let primary = PostgresServer::start().await;
    let replica = PostgresServer::replica_of(&primary).await;
    let env = TestEnv::on_database(&primary.base_url()).await;
    let database = env.db_url.rsplit('/').next().unwrap().to_string();
    let node = env
        .start_with(&format!(
            "[database]\nreplica_url = \"{}\"\ntimeout_ms = 500",
            replica.url(&database)
        ))
        .await;
    let staff = Staff::new(&env, &node, "superadmin").await;
    let listed = env.user("member").await;
    TestEnv::eventually(5_000, || async {
        let users = staff.get(&node, "users").await;
        users.status == 200 && users.text().contains(&listed.uid)
    })
    .await;

    // The replica stops replaying: from now on it lags behind the primary.
    on(&replica.url(&database), "SELECT pg_wal_replay_pause()").await;
    let unseen = env.user("member").await;
    let bot = env.user_with("member", "active", true).await;
    let key = env.api_key(&bot.uid).await;
    // The listing comes from the replica, which has not heard of them...
    let users = staff.get(&node, "users").await;
    assert_eq!(users.status, 200, "{}", users.text());
    assert!(users.text().contains(&listed.uid));
    assert!(
        !users.text().contains(&unseen.uid),
        "listed from the primary"
    );
    // ... one user's page, and every decision, from the primary, which has.
    let one = staff.get(&node, &format!("users/{}", unseen.uid)).await;
    assert_eq!(one.status, 200, "{}", one.text());
    let decision = Client::new()
        .get(node.decision(BALANCES))
        .headers(&key.headers())
        .send()
        .await;
    assert_eq!(decision.status, 200, "{}", decision.text());
    // A ban the replica has not seen still refuses at once.
    let session = node.login(&listed).await;
    assert_eq!(node.balances_status(&session).await, 200);
    env.sql(&format!(
        "UPDATE users SET state = 'banned' WHERE id = {}",
        listed.id
    ))
    .await;
    TestEnv::eventually(1_000, || async {
        node.balances_status(&session).await == 401
    })
    .await;

    // Replay resumes: the listing catches up.
    on(&replica.url(&database), "SELECT pg_wal_replay_resume()").await;
    TestEnv::eventually(5_000, || async {
        staff.get(&node, "users").await.text().contains(&unseen.uid)
    })
    .await;

    // Without the replica, listings come from the primary.
    replica.stop();
    let users = staff.get(&node, "users").await;
    assert_eq!(users.status, 200, "{}", users.text());
    assert!(users.text().contains(&unseen.uid));
    assert_eq!(staff.get(&node, "activities").await.status, 200);
}
