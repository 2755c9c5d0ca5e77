//! Each default staff role against both checks, through the gate as the fronts see it (a
//! session with its CSRF token): the permissions table of `policies/permissions.toml` first,
//! then the abilities of `policies/abilities.toml`. A refusal by the table is
//! `authz.invalid_permission`; by the abilities, `admin.ability.not_permitted`.

use serde_json::{Value, json};

use crate::support::{Client, Server, Session, TestEnv};

const TABLE: &str = "authz.invalid_permission";
const ABILITY: &str = "admin.ability.not_permitted";

async fn call(
    server: &Server,
    session: &Session,
    method: &str,
    route: &str,
    body: Value,
) -> (u16, Vec<String>) {
    let mut request = Client::new()
        .request(method, server.admin(route))
        .session(session)
        .header("x-csrf-token", &session.csrf);
    if method != "GET" {
        request = request.json(&body);
    }
    let answer = request.send().await;
    let codes = if answer.status >= 400 {
        answer.errors()
    } else {
        Vec::new()
    };
    (answer.status, codes)
}

/// `Ok` for an answer past both checks (any status but their 401s), or the refusal's code.
fn outcome((status, codes): (u16, Vec<String>)) -> Result<(), String> {
    match (status, codes.first().map(String::as_str)) {
        (401, Some(code)) if code == TABLE || code == ABILITY => Err(code.to_string()),
        (status, _) if status < 500 => Ok(()),
        (status, codes) => panic!("{status} {codes:?}"),
    }
}

#[tokio::test]
async fn each_default_role_meets_the_table_then_its_abilities() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let target = env.user("member").await;
    let roles = [
        "superadmin",
        "admin",
        "accountant",
        "compliance",
        "technical",
        "support",
    ];
    // (method, route, body, expected per role in `roles` order: None = allowed)
    let cases: Vec<(&str, String, Value, [Option<&str>; 6])> = vec![
        (
            "GET",
            "users".into(),
            json!({}),
            [None, None, None, None, None, None],
        ),
        (
            "GET",
            "permissions".into(),
            json!({}),
            [
                None,
                Some(TABLE),
                Some(TABLE),
                Some(TABLE),
                Some(TABLE),
                Some(TABLE),
            ],
        ),
        (
            "POST",
            "restrictions".into(),
            json!({ "category": "blacklist", "scope": "ip", "value": "10.0.0.1", "state": "disabled" }),
            [None, None, Some(TABLE), Some(TABLE), None, Some(TABLE)],
        ),
        (
            "POST",
            "users/role".into(),
            json!({ "uid": target.uid, "role": "trader" }),
            [
                None,
                Some(TABLE),
                Some(TABLE),
                Some(TABLE),
                Some(TABLE),
                Some(TABLE),
            ],
        ),
        (
            "GET",
            "activities".into(),
            json!({}),
            [None, None, None, Some(ABILITY), None, None],
        ),
        (
            "GET",
            "activities/admin".into(),
            json!({}),
            [
                None,
                Some(TABLE),
                Some(TABLE),
                Some(TABLE),
                Some(TABLE),
                Some(TABLE),
            ],
        ),
        (
            "PUT",
            "profiles".into(),
            json!({ "uid": target.uid, "state": "verified" }),
            [None, None, Some(TABLE), None, Some(TABLE), Some(TABLE)],
        ),
        (
            "GET",
            format!("api_keys?uid={}", target.uid),
            json!({}),
            [
                None,
                None,
                Some(ABILITY),
                Some(ABILITY),
                None,
                Some(ABILITY),
            ],
        ),
        (
            "POST",
            "users/update".into(),
            json!({ "uid": target.uid, "state": "active" }),
            [None, None, Some(TABLE), None, Some(TABLE), None],
        ),
    ];
    let mut failures = Vec::new();
    for (index, role) in roles.iter().enumerate() {
        let staff = env.user(role).await;
        let session = server.login(&staff).await;
        for (method, route, body, expected) in &cases {
            // Distinct values per role, so that creations never collide.
            let mut body = body.clone();
            if body.get("value").is_some() {
                body["value"] = json!(format!("10.0.0.{}", index + 1));
            }
            let got = outcome(call(&server, &session, method, route, body).await);
            let want = expected[index].map(str::to_string).map_or(Ok(()), Err);
            if got != want {
                failures.push(format!(
                    "{role} {method} {route}: got {got:?}, want {want:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
