//! `POST /admin/explain`: the decision on a user's or a key's request, step by step with the
//! rows that decided; the same answer the decision front gives for the same request.

use serde_json::{Value, json};

use super::Staff;
use crate::support::{Client, Server, Session, TestEnv};

const BALANCES: &str = "/api/v2/peatio/account/balances";

async fn explain(staff: &Staff, server: &Server, body: Value) -> Value {
    let answer = staff.send(server, "POST", "explain", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

/// The steps' names, in order.
fn step_names(explanation: &Value) -> Vec<String> {
    explanation["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect()
}

/// The decision front's answer to `path` with `session`: status and code.
async fn front(server: &Server, session: &Session, path: &str) -> (u16, Option<String>) {
    let answer = Client::new()
        .get(server.decision(path))
        .session(session)
        .send()
        .await;
    let code = (answer.status != 200).then(|| answer.errors()[0].clone());
    (answer.status, code)
}

#[tokio::test]
async fn explain_names_the_rows_that_decided_and_agrees_with_the_front() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let member = env.user("member").await;
    let session = server.login(&member).await;
    let admin_user = env.user("admin").await;
    let admin = Staff::new_as(&server, &admin_user).await;

    // An allow: the member's ACCEPT row on the account API.
    let allowed = explain(
        &admin,
        &server,
        json!({ "method": "get", "path": BALANCES, "uid": member.uid }),
    )
    .await;
    assert_eq!(allowed["decision"], "allow");
    assert_eq!(allowed["status"], 200);
    assert_eq!(allowed["error"], Value::Null);
    assert_eq!(
        step_names(&allowed),
        ["request", "restrictions", "rules", "subject", "permissions"]
    );
    assert_eq!(allowed["steps"][1]["checked"], false, "no address given");
    assert_eq!(allowed["steps"][2]["route"], "session");
    assert_eq!(allowed["steps"][3]["role"], "member");
    let accepted = &allowed["rows"]["permissions"][0];
    assert_eq!(accepted["role"], "member");
    assert_eq!(accepted["action"], "ACCEPT");
    assert_eq!(accepted["path"], "api/v2/peatio/account");
    assert_eq!(allowed["steps"][4]["accept"], json!([accepted["id"]]));

    // A DROP beats an ACCEPT: the admin's DROP row on the permissions endpoint is named.
    let dropped = explain(
        &admin,
        &server,
        json!({ "method": "PUT", "path": "/api/v2/auth/admin/permissions", "uid": admin_user.uid }),
    )
    .await;
    assert_eq!(dropped["decision"], "deny");
    assert_eq!(dropped["status"], 401);
    assert_eq!(dropped["error"], "authz.invalid_permission");
    let rows = dropped["rows"]["permissions"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["action"] == "DROP" && r["path"] == "api/v2/auth/admin/permissions"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r["action"] == "ACCEPT" && r["path"] == "api/v2")
    );

    // The same requests, through the decision front, get the same answers.
    for path in [
        BALANCES,
        "/api/v2/auth/admin/users",
        "/api/v2/auth/management/users",
        "/api/v2/auth/identity/ping",
        "/api/v2/peatio/account/../admin/members",
    ] {
        let traced = explain(
            &admin,
            &server,
            json!({ "method": "GET", "path": path, "uid": member.uid }),
        )
        .await;
        let (status, code) = front(&server, &session, path).await;
        assert_eq!(traced["status"], status, "{path}: {traced}");
        assert_eq!(traced["error"].as_str().map(str::to_string), code, "{path}");
    }
    let passed = explain(
        &admin,
        &server,
        json!({ "method": "GET", "path": "/api/v2/auth/identity/ping", "uid": member.uid }),
    )
    .await;
    assert_eq!(
        passed["steps"][2],
        json!({ "step": "rules", "route": "pass", "rule": "api/v2/auth/identity" })
    );

    // A restriction on the address given: its row, its code.
    env.restrict("blacklist", "ip", "10.9.8.7", Some(471)).await;
    TestEnv::eventually(2_000, || async {
        let traced = explain(
            &admin,
            &server,
            json!({ "method": "GET", "path": BALANCES, "uid": member.uid, "ip": "10.9.8.7" }),
        )
        .await;
        traced["status"] == 471
    })
    .await;
    let restricted = explain(
        &admin,
        &server,
        json!({ "method": "GET", "path": BALANCES, "uid": member.uid, "ip": "10.9.8.7", "user_agent": "curl" }),
    )
    .await;
    assert_eq!(restricted["error"], "authz.restrict.blacklist");
    assert_eq!(restricted["rows"]["restrictions"][0]["value"], "10.9.8.7");
    assert_eq!(step_names(&restricted), ["request", "restrictions"]);

    // A banned user, as the gate sees them.
    env.sql(&format!(
        "UPDATE users SET state = 'banned' WHERE uid = '{}'",
        member.uid
    ))
    .await;
    TestEnv::eventually(2_000, || async {
        explain(
            &admin,
            &server,
            json!({ "method": "GET", "path": BALANCES, "uid": member.uid }),
        )
        .await["error"]
            == "authz.user_not_active"
    })
    .await;
}

#[tokio::test]
async fn a_key_is_explained_with_its_holder_and_bad_questions_are_refused() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let no_2fa = env.user("member").await;
    let key = env.api_key(&no_2fa.uid).await;
    let with_2fa = env.user_with("member", "active", true).await;
    let good = env.api_key(&with_2fa.uid).await;
    let superadmin = Staff::new(&env, &server, "superadmin").await;

    let refused = explain(
        &superadmin,
        &server,
        json!({ "method": "GET", "path": BALANCES, "kid": key.kid }),
    )
    .await;
    assert_eq!(refused["error"], "authz.disabled_2fa");
    assert_eq!(
        step_names(&refused),
        ["request", "restrictions", "rules", "key", "subject"]
    );
    assert_eq!(refused["steps"][2]["route"], "api_key");
    assert_eq!(
        refused["steps"][3],
        json!({ "step": "key", "kid": key.kid, "active": true })
    );
    let allowed = explain(
        &superadmin,
        &server,
        json!({ "method": "GET", "path": BALANCES, "kid": good.kid }),
    )
    .await;
    assert_eq!(allowed["decision"], "allow", "{allowed}");
    let unknown = explain(
        &superadmin,
        &server,
        json!({ "method": "GET", "path": BALANCES, "kid": "0000000000000000" }),
    )
    .await;
    assert_eq!(unknown["error"], "authz.unexistent_apikey");

    let neither = superadmin
        .send(&server, "POST", "explain", &json!({ "path": BALANCES }))
        .await;
    assert_eq!(neither.status, 422);
    assert_eq!(
        neither.errors(),
        [
            "admin.explain.missing_method",
            "admin.explain.empty_method",
            "admin.explain.one_of_uid_kid"
        ]
    );
    let both = superadmin
        .send(
            &server,
            "POST",
            "explain",
            &json!({ "method": "GET", "path": BALANCES, "uid": no_2fa.uid, "kid": key.kid, "ip": "999.1.1.1" }),
        )
        .await;
    assert_eq!(
        both.errors(),
        ["admin.explain.one_of_uid_kid", "admin.explain.invalid_ip"]
    );
    let odd_path = explain(
        &superadmin,
        &server,
        json!({ "method": "GET", "path": "/api/v2/peatio/%2e%2e/admin", "uid": no_2fa.uid }),
    )
    .await;
    assert_eq!(odd_path["status"], 400);
    assert_eq!(odd_path["error"], "authz.invalid_path");

    // Support staff never reach it.
    Staff::new(&env, &server, "support")
        .await
        .send(
            &server,
            "POST",
            "explain",
            &json!({ "method": "GET", "path": BALANCES, "uid": no_2fa.uid }),
        )
        .await
        .assert_error(401, "authz.invalid_permission");
}
