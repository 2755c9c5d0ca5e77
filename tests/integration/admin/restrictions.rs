//! `/admin/restrictions` and `/admin/restrictions/whitelink`: staff list and edit the gate's
//! restrictions and hand out whitelinks; each write is logged with before and after, and
//! reaches every running node.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Staff;
use super::permissions::{changes, session_of, with_session};
use crate::support::{Client, Response, Server, TestEnv};

const PUBLIC: &str = "/api/v2/peatio/public/markets";

/// GET of a public path from `ip` (a trusted proxy's X-Forwarded-For).
async fn public_from(server: &Server, ip: &str) -> Response {
    Client::new()
        .get(server.decision(PUBLIC))
        .header("x-forwarded-for", ip)
        .send()
        .await
}

async fn restriction_id(env: &TestEnv, value: &str) -> i64 {
    let client = env.store.client().await.unwrap();
    client
        .query_one("SELECT id FROM restrictions WHERE value = $1", &[&value])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn technical_staff_create_list_update_and_delete_and_each_change_is_logged() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let staff = Staff::new(&env, &server, "technical").await;
    let before = env.count("SELECT count(*) FROM restrictions").await;

    let created = staff
        .send(
            &server,
            "POST",
            "restrictions",
            &json!({
                "category": "blacklist", "scope": "ip", "value": " 203.0.113.9 ", "code": 433,
            }),
        )
        .await;
    assert_eq!((created.status, created.text()), (200, "200".to_string()));
    let id = restriction_id(&env, "203.0.113.9").await;
    let subnet = staff
        .send(&server, "POST", "restrictions", &json!({
            "category": "maintenance", "scope": "ip_subnet", "value": "198.51.100.0/24", "state": "disabled",
        }))
        .await;
    assert_eq!(subnet.status, 200, "{}", subnet.text());

    // Filters, and Barong's pagination headers.
    let blacklisted = staff
        .get(&server, "restrictions?category=blacklist&scope=ip")
        .await;
    assert_eq!(blacklisted.status, 200, "{}", blacklisted.text());
    let rows = blacklisted.json();
    let mine = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .expect("listed");
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["category"] == "blacklist" && r["scope"] == "ip")
    );
    assert_eq!(
        (&mine["value"], &mine["code"], &mine["state"]),
        (&json!("203.0.113.9"), &json!(433), &json!("enabled"))
    );
    assert!(mine["created_at"].is_string() && mine["updated_at"].is_string());
    assert_eq!(
        blacklisted.header("total"),
        Some(rows.as_array().unwrap().len().to_string().as_str())
    );
    let maintenance = staff
        .get(&server, "restrictions?category=maintenance&scope=ip_subnet")
        .await
        .json();
    // The default code of a maintenance row.
    assert_eq!(maintenance[0]["code"], 471);
    assert_eq!(maintenance[0]["state"], "disabled");
    let paged = staff.get(&server, "restrictions?limit=1&page=1").await;
    assert_eq!(
        paged.header("total"),
        Some((before + 2).to_string().as_str())
    );
    assert_eq!(paged.header("per-page"), Some("1"));
    assert_eq!(paged.json().as_array().unwrap().len(), 1);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let future = staff
        .get(&server, &format!("restrictions?from={}", now + 3600))
        .await;
    assert_eq!((future.status, future.json()), (200, json!([])));
    let recent = staff
        .get(
            &server,
            &format!(
                "restrictions?range=updated&from={}&to={}",
                now - 60,
                now + 60
            ),
        )
        .await
        .json();
    assert!(recent.as_array().unwrap().iter().any(|r| r["id"] == id));

    let updated = staff
        .send(
            &server,
            "PUT",
            "restrictions",
            &json!({ "id": id, "state": "disabled", "code": 434 }),
        )
        .await;
    assert_eq!((updated.status, updated.text()), (200, "200".to_string()));
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM restrictions WHERE id = {id} AND state = 'disabled' AND code = 434 AND value = '203.0.113.9'"
        ))
        .await,
        1
    );
    let deleted = staff
        .send(
            &server,
            "DELETE",
            &format!("restrictions?id={id}"),
            &Value::Null,
        )
        .await;
    assert_eq!((deleted.status, deleted.text()), (200, "200".to_string()));
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM restrictions WHERE id = {id}"
        ))
        .await,
        0
    );
    staff
        .send(
            &server,
            "DELETE",
            &format!("restrictions?id={id}"),
            &Value::Null,
        )
        .await
        .assert_error(404, "admin.restriction.doesnt_exist");
    staff
        .send(
            &server,
            "PUT",
            "restrictions",
            &json!({ "id": id, "state": "enabled" }),
        )
        .await
        .assert_error(404, "admin.restriction.doesnt_exist");

    let log = changes(&env, "restrictions", 4).await;
    let actions: Vec<_> = log
        .iter()
        .map(|(action, role, _, _)| (action.as_str(), role.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("create", "technical"),
            ("create", "technical"),
            ("update", "technical"),
            ("delete", "technical")
        ]
    );
    assert_eq!(log[0].2, Value::Null);
    assert_eq!(
        (&log[0].3["id"], &log[0].3["code"]),
        (&json!(id), &json!(433))
    );
    assert_eq!(
        (&log[2].2["state"], &log[2].2["code"]),
        (&json!("enabled"), &json!(433))
    );
    assert_eq!(
        (&log[2].3["state"], &log[2].3["code"]),
        (&json!("disabled"), &json!(434))
    );
    assert_eq!((&log[3].2["id"], &log[3].3), (&json!(id), &Value::Null));
}

#[tokio::test]
async fn input_is_refused_with_barongs_codes_and_nothing_is_written() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let staff = Staff::new(&env, &server, "superadmin").await;
    staff
        .send(
            &server,
            "POST",
            "restrictions",
            &json!({ "category": "blacklist", "scope": "ip", "value": "192.0.2.1" }),
        )
        .await;
    let rows = env.count("SELECT count(*) FROM restrictions").await;
    let (st, sv) = (&staff, &server);
    let post = move |body: Value| async move { st.send(sv, "POST", "restrictions", &body).await };
    let valid = json!({ "category": "blacklist", "scope": "ip", "value": "192.0.2.2" });
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
            "admin.restriction.missing_scope",
            "admin.restriction.empty_scope",
            "admin.restriction.missing_value",
            "admin.restriction.empty_value",
            "admin.restriction.missing_category",
            "admin.restriction.empty_category",
        ]
    );
    let bad = post(json!({ "category": "greylist", "scope": "planet", "value": "x", "state": "on", "code": 200 })).await;
    assert_eq!(
        bad.errors(),
        [
            "admin.restriction.invalid_category",
            "admin.restriction.invalid_scope",
            "admin.restriction.invalid_state",
            "code.invalid",
        ]
    );
    post(with("value", json!("192.0.2")))
        .await
        .assert_error(422, "value.invalid");
    post(with("scope", json!("ip_subnet")))
        .await
        .assert_error(422, "value.invalid");
    post(with("value", json!("192.0.2.1")))
        .await
        .assert_error(422, "value.taken");
    post(with("code", json!("abc")))
        .await
        .assert_error(422, "admin.restriction.non_integer_code");
    post(with("code", json!(99_999_999_999i64)))
        .await
        .assert_error(422, "code.invalid");
    // A NUL would reach the database in a country's free text.
    post(json!({ "category": "blacklist", "scope": "country", "value": "U\u{0}A" }))
        .await
        .assert_error(422, "admin.restriction.invalid_value");
    post(with("state", json!("")))
        .await
        .assert_error(422, "admin.restriction.empty_state");
    post(json!({ "category": "blacklist", "scope": "country", "value": "x".repeat(65) }))
        .await
        .assert_error(422, "value.too_long");

    let id = restriction_id(&env, "192.0.2.1").await;
    let (st, sv) = (&staff, &server);
    let put = move |body: Value| async move { st.send(sv, "PUT", "restrictions", &body).await };
    let missing = put(json!({ "state": "disabled" })).await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.errors(),
        ["admin.restriction.missing_id", "admin.restriction.empty_id"]
    );
    put(json!({ "id": "x" }))
        .await
        .assert_error(422, "admin.restriction.non_integer_id");
    put(json!({ "id": id, "scope": "ip_subnet" }))
        .await
        .assert_error(422, "value.invalid");
    put(json!({ "id": id, "state": "paused" }))
        .await
        .assert_error(422, "admin.restriction.invalid_state");
    put(json!({ "id": id, "value": "" }))
        .await
        .assert_error(422, "admin.restriction.empty_value");
    staff
        .send(&server, "DELETE", "restrictions?id=", &Value::Null)
        .await
        .assert_error(422, "admin.restriction.empty_id");

    for (query, code) in [
        ("scope=planet", "admin.restriction.invalid_scope"),
        ("category=greylist", "admin.restriction.invalid_category"),
        ("range=deleted", "admin.restriction.invalid_range"),
        ("from=yesterday", "admin.restriction.invalid_from"),
        ("to=1e3", "admin.restriction.invalid_to"),
        ("limit=0", "invalid_limit"),
    ] {
        staff
            .get(&server, &format!("restrictions?{query}"))
            .await
            .assert_error(422, code);
    }

    assert_eq!(env.count("SELECT count(*) FROM restrictions").await, rows);
    assert_eq!(
        env.count(&format!("SELECT count(*) FROM restrictions WHERE id = {id} AND scope = 'ip' AND state = 'enabled'")).await,
        1
    );
}

#[tokio::test]
async fn the_permissions_table_then_the_abilities_decide_who_reaches_them() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let valid = json!({ "category": "blacklist", "scope": "ip", "value": "192.0.2.3" });
    // Support and compliance are DROPped on the path by the default policies: the gate
    // refuses (reached directly with a session, as through Envoy), whatever the method.
    for role in ["support", "compliance"] {
        let session = session_of(&env, &server, role).await;
        for (method, route) in [
            ("GET", "restrictions"),
            ("POST", "restrictions"),
            ("PUT", "restrictions"),
            ("DELETE", "restrictions"),
            ("POST", "restrictions/whitelink"),
        ] {
            with_session(&server, &session, method, route, &valid)
                .await
                .assert_error(401, "authz.invalid_permission");
        }
    }
    // An accountant passes the table (GET on admin) but has no Restriction ability: the
    // abilities refuse.
    let accountant = session_of(&env, &server, "accountant").await;
    with_session(&server, &accountant, "GET", "restrictions", &json!({}))
        .await
        .assert_error(401, "admin.ability.not_permitted");
    // A Bearer token does not skip the table: support's DROP holds.
    let support = Staff::new(&env, &server, "support").await;
    for (method, route) in [
        ("GET", "restrictions"),
        ("POST", "restrictions"),
        ("POST", "restrictions/whitelink"),
    ] {
        support
            .send(&server, method, route, &valid)
            .await
            .assert_error(401, "authz.invalid_permission");
    }
    // Admin and technical manage restrictions, through both checks.
    for (role, value) in [("admin", "192.0.2.4"), ("technical", "192.0.2.5")] {
        let session = session_of(&env, &server, role).await;
        let listed = with_session(&server, &session, "GET", "restrictions", &json!({})).await;
        assert_eq!(listed.status, 200, "{role}: {}", listed.text());
        let created = with_session(
            &server,
            &session,
            "POST",
            "restrictions",
            &json!({ "category": "blacklist", "scope": "ip", "value": value }),
        )
        .await;
        assert_eq!(created.status, 200, "{role}: {}", created.text());
        let whitelink = with_session(
            &server,
            &session,
            "POST",
            "restrictions/whitelink",
            &json!({}),
        )
        .await;
        assert_eq!(whitelink.status, 201, "{role}: {}", whitelink.text());
    }
    assert_eq!(
        env.count(
            "SELECT count(*) FROM restrictions WHERE value IN ('192.0.2.3', '192.0.2.4', '192.0.2.5')"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn a_whitelink_token_lets_a_blacklisted_address_whitelist_itself() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let staff = Staff::new(&env, &server, "superadmin").await;
    let created = staff
        .send(
            &server,
            "POST",
            "restrictions",
            &json!({ "category": "blacklist", "scope": "ip", "value": "3.3.3.3", "code": 403 }),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    TestEnv::eventually(2000, || async {
        public_from(&server, "3.3.3.3").await.status == 403
    })
    .await;

    let link = staff
        .send(
            &server,
            "POST",
            "restrictions/whitelink",
            &json!({ "expire_time": 2, "range": "hour" }),
        )
        .await;
    assert_eq!(link.status, 201, "{}", link.text());
    let token = link.json()["whitelink_token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let redis = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{}whitelink:{token}", env.redis_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((7000..=7200).contains(&ttl), "{ttl}");
    let default = staff
        .send(&server, "POST", "restrictions/whitelink", &Value::Null)
        .await;
    let default_token = default.json()["whitelink_token"]
        .as_str()
        .unwrap()
        .to_string();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{}whitelink:{default_token}", env.redis_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((86_000..=86_400).contains(&ttl), "{ttl}");

    let redeemed = Client::new()
        .post(server.identity("users/access"))
        .header("x-forwarded-for", "3.3.3.3")
        .json(&json!({ "whitelink_token": token }))
        .send()
        .await;
    assert_eq!(redeemed.status, 201, "{}", redeemed.text());
    TestEnv::eventually(2000, || async {
        public_from(&server, "3.3.3.3").await.status == 200
    })
    .await;

    for (body, code) in [
        (json!({ "expire_time": 31 }), "invalid_expire"),
        (json!({ "expire_time": 0 }), "invalid_expire"),
        (json!({ "expire_time": "soon" }), "invalid_expire"),
        (json!({ "range": "week" }), "invalid_range"),
        (json!({ "range": "" }), "admin.restriction.empty_range"),
    ] {
        staff
            .send(&server, "POST", "restrictions/whitelink", &body)
            .await
            .assert_error(422, code);
    }
    // Logged as a creation, without the token.
    let log = changes(&env, "restrictions", 3).await;
    assert!(
        log[1].3["whitelink"]["expires_at"].is_string(),
        "{:?}",
        log[1]
    );
    assert!(!log[1].3.to_string().contains(&token));
}

#[tokio::test]
async fn an_enabled_blocklogin_ends_every_session() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let staff = Staff::new(&env, &server, "superadmin").await;
    let member = env.user("member").await;
    let session = server.login(&member).await;
    let balances = || async {
        Client::new()
            .get(server.decision("/api/v2/peatio/account/balances"))
            .session(&session)
            .send()
            .await
    };
    assert_eq!(balances().await.status, 200);
    // Disabled, it ends nothing; enabling it does.
    let created = staff
        .send(&server, "POST", "restrictions", &json!({ "category": "blocklogin", "scope": "ip", "value": "192.0.2.77", "state": "disabled" }))
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(balances().await.status, 200);
    let id = restriction_id(&env, "192.0.2.77").await;
    let enabled = staff
        .send(
            &server,
            "PUT",
            "restrictions",
            &json!({ "id": id, "state": "enabled" }),
        )
        .await;
    assert_eq!(enabled.status, 200, "{}", enabled.text());
    balances().await.assert_error(401, "authz.invalid_session");
}

#[tokio::test]
async fn a_blacklist_created_on_one_node_refuses_on_the_other_within_a_second() {
    let env = TestEnv::new().await;
    let (a, b) = (env.start().await, env.start().await);
    let staff = Staff::new(&env, &a, "technical").await;
    let ip = "203.0.113.50";
    assert_eq!(public_from(&b, ip).await.status, 200);

    let started = Instant::now();
    let created = staff
        .send(
            &a,
            "POST",
            "restrictions",
            &json!({ "category": "blacklist", "scope": "ip", "value": ip, "code": 451 }),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    TestEnv::eventually(1000, || async { public_from(&b, ip).await.status == 451 }).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    public_from(&b, ip)
        .await
        .assert_error(451, "authz.restrict.blacklist");
    TestEnv::eventually(1000, || async { public_from(&a, ip).await.status == 451 }).await;

    let id = restriction_id(&env, ip).await;
    let started = Instant::now();
    let deleted = staff
        .send(&a, "DELETE", &format!("restrictions?id={id}"), &Value::Null)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    TestEnv::eventually(1000, || async { public_from(&b, ip).await.status == 200 }).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    TestEnv::eventually(1000, || async { public_from(&a, ip).await.status == 200 }).await;
}
