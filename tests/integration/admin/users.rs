//! `/admin/users…` (Barong §9.2): the list and its filters, one user with what KYC review
//! needs, the changes of state, 2FA, email and role with their protections, comments, stored
//! data, and who may do what (the permissions table at the gate, the abilities inside).

use serde_json::{Value, json};

use super::Staff;
use crate::resource::bearer;
use crate::support::{Client, Response, Server, Session, TestEnv, TestUser};

const BALANCES: &str = "/api/v2/peatio/account/balances";

/// A staff member of `role` and the account behind it.
pub async fn staff_of(env: &TestEnv, server: &Server, role: &str) -> (Staff, TestUser) {
    let user = env.user(role).await;
    let session = server.login(&user).await;
    let bearer = bearer(server, &session).await;
    (Staff { bearer }, user)
}

/// A staff member's request with their session (cookie and CSRF), so the gate decides it on
/// the permissions table before the abilities are asked.
pub async fn through_gate(
    server: &Server,
    session: &Session,
    method: &str,
    route: &str,
    body: &Value,
) -> Response {
    Client::new()
        .request(method, server.admin(route))
        .session(session)
        .header("x-csrf-token", &session.csrf)
        .json(body)
        .send()
        .await
}

/// Grape reports a missing parameter as missing and empty at once: asserts every code.
pub trait Refusal {
    fn assert_errors(&self, status: u16, codes: &[&str]);
}

impl Refusal for Response {
    #[track_caller]
    fn assert_errors(&self, status: u16, codes: &[&str]) {
        assert_eq!(
            (self.status, self.errors()),
            (
                status,
                codes.iter().map(|c| c.to_string()).collect::<Vec<_>>()
            ),
            "body: {}",
            self.text()
        );
    }
}

/// The uids of a list answer, in order.
fn uids(body: &Value) -> Vec<String> {
    body.as_array()
        .expect("a list")
        .iter()
        .map(|u| u["uid"].as_str().unwrap().to_string())
        .collect()
}

pub async fn outbox(env: &TestEnv, name: &str, uid: &str) -> i64 {
    env.count(&format!(
        "SELECT count(*) FROM event_outbox WHERE name = '{name}' AND payload::text LIKE '%{uid}%'"
    ))
    .await
}

/// The `data` of the admin activity with a before/after about `uid` on `topic` (written in
/// batches: waits for it).
pub async fn admin_change(env: &TestEnv, topic: &str, uid: &str) -> Value {
    let query = format!(
        "SELECT count(*) FROM activities WHERE category = 'admin' AND topic = '{topic}'
         AND target_uid = '{uid}' AND data LIKE '%\"before\"%'"
    );
    TestEnv::eventually(5_000, || async { env.count(&query).await > 0 }).await;
    let client = env.store.client().await.unwrap();
    let data: String = client
        .query_one(
            &format!(
                "SELECT data FROM activities WHERE category = 'admin' AND topic = '{topic}'
                 AND target_uid = '{uid}' AND data LIKE '%\"before\"%' ORDER BY id DESC LIMIT 1"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    serde_json::from_str(&data).unwrap()
}

#[tokio::test]
async fn the_list_filters_orders_and_pages_users() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let (staff, me) = staff_of(&env, &server, "superadmin").await;
    let a = env.user("member").await;
    let b = env.user_with("member", "pending", false).await;
    let c = env.user("trader").await;
    // Two profiles in one country: the user is listed once.
    env.sql(&format!(
        "INSERT INTO profiles (user_id, country, city, state) VALUES ({0}, 'UA', 'Kyiv', 'submitted'), ({0}, 'UA', 'Lviv', 'drafted');
         UPDATE users SET created_at = '2020-01-01T00:00:00Z' WHERE id = {1};
         UPDATE users SET level = 3 WHERE id = {2}",
        a.id, c.id, b.id
    ))
    .await;

    let all = staff.get(&server, "users").await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(all.header("total"), Some("4"));
    assert_eq!(all.header("page"), Some("1"));
    assert_eq!(all.header("per-page"), Some("100"));
    assert_eq!(
        uids(&all.json()),
        vec![me.uid.clone(), a.uid.clone(), b.uid.clone(), c.uid.clone()]
    );
    let first = &all.json()[1];
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "data",
            "email",
            "level",
            "otp",
            "referral_uid",
            "role",
            "state",
            "uid"
        ]
    );

    let only = |query: &str| {
        let staff = &staff;
        let server = &server;
        let query = query.to_string();
        async move {
            let response = staff.get(server, &format!("users?{query}")).await;
            assert_eq!(response.status, 200, "{query}: {}", response.text());
            uids(&response.json())
        }
    };
    assert_eq!(only(&format!("uid={}", a.uid)).await, vec![a.uid.clone()]);
    assert_eq!(
        only(&format!("email={}", b.email.to_uppercase())).await,
        vec![b.uid.clone()]
    );
    assert_eq!(only("role=trader").await, vec![c.uid.clone()]);
    assert_eq!(only("country=UA").await, vec![a.uid.clone()]);
    assert_eq!(only("state=pending").await, vec![b.uid.clone()]);
    assert_eq!(only("level=3").await, vec![b.uid.clone()]);
    assert_eq!(only("to=1600000000").await, vec![c.uid.clone()]);
    assert_eq!(
        only("range=created&from=1600000000&role=trader").await,
        Vec::<String>::new()
    );
    assert_eq!(
        only("range=updated&to=1600000000").await,
        Vec::<String>::new()
    );
    // Unknown filters are ignored; the names are accepted and ignored.
    assert_eq!(only("first_name=x&colour=red").await.len(), 4);

    let mut by_email = vec![
        (me.email.clone(), me.uid.clone()),
        (a.email.clone(), a.uid.clone()),
        (b.email.clone(), b.uid.clone()),
        (c.email.clone(), c.uid.clone()),
    ];
    by_email.sort();
    by_email.reverse();
    assert_eq!(
        only("order_by=email&ordering=desc").await,
        by_email.into_iter().map(|(_, uid)| uid).collect::<Vec<_>>()
    );

    let paged = staff.get(&server, "users?limit=2&page=2").await;
    assert_eq!(paged.status, 200, "{}", paged.text());
    assert_eq!(uids(&paged.json()), vec![b.uid.clone(), c.uid.clone()]);
    assert_eq!(paged.header("total"), Some("4"));
    assert_eq!(paged.header("per-page"), Some("2"));
    assert_eq!(paged.header("page"), Some("2"));
    let link = paged.header("link").unwrap();
    assert!(link.contains("page=1&limit=2>; rel=\"first\""), "{link}");

    let extended = staff
        .get(&server, &format!("users?extended=true&uid={}", a.uid))
        .await;
    assert_eq!(extended.status, 200, "{}", extended.text());
    let entry = &extended.json()[0];
    assert_eq!(entry["profiles"].as_array().unwrap().len(), 2);
    assert_eq!(entry["profiles"][0]["city"], "Kyiv");
    assert!(
        entry["created_at"].as_str().unwrap().ends_with('Z'),
        "{entry}"
    );

    for (query, code) in [
        ("extended=maybe", "admin.user.non_boolean_extended"),
        ("level=high", "admin.user.non_integer_level"),
        ("range=deleted", "admin.user.invalid_range"),
        ("from=yesterday", "admin.user.non_integer_from"),
        ("to=1.5", "admin.user.non_integer_to"),
        ("ordering=up", "user.ordering.invalid_ordering"),
        (
            "order_by=otp_secret_encrypted",
            "user.ordering.invalid_attribute",
        ),
        ("order_by=email;drop", "user.ordering.invalid_attribute"),
        ("page=0", "non_positive_page"),
        ("page=x", "non_integer_page"),
        ("limit=101", "invalid_limit"),
        ("limit=x", "non_integer_limit"),
        // Postgres refuses NUL in text: a 4xx, never a server error.
        ("uid=a%00b", "admin.user.invalid_uid"),
    ] {
        staff
            .get(&server, &format!("users?{query}"))
            .await
            .assert_error(422, code);
    }
}

#[tokio::test]
async fn one_user_reads_unmasked_with_everything_a_reviewer_needs() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let (staff, _) = staff_of(&env, &server, "admin").await;
    let user = env.user("member").await;
    let secrets = env.secrets();
    let last_name = secrets.seal(
        portcullis::api::entities::contexts::LAST_NAME,
        b"Shevchenko",
    );
    let phone = secrets.seal(
        portcullis::api::entities::contexts::PHONE_NUMBER,
        b"380501234567",
    );
    env.sql(&format!(
        "INSERT INTO profiles (user_id, last_name_encrypted, country, state) VALUES ({0}, '{last_name}', 'UA', 'submitted');
         INSERT INTO phones (user_id, country, number_encrypted, number_index) VALUES ({0}, 'UA', '{phone}', 'x');
         INSERT INTO data_storages (user_id, title, data) VALUES ({0}, 'notes', '{{}}');
         UPDATE labels SET description = 'by signup' WHERE user_id = {0}",
        user.id
    ))
    .await;

    let read = staff.get(&server, &format!("users/{}", user.uid)).await;
    assert_eq!(read.status, 200, "{}", read.text());
    let body = read.json();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "comments",
            "created_at",
            "data",
            "data_storages",
            "documents",
            "email",
            "labels",
            "level",
            "otp",
            "phones",
            "profiles",
            "referral_uid",
            "role",
            "state",
            "uid",
            "updated_at"
        ]
    );
    assert_eq!(body["profiles"][0]["last_name"], "Shevchenko");
    assert_eq!(body["phones"][0]["number"], "380501234567");
    assert_eq!(body["labels"][0]["key"], "email");
    assert_eq!(body["labels"][0]["description"], "by signup");
    assert_eq!(body["data_storages"][0]["title"], "notes");
    assert_eq!(body["comments"], json!([]));

    staff
        .get(&server, "users/UNKNOWN000")
        .await
        .assert_error(404, "admin.user.doesnt_exist");
    staff
        .get(&server, "users/ID%00")
        .await
        .assert_error(404, "admin.user.doesnt_exist");
}

#[tokio::test]
async fn state_otp_and_email_changes_keep_barongs_protections_and_reach_the_gate_at_once() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let (admin, me) = staff_of(&env, &server, "admin").await;
    let (superadmin, _) = staff_of(&env, &server, "superadmin").await;
    let boss = env.user("superadmin").await;
    let member = env.user_with("member", "active", true).await;
    let session = server.login(&member).await;
    let key = env.api_key(&member.uid).await;
    let active_key = format!(
        "SELECT count(*) FROM api_keys WHERE kid = '{}' AND state = 'active'",
        key.kid
    );
    assert_eq!(env.count(&active_key).await, 1);

    // Nothing, or more than one thing, to change.
    for body in [
        json!({ "uid": member.uid }),
        json!({ "uid": member.uid, "state": "banned", "otp": false }),
    ] {
        admin
            .send(&server, "PUT", "users", &body)
            .await
            .assert_error(422, "admin.user.one_of_state_otp_email");
    }
    admin
        .send(&server, "PUT", "users", &json!({ "state": "banned" }))
        .await
        .assert_errors(422, &["admin.user.missing_uid", "admin.user.empty_uid"]);
    admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "state": " " }),
        )
        .await
        .assert_error(422, "admin.user.empty_state");
    admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "otp": "perhaps" }),
        )
        .await
        .assert_error(422, "admin.user.non_boolean_otp");
    admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": "UNKNOWN000", "state": "banned" }),
        )
        .await
        .assert_error(404, "admin.user.doesnt_exist");
    admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": boss.uid, "state": "banned" }),
        )
        .await
        .assert_error(422, "admin.user.superadmin_change");
    admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": me.uid, "state": "banned" }),
        )
        .await
        .assert_error(422, "admin.user.update_himself");
    admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "state": "active" }),
        )
        .await
        .assert_error(422, "admin.user.state_no_change");
    admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "state": "x".repeat(17) }),
        )
        .await
        .assert_error(422, "state.too_long");
    admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "otp": true }),
        )
        .await
        .assert_error(422, "admin.user.enable_2fa");

    // 2FA off, as the owner's own disable: the label gone, the keys inactive.
    let otp_off = admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "otp": false }),
        )
        .await;
    assert_eq!(otp_off.status, 200, "{}", otp_off.text());
    assert_eq!(otp_off.json()["otp"], false);
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM labels WHERE user_id = {} AND key = 'otp'",
            member.id
        ))
        .await,
        0
    );
    assert_eq!(env.count(&active_key).await, 0);
    admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "otp": "false" }),
        )
        .await
        .assert_error(422, "admin.user.otp_no_change");

    // A ban: the user's very next request through the gate is refused.
    let before = Client::new()
        .get(server.decision(BALANCES))
        .session(&session)
        .send()
        .await;
    assert_eq!(before.status, 200, "{}", before.text());
    let banned = admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "state": "banned" }),
        )
        .await;
    assert_eq!(banned.status, 200, "{}", banned.text());
    assert_eq!(banned.json()["state"], "banned");
    assert_eq!(banned.json()["uid"], member.uid.as_str());
    Client::new()
        .get(server.decision(BALANCES))
        .session(&session)
        .send()
        .await
        .assert_error(401, "authz.user_not_active");
    assert!(outbox(&env, "model.user.updated", &member.uid).await >= 2);
    let change = admin_change(&env, "users", &member.uid).await;
    assert_eq!(change["before"]["state"], "active", "{change}");
    assert_eq!(change["after"]["state"], "banned", "{change}");

    // The legacy twin: state or otp only, 201.
    admin
        .send(
            &server,
            "POST",
            "users/update",
            &json!({ "uid": member.uid, "email": "x@example.com" }),
        )
        .await
        .assert_error(422, "admin.user.one_of_state_otp");
    let back = admin
        .send(
            &server,
            "POST",
            "users/update",
            &json!({ "uid": member.uid, "state": "active" }),
        )
        .await;
    assert_eq!(back.status, 201, "{}", back.text());
    assert_eq!(back.json()["state"], "active");
    let allowed = Client::new()
        .get(server.decision(BALANCES))
        .session(&session)
        .send()
        .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());

    // Emails: only a superadmin changes them.
    let other = env.user("member").await;
    admin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "email": "new@example.com" }),
        )
        .await
        .assert_error(422, "superadmin.user.update_email");
    superadmin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "email": "not an email" }),
        )
        .await
        .assert_error(422, "email.invalid");
    superadmin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "email": other.email }),
        )
        .await
        .assert_error(422, "email.taken");
    superadmin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "email": member.email.to_uppercase() }),
        )
        .await
        .assert_error(422, "admin.user.email_no_change");
    let moved = superadmin
        .send(
            &server,
            "PUT",
            "users",
            &json!({ "uid": member.uid, "email": "moved@example.com" }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text());
    assert_eq!(moved.json()["email"], "moved@example.com");
}

#[tokio::test]
async fn roles_change_only_to_roles_the_permissions_know_and_only_through_a_superadmin() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let (superadmin, me) = staff_of(&env, &server, "superadmin").await;
    let (admin_staff, admin) = staff_of(&env, &server, "admin").await;
    let admin_session = server.login(&admin).await;
    let member = env.user("member").await;
    let session = server.login(&member).await;

    // The default permissions keep admins off the path (their abilities would let them).
    let body = json!({ "uid": member.uid, "role": "trader" });
    through_gate(&server, &admin_session, "POST", "users/role", &body)
        .await
        .assert_error(401, "authz.invalid_permission");
    // Where a table lets an admin through, the abilities would; but only a superadmin makes a
    // superadmin (not in Barong).
    env.sql("DELETE FROM permissions WHERE role = 'admin' AND path LIKE '%admin/users/role'")
        .await;
    let promote = json!({ "uid": member.uid, "role": "superadmin" });
    TestEnv::eventually(5_000, || async {
        admin_staff
            .send(&server, "POST", "users/role", &promote)
            .await
            .errors()
            == ["admin.user.superadmin_change"]
    })
    .await;

    superadmin
        .send(&server, "POST", "users/role", &json!({ "uid": member.uid }))
        .await
        .assert_errors(422, &["admin.user.missing_role", "admin.user.empty_role"]);
    superadmin
        .send(
            &server,
            "POST",
            "users/role",
            &json!({ "uid": member.uid, "role": "member" }),
        )
        .await
        .assert_error(422, "admin.user.role_no_change");
    superadmin
        .send(
            &server,
            "POST",
            "users/role",
            &json!({ "uid": member.uid, "role": "pirate" }),
        )
        .await
        .assert_error(422, "role.doesnt_exist");
    superadmin
        .send(
            &server,
            "POST",
            "users/role",
            &json!({ "uid": me.uid, "role": "member" }),
        )
        .await
        .assert_error(422, "admin.user.update_himself");
    let changed = superadmin
        .send(
            &server,
            "POST",
            "users/role",
            &json!({ "uid": member.uid, "role": "accountant" }),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json()["role"], "accountant");
    // The new role is what the gate decides on, at once.
    let token = bearer(&server, &session).await;
    let claims = crate::support::jwt_claims(token.trim_start_matches("Bearer "));
    assert_eq!(claims["role"], "accountant");
    let change = admin_change(&env, "users", &member.uid).await;
    assert_eq!(change["before"]["role"], "member", "{change}");
    assert_eq!(change["after"]["role"], "accountant", "{change}");
}

#[tokio::test]
async fn comments_and_stored_data_are_kept_by_staff_who_manage_users() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let (admin, me) = staff_of(&env, &server, "admin").await;
    let user = env.user("member").await;

    let long_title = "t".repeat(65);
    admin
        .send(
            &server,
            "POST",
            "users/comments",
            &json!({ "uid": user.uid, "title": long_title, "data": "d" }),
        )
        .await
        .assert_error(422, "admin.comments.title_too_long");
    admin
        .send(
            &server,
            "POST",
            "users/comments",
            &json!({ "uid": user.uid, "title": "t", "data": "d".repeat(65_536) }),
        )
        .await
        .assert_error(422, "admin.comments.data_too_long");
    admin
        .send(
            &server,
            "POST",
            "users/comments",
            &json!({ "uid": user.uid, "title": "t" }),
        )
        .await
        .assert_errors(422, &["admin.user.missing_data", "admin.user.empty_data"]);
    admin
        .send(
            &server,
            "POST",
            "users/comments",
            &json!({ "uid": "UNKNOWN000", "title": "t", "data": "d" }),
        )
        .await
        .assert_error(404, "admin.user.doesnt_exist");
    let created = admin
        .send(
            &server,
            "POST",
            "users/comments",
            &json!({ "uid": user.uid, "title": "Called", "data": "Asked for a new ID scan" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let comment = created.json()["comments"][0].clone();
    assert_eq!(comment["author_uid"], me.uid.as_str());
    assert_eq!(comment["title"], "Called");
    let id = comment["id"].as_i64().unwrap();

    let updated = admin
        .send(
            &server,
            "PUT",
            "users/comments",
            &json!({ "id": id, "title": "Called twice" }),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["comments"][0]["title"], "Called twice");
    assert_eq!(
        updated.json()["comments"][0]["data"],
        "Asked for a new ID scan"
    );
    admin
        .send(
            &server,
            "PUT",
            "users/comments",
            &json!({ "id": 999_999, "title": "x" }),
        )
        .await
        .assert_error(404, "record.not_found");
    admin
        .send(&server, "PUT", "users/comments", &json!({ "id": "abc" }))
        .await
        .assert_error(422, "admin.user.non_integer_id");
    let change = admin_change(&env, "comments", &user.uid).await;
    assert!(change.get("after").is_some(), "{change}");

    let deleted = admin
        .send(
            &server,
            "DELETE",
            &format!("users/comments?id={id}"),
            &json!({}),
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(deleted.json()["comments"], json!([]));
    admin
        .send(
            &server,
            "DELETE",
            &format!("users/comments?id={id}"),
            &json!({}),
        )
        .await
        .assert_error(404, "record.not_found");

    // Stored data.
    env.sql(&format!(
        "INSERT INTO data_storages (user_id, title, data) VALUES ({}, 'Notes', '{{\"a\":1}}')",
        user.id
    ))
    .await;
    let dropped = admin
        .send(
            &server,
            "DELETE",
            &format!("users/data_storage?uid={}&title=notes", user.uid),
            &json!({}),
        )
        .await;
    assert_eq!(dropped.status, 200, "{}", dropped.text());
    assert_eq!(dropped.json()["data_storages"], json!([]));
    admin
        .send(
            &server,
            "DELETE",
            &format!("users/data_storage?uid={}&title=notes", user.uid),
            &json!({}),
        )
        .await
        .assert_error(404, "admin.storage.doesnt_exist");
    admin
        .send(
            &server,
            "DELETE",
            "users/data_storage?uid=UNKNOWN000&title=notes",
            &json!({}),
        )
        .await
        .assert_error(404, "admin.user.doesnt_exist");
    admin
        .send(
            &server,
            "DELETE",
            &format!("users/data_storage?uid={}", user.uid),
            &json!({}),
        )
        .await
        .assert_errors(422, &["admin.user.missing_title", "admin.user.empty_title"]);
}

#[tokio::test]
async fn the_gate_and_the_abilities_decide_which_role_does_what() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let mut sessions = Vec::new();
    for role in ["support", "accountant", "technical", "member"] {
        let account = env.user(role).await;
        sessions.push(server.login(&account).await);
    }
    let [support, accountant, technical, member] = &sessions[..] else {
        unreachable!()
    };
    let none = json!({});

    // Reading users: every staff role reads them; members never pass the gate.
    for session in [support, accountant, technical] {
        let list = through_gate(&server, session, "GET", "users", &none).await;
        assert_eq!(list.status, 200, "{}", list.text());
    }
    through_gate(&server, member, "GET", "users", &none)
        .await
        .assert_error(401, "authz.invalid_permission");
    // The review queue is dropped for technical and accountant by the permissions table.
    for session in [technical, accountant] {
        through_gate(&server, session, "GET", "users/documents/pending", &none)
            .await
            .assert_error(401, "authz.invalid_permission");
    }

    // Support manages users through the legacy update the table lets through…
    let lock = json!({ "uid": user.uid, "state": "locked" });
    let locked = through_gate(&server, support, "POST", "users/update", &lock).await;
    assert_eq!(locked.status, 201, "{}", locked.text());
    // …but only reads labels: once the table lets it reach them, the abilities refuse.
    let label = json!({ "uid": user.uid, "key": "vip", "value": "gold" });
    through_gate(&server, support, "POST", "users/labels", &label)
        .await
        .assert_error(401, "authz.invalid_permission");
    env.sql(
        "INSERT INTO permissions (role, verb, path, action) VALUES
           ('support', 'all', 'api/v2/auth/admin/users/labels', 'accept'),
           ('accountant', 'all', 'api/v2/auth/admin/users', 'accept')",
    )
    .await;
    let not_permitted = vec!["admin.ability.not_permitted".to_string()];
    TestEnv::eventually(5_000, || async {
        through_gate(&server, support, "POST", "users/labels", &label)
            .await
            .errors()
            == not_permitted
    })
    .await;
    let counts = through_gate(&server, support, "GET", "users/labels/list", &none).await;
    assert_eq!(counts.status, 200, "{}", counts.text());

    // The accountant reads everything and changes nothing.
    let activate = json!({ "uid": user.uid, "state": "active" });
    TestEnv::eventually(5_000, || async {
        through_gate(&server, accountant, "PUT", "users", &activate)
            .await
            .errors()
            == not_permitted
    })
    .await;
    let comment = json!({ "uid": user.uid, "title": "t", "data": "d" });
    let scoped = json!({ "uid": user.uid, "key": "vip", "value": "gold", "scope": "public" });
    for (method, route, body) in [
        ("POST", "users/update".to_string(), &activate),
        ("POST", "users/comments".to_string(), &comment),
        ("PUT", "users/comments".to_string(), &json!({ "id": 1 })),
        ("DELETE", "users/comments?id=1".to_string(), &none),
        (
            "DELETE",
            format!("users/data_storage?uid={}&title=x", user.uid),
            &none,
        ),
        ("POST", "users/labels".to_string(), &label),
        ("PUT", "users/labels".to_string(), &scoped),
        ("POST", "users/labels/update".to_string(), &scoped),
        (
            "DELETE",
            format!("users/labels?uid={}&key=vip&scope=public", user.uid),
            &none,
        ),
    ] {
        through_gate(&server, accountant, method, &route, body)
            .await
            .assert_error(401, "admin.ability.not_permitted");
    }
    let read = through_gate(
        &server,
        accountant,
        "GET",
        &format!("users/{}", user.uid),
        &none,
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json()["state"], "locked");
}
