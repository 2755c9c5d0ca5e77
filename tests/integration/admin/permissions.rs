//! `/admin/permissions`: staff list and edit the gate's permissions table; each write is in
//! the admin activity log with the row before and after, and reaches every running node.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Staff;
use crate::support::{Client, Server, Session, TestEnv};

/// A path members are allowed by the default policies.
const BALANCES: &str = "/api/v2/peatio/account/balances";

/// The admin API's own records of `topic` (those with a before and after; the gate's AUDIT
/// records of the same requests carry the request's parameters instead), oldest first, as
/// (action, staff role, before, after). The writer is batched: waits up to 2 s for `n`.
pub(super) async fn changes(
    env: &TestEnv,
    topic: &str,
    n: usize,
) -> Vec<(String, String, Value, Value)> {
    let client = env.store.client().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let rows = client
            .query(
                "SELECT a.action, u.role, a.data, a.result, a.user_agent FROM activities a
                 JOIN users u ON u.id = a.user_id
                 WHERE a.category = 'admin' AND a.topic = $1 ORDER BY a.id",
                &[&topic],
            )
            .await
            .unwrap();
        let found: Vec<_> = rows
            .iter()
            .filter_map(|row| {
                let data: Value = serde_json::from_str(row.get::<_, Option<&str>>(2)?).ok()?;
                let (before, after) = (data.get("before")?.clone(), data.get("after")?.clone());
                assert_eq!(row.get::<_, &str>(3), "succeed");
                assert_eq!(row.get::<_, &str>(4), crate::support::UA);
                Some((row.get(0), row.get(1), before, after))
            })
            .collect();
        if found.len() >= n || Instant::now() > deadline {
            assert_eq!(found.len(), n, "{found:?}");
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn permission_id(env: &TestEnv, role: &str, path: &str) -> i64 {
    let client = env.store.client().await.unwrap();
    client
        .query_one(
            "SELECT id FROM permissions WHERE role = $1 AND path = $2 ORDER BY id DESC LIMIT 1",
            &[&role, &path],
        )
        .await
        .unwrap()
        .get(0)
}

async fn balances(server: &Server, session: &Session) -> u16 {
    Client::new()
        .get(server.decision(BALANCES))
        .session(session)
        .send()
        .await
        .status
}

#[tokio::test]
async fn the_list_is_paginated_with_barongs_headers() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let staff = Staff::new(&env, &server, "superadmin").await;
    let total = env.count("SELECT count(*) FROM permissions").await;
    assert!(total > 4);

    let page = staff.get(&server, "permissions?page=2&limit=2").await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.header("total"), Some(total.to_string().as_str()));
    assert_eq!(page.header("page"), Some("2"));
    assert_eq!(page.header("per-page"), Some("2"));
    let link = page.header("link").unwrap();
    assert!(link.contains("page=3&limit=2>; rel=\"next\""), "{link}");
    assert!(link.contains("page=1&limit=2>; rel=\"first\""), "{link}");
    let rows = page.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let third: (i64, String, String) = {
        let client = env.store.client().await.unwrap();
        let row = client
            .query_one(
                "SELECT id, verb, action FROM permissions ORDER BY id OFFSET 2 LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(rows[0]["id"], third.0);
    assert_eq!(rows[0]["verb"], third.1);
    assert_eq!(rows[0]["action"], third.2);
    let mut keys: Vec<_> = rows[0].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "action",
            "created_at",
            "id",
            "path",
            "role",
            "topic",
            "updated_at",
            "verb"
        ]
    );

    let all = staff.get(&server, "permissions").await;
    assert_eq!(all.header("per-page"), Some("100"));
    assert_eq!(all.json().as_array().unwrap().len() as i64, total.min(100));
    staff
        .get(&server, "permissions?page=0")
        .await
        .assert_error(422, "non_positive_page");
    let both = staff.get(&server, "permissions?page=x&limit=101").await;
    assert_eq!(both.errors(), ["non_integer_page", "invalid_limit"]);
}

#[tokio::test]
async fn a_superadmin_creates_updates_and_deletes_and_each_change_is_logged() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let staff = Staff::new(&env, &server, "superadmin").await;
    let path = "api/v2/newservice";

    let created = staff
        .send(
            &server,
            "POST",
            "permissions",
            &json!({
                "role": "member", "verb": "get", "path": path, "action": "accept",
            }),
        )
        .await;
    assert_eq!((created.status, created.text()), (200, "200".to_string()));
    let id = permission_id(&env, "member", path).await;
    // Stored upper-cased, as Barong saves verb and action; listed on the last page.
    let total = env.count("SELECT count(*) FROM permissions").await;
    let last = staff
        .get(&server, &format!("permissions?limit=1&page={total}"))
        .await
        .json();
    assert_eq!(
        (
            &last[0]["id"],
            &last[0]["verb"],
            &last[0]["action"],
            &last[0]["topic"]
        ),
        (&json!(id), &json!("GET"), &json!("ACCEPT"), &Value::Null)
    );

    let updated = staff
        .send(
            &server,
            "PUT",
            "permissions",
            &json!({ "id": id, "action": "drop", "topic": "news" }),
        )
        .await;
    assert_eq!((updated.status, updated.text()), (200, "200".to_string()));
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM permissions WHERE id = {id} AND action = 'DROP' AND topic = 'news' AND verb = 'GET' AND role = 'member'"
        ))
        .await,
        1
    );
    // The same values again: nothing to change, nothing logged.
    let same = staff
        .send(
            &server,
            "PUT",
            "permissions",
            &json!({ "id": id, "action": "DROP" }),
        )
        .await;
    assert_eq!(same.status, 200, "{}", same.text());

    let deleted = staff
        .send(
            &server,
            "DELETE",
            &format!("permissions?id={id}"),
            &Value::Null,
        )
        .await;
    assert_eq!((deleted.status, deleted.text()), (200, "200".to_string()));
    assert_eq!(
        env.count(&format!("SELECT count(*) FROM permissions WHERE id = {id}"))
            .await,
        0
    );
    staff
        .send(
            &server,
            "DELETE",
            &format!("permissions?id={id}"),
            &Value::Null,
        )
        .await
        .assert_error(404, "admin.permission.doesnt_exist");
    staff
        .send(
            &server,
            "PUT",
            "permissions",
            &json!({ "id": id, "action": "accept" }),
        )
        .await
        .assert_error(404, "admin.permission.doesnt_exist");

    let log = changes(&env, "permissions", 3).await;
    let (action, role, before, after) = &log[0];
    assert_eq!(
        (action.as_str(), role.as_str(), before),
        ("create", "superadmin", &Value::Null)
    );
    assert_eq!(
        (&after["id"], &after["action"], &after["path"]),
        (&json!(id), &json!("ACCEPT"), &json!(path))
    );
    let (action, _, before, after) = &log[1];
    assert_eq!(action, "update");
    assert_eq!(
        (&before["action"], &before["topic"]),
        (&json!("ACCEPT"), &Value::Null)
    );
    assert_eq!(
        (&after["action"], &after["topic"]),
        (&json!("DROP"), &json!("news"))
    );
    let (action, _, before, after) = &log[2];
    assert_eq!((action.as_str(), after), ("delete", &Value::Null));
    assert_eq!(
        (&before["id"], &before["action"]),
        (&json!(id), &json!("DROP"))
    );
}

#[tokio::test]
async fn input_is_refused_with_barongs_codes_and_nothing_is_written() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let staff = Staff::new(&env, &server, "superadmin").await;
    let rows = env.count("SELECT count(*) FROM permissions").await;
    let (st, sv) = (&staff, &server);
    let post = move |body: Value| async move { st.send(sv, "POST", "permissions", &body).await };
    let valid = json!({ "role": "member", "verb": "get", "path": "api/v2/x", "action": "accept" });
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };

    let empty = post(json!({})).await;
    assert_eq!(empty.status, 422);
    assert_eq!(
        empty.errors(),
        [
            "admin.permission.missing_role",
            "admin.permission.empty_role",
            "admin.permission.missing_verb",
            "admin.permission.empty_verb",
            "admin.permission.missing_path",
            "admin.permission.empty_path",
            "admin.permission.missing_action",
            "admin.permission.empty_action",
        ]
    );
    post(with("action", json!(" ")))
        .await
        .assert_error(422, "admin.permission.empty_action");
    post(with("topic", json!("")))
        .await
        .assert_error(422, "admin.permission.empty_topic");
    post(with("verb", json!("options")))
        .await
        .assert_error(422, "admin.permissions.invalid_verb");
    post(with("action", json!("allow")))
        .await
        .assert_error(422, "admin.permissions.invalid_action");
    post(with("role", json!("nobody")))
        .await
        .assert_error(422, "admin.permission.role_doesnt_exist");
    post(with("path", json!("a".repeat(256))))
        .await
        .assert_error(422, "path.too_long");
    post(with("role", json!("mem\u{0}ber")))
        .await
        .assert_error(422, "admin.permission.invalid_role");
    post(with("path", json!("api/v2/\u{0}")))
        .await
        .assert_error(422, "admin.permission.invalid_path");
    post(with("topic", json!("t".repeat(65))))
        .await
        .assert_error(422, "topic.too_long");

    let (st, sv) = (&staff, &server);
    let put = move |body: Value| async move { st.send(sv, "PUT", "permissions", &body).await };
    let missing = put(json!({ "action": "drop" })).await;
    assert_eq!(
        missing.errors(),
        ["admin.permission.missing_id", "admin.permission.empty_id"]
    );
    put(json!({ "id": "one" }))
        .await
        .assert_error(422, "admin.permission.non_integer_id");
    let id = permission_id(&env, "member", "api/v2/peatio/account").await;
    put(json!({ "id": id, "action": "all" }))
        .await
        .assert_error(422, "admin.permissions.invalid_action");
    put(json!({ "id": id, "verb": "trace" }))
        .await
        .assert_error(422, "admin.permissions.invalid_verb");
    put(json!({ "id": id, "role": "nobody" }))
        .await
        .assert_error(422, "admin.permission.role_doesnt_exist");
    put(json!({ "id": id, "path": "" }))
        .await
        .assert_error(422, "admin.permission.empty_path");
    let missing = staff
        .send(&server, "DELETE", "permissions", &Value::Null)
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.errors(),
        ["admin.permission.missing_id", "admin.permission.empty_id"]
    );
    staff
        .send(&server, "DELETE", "permissions?id=1.5", &Value::Null)
        .await
        .assert_error(422, "admin.permission.non_integer_id");

    assert_eq!(env.count("SELECT count(*) FROM permissions").await, rows);
    // Give the batched writer time to show a record it should not have.
    tokio::time::sleep(Duration::from_millis(500)).await;
    changes(&env, "permissions", 0).await;
}

/// A staff member's session, reaching the admin API directly (the gate decides on the path,
/// as it would for Envoy).
pub(super) async fn session_of(env: &TestEnv, server: &Server, role: &str) -> Session {
    server.login(&env.user(role).await).await
}

/// `method` on an admin route with a session (and its CSRF token), `body` as JSON.
pub(super) async fn with_session(
    server: &Server,
    session: &Session,
    method: &str,
    route: &str,
    body: &Value,
) -> crate::support::Response {
    Client::new()
        .request(method, server.admin(route))
        .session(session)
        .header("x-csrf-token", &session.csrf)
        .json(body)
        .send()
        .await
}

#[tokio::test]
async fn the_permissions_table_then_the_abilities_decide_who_reaches_them() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let valid = json!({ "role": "member", "verb": "get", "path": "api/v2/x", "action": "accept" });
    // The default policies DROP /admin/permissions for every staff role but superadmin: the
    // gate refuses before the endpoint is reached, whatever the method.
    for role in ["admin", "technical", "support", "accountant", "compliance"] {
        let session = session_of(&env, &server, role).await;
        for method in ["GET", "POST", "PUT", "DELETE"] {
            with_session(&server, &session, method, "permissions", &valid)
                .await
                .assert_error(401, "authz.invalid_permission");
        }
    }
    let superadmin = session_of(&env, &server, "superadmin").await;
    let listed = with_session(&server, &superadmin, "GET", "permissions", &json!({})).await;
    assert_eq!(listed.status, 200, "{}", listed.text());

    // A Bearer token proves who calls, not that this path was decided: the table decides
    // again, so the DROP rows hold for tokens too.
    let id = permission_id(&env, "member", "api/v2/peatio/account").await;
    for role in ["admin", "technical", "support"] {
        let staff = Staff::new(&env, &server, role).await;
        staff
            .get(&server, "permissions")
            .await
            .assert_error(401, "authz.invalid_permission");
        staff
            .send(
                &server,
                "PUT",
                "permissions",
                &json!({ "id": id, "action": "drop" }),
            )
            .await
            .assert_error(401, "authz.invalid_permission");
    }
    // Past the table (a row letting a role without abilities in), the abilities refuse.
    env.sql("INSERT INTO permissions (role, verb, path, action) VALUES ('trader', 'all', 'api/v2/auth/admin/permissions', 'accept')")
        .await;
    let trader = Staff::new(&env, &server, "trader").await;
    TestEnv::eventually(2_000, || async {
        trader.get(&server, "permissions").await.errors() == ["admin.ability.not_permitted"]
    })
    .await;
    trader
        .send(&server, "POST", "permissions", &valid)
        .await
        .assert_error(401, "admin.ability.not_permitted");
    assert_eq!(
        env.count("SELECT count(*) FROM permissions WHERE path = 'api/v2/x'")
            .await,
        0
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM permissions WHERE id = {id} AND action = 'ACCEPT'"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn a_drop_created_on_one_node_refuses_on_the_other_within_a_second() {
    let env = TestEnv::new().await;
    let (a, b) = (env.start().await, env.start().await);
    let staff = Staff::new(&env, &a, "superadmin").await;
    let member = env.user("member").await;
    let (on_a, on_b) = (a.login(&member).await, b.login(&member).await);
    assert_eq!(balances(&b, &on_b).await, 200);

    let drop = json!({ "role": "member", "verb": "get", "path": "api/v2/peatio/account", "action": "drop" });
    let started = Instant::now();
    let created = staff.send(&a, "POST", "permissions", &drop).await;
    assert_eq!(created.status, 200, "{}", created.text());
    TestEnv::eventually(1000, || async { balances(&b, &on_b).await == 401 }).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    Client::new()
        .get(b.decision(BALANCES))
        .session(&on_b)
        .send()
        .await
        .assert_error(401, "authz.invalid_permission");
    // The writing node too.
    TestEnv::eventually(1000, || async { balances(&a, &on_a).await == 401 }).await;

    let id = permission_id(&env, "member", "api/v2/peatio/account").await;
    let started = Instant::now();
    let deleted = staff
        .send(&a, "DELETE", &format!("permissions?id={id}"), &Value::Null)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    TestEnv::eventually(1000, || async { balances(&b, &on_b).await == 200 }).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    TestEnv::eventually(1000, || async { balances(&a, &on_a).await == 200 }).await;
}
