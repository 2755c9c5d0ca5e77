//! The Back Office token API (seed 003) end to end: sign-in with and without 2FA (the code read
//! from an SMTP server), the access token on the admin API and at a decision front, refresh
//! rotation, reuse of a spent refresh token revoking its sign-in, sign-out, expiry, a member
//! refused, and every attempt limit with its lock-out, across two nodes.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::smtp::{SmtpSink, WAIT};
use crate::support::{Client, Response, Server, TestEnv, TestUser, jwt_claims};

const BALANCES: &str = "/api/v2/peatio/account/balances";

/// `/api/v2/<route>`, where the Back Office API is served by default.
fn url(server: &Server, route: &str) -> String {
    server.url(&format!("/api/v2/{route}"))
}

async fn post(server: &Server, route: &str, body: Value, from: &str) -> Response {
    Client::new()
        .post(url(server, route))
        .header("x-forwarded-for", from)
        .json(&body)
        .send()
        .await
}

async fn signin_as(server: &Server, email: &str, password: &str, from: &str) -> Response {
    post(
        server,
        "signin",
        json!({"email": email, "password": password}),
        from,
    )
    .await
}

async fn signin(server: &Server, user: &TestUser) -> Response {
    signin_as(server, &user.email, &user.password, "10.1.1.1").await
}

/// A refresh from an address of its own (the limits have tests of their own).
async fn refresh(server: &Server, token: &str) -> Response {
    let [a, b, c] = portcullis::crypto::random_bytes::<3>();
    let from = format!("10.{a}.{b}.{c}");
    post(server, "refresh", json!({"refreshToken": token}), &from).await
}

async fn signout(server: &Server, access: &str) -> Response {
    Client::new()
        .post(url(server, "signout"))
        .header("authorization", &format!("Bearer {access}"))
        .send()
        .await
}

/// (access token, refresh token) of a successful answer, after checking its shape.
fn tokens(answer: &Response) -> (String, String) {
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    for name in ["accessToken", "refreshToken"] {
        let token = &body[name];
        assert!(
            token["token"].as_str().is_some_and(|t| t.len() > 30),
            "{body}"
        );
        for time in ["createdAt", "expiresAt"] {
            let text = token[time]
                .as_str()
                .unwrap_or_else(|| panic!("{name}.{time} in {body}"));
            assert!(
                text.ends_with("+00:00") && text.len() == 25,
                "{name}.{time}: {text}"
            );
        }
    }
    (
        body["accessToken"]["token"].as_str().unwrap().to_string(),
        body["refreshToken"]["token"].as_str().unwrap().to_string(),
    )
}

/// Two nodes of one environment, and an admin.
async fn two_nodes_and_an_admin() -> (TestEnv, Server, Server, TestUser) {
    let env = TestEnv::new().await;
    let node_a = env.start().await;
    let node_b = env.start().await;
    let admin = env.user("admin").await;
    (env, node_a, node_b, admin)
}

async fn abilities(server: &Server, access: &str) -> Response {
    Client::new()
        .get(server.admin("abilities"))
        .header("authorization", &format!("Bearer {access}"))
        .send()
        .await
}

async fn decide(server: &Server, access: &str) -> Response {
    Client::new()
        .get(server.decision(BALANCES))
        .header("authorization", &format!("Bearer {access}"))
        .send()
        .await
}

/// The one activity of `user` with this action: (result, data).
async fn activity(env: &TestEnv, user: &TestUser, action: &str) -> Vec<(String, Option<String>)> {
    let client = env.store.client().await.unwrap();
    client
        .query(
            "SELECT result, data FROM activities WHERE user_id = $1 AND topic = 'backoffice'
             AND action = $2 ORDER BY id",
            &[&user.id, &action],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn a_staff_member_signs_in_and_the_access_token_works_on_the_admin_api_and_at_the_decision_front()
 {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let admin = env.user("admin").await;

    let answer = signin(&server, &admin).await;
    assert_eq!(answer.json()["2faRequired"], false, "{}", answer.text());
    assert!(answer.json().get("2faDetails").is_none());
    let (access, refresh_token) = tokens(&answer);
    assert_ne!(access, refresh_token);

    // A short RS256 JWT naming its key, its user and its sign-in.
    let header = jwt_claims(&format!("x.{}", access.split('.').next().unwrap()));
    assert_eq!(
        (header["alg"].as_str(), header["kid"].is_string()),
        (Some("RS256"), true)
    );
    let claims = jwt_claims(&access);
    assert_eq!(claims["sub"], "backoffice");
    assert_eq!(claims["uid"], admin.uid);
    assert_eq!(claims["role"], "admin");
    assert!(claims["sid"].is_string());
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 900);

    // The admin API, with the admin's abilities.
    let answer = abilities(&server, &access).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer.json()["manage"]
            .as_array()
            .unwrap()
            .contains(&json!("User"))
    );
    // A decision front: allowed, the upstream gets a session token of the same user.
    let decided = decide(&server, &access).await;
    assert_eq!(decided.status, 200, "{}", decided.text());
    let forwarded = jwt_claims(decided.header("authorization").unwrap());
    assert_eq!(
        (forwarded["sub"].as_str(), forwarded["uid"].as_str()),
        (Some("session"), Some(admin.uid.as_str()))
    );

    // Stored hashed: the refresh token itself is nowhere in the database.
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM backoffice_refresh_tokens WHERE user_id = {} AND digest <> '{refresh_token}'",
            admin.id
        ))
        .await,
        1
    );
    assert_eq!(
        activity(&env, &admin, "signin").await,
        [("succeed".to_string(), None)]
    );
}

#[tokio::test]
async fn a_member_a_wrong_password_and_an_unknown_account_get_the_same_401() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let member = env.user("member").await;
    let admin = env.user("admin").await;
    let banned = env.user_with("admin", "banned", false).await;

    for (email, password) in [
        (member.email.as_str(), member.password.as_str()),
        (admin.email.as_str(), "Wrong-passw0rd"),
        ("nobody-here@example.com", "Iequ4geiEWQw!"),
        (banned.email.as_str(), banned.password.as_str()),
    ] {
        signin_as(&server, email, password, "10.2.2.2")
            .await
            .assert_error(401, "backoffice.invalid_credentials");
    }
    assert_eq!(
        activity(&env, &member, "signin").await,
        [(
            "failed".to_string(),
            Some(r#"{"reason":"backoffice.not_staff_or_not_active"}"#.to_string())
        )]
    );
    assert_eq!(
        env.count("SELECT count(*) FROM backoffice_refresh_tokens")
            .await,
        0
    );

    let missing = post(&server, "signin", json!({"email": ""}), "10.2.2.3").await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.errors(),
        [
            "backoffice.empty_email",
            "backoffice.missing_password",
            "backoffice.empty_password"
        ]
    );

    // The staff roles are configurable: here only superadmins may sign in.
    let strict = env
        .start_with("[backoffice]\nroles = [\"superadmin\"]")
        .await;
    signin(&strict, &admin)
        .await
        .assert_error(401, "backoffice.invalid_credentials");
    let superadmin = env.user("superadmin").await;
    tokens(&signin(&strict, &superadmin).await);
}

/// The 6-digit code of the latest Back Office email to `user`.
async fn emailed_code(sink: &SmtpSink, user: &TestUser, count: usize) -> String {
    let messages = sink.wait_for(&user.email, count, WAIT).await;
    let message = messages.last().unwrap();
    assert_eq!(message.subject(), "Back Office Sign-in Code");
    let text = message.text_body();
    let code = text
        .split_whitespace()
        .find(|word| word.len() == 6 && word.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_string();
    assert!(text.contains("10.1.1.1"), "{text}");
    code
}

#[tokio::test]
async fn with_2fa_on_the_emailed_code_completes_the_sign_in_once() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new().await;
    let server = env.start_with(&sink.mail_config()).await;
    let admin = env.user_with("admin", "active", true).await;

    let answer = signin(&server, &admin).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["2faRequired"], true);
    assert!(body.get("accessToken").is_none() && body.get("refreshToken").is_none());
    let details = &body["2faDetails"];
    assert_eq!(details["provider"], "email");
    let token = details["token"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&token).is_ok(), "{token}");
    assert!(details["expiresAt"].as_str().unwrap().ends_with("+00:00"));
    let code = emailed_code(&sink, &admin, 1).await;

    // The code is neither published as an event nor kept once the email is sent.
    assert_eq!(
        env.count("SELECT count(*) FROM event_outbox WHERE name LIKE '%backoffice%'")
            .await,
        0
    );
    TestEnv::eventually(5_000, || async {
        env.count(&format!(
            "SELECT count(*) FROM mail_queue WHERE event_name = 'system.backoffice.2fa.code'
             AND sent_at IS NOT NULL AND NOT payload::text LIKE '%{code}%'"
        ))
        .await
            == 1
    })
    .await;

    let wrong = if code == "000000" { "111111" } else { "000000" };
    post(
        &server,
        "2fa/confirm",
        json!({"token": token, "code": wrong}),
        "10.1.1.1",
    )
    .await
    .assert_error(401, "backoffice.invalid_2fa_code");
    let confirmed = post(
        &server,
        "2fa/confirm",
        json!({"token": token, "code": code}),
        "10.1.1.1",
    )
    .await;
    let (access, _) = tokens(&confirmed);
    assert_eq!(abilities(&server, &access).await.status, 200);
    // Accepted once.
    post(
        &server,
        "2fa/confirm",
        json!({"token": token, "code": code}),
        "10.1.1.1",
    )
    .await
    .assert_error(401, "backoffice.invalid_2fa_token");
    assert_eq!(
        activity(&env, &admin, "signin::2fa").await,
        [("succeed".to_string(), None)]
    );

    let missing = post(&server, "2fa/confirm", json!({"token": token}), "10.1.1.1").await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.errors(),
        ["backoffice.missing_code", "backoffice.empty_code"]
    );
}

#[tokio::test]
async fn a_2fa_token_expires() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new().await;
    let server = env
        .start_with(&format!(
            "{}\n[backoffice]\ntwo_factor_ttl = 1",
            sink.mail_config()
        ))
        .await;
    let admin = env.user_with("admin", "active", true).await;
    let answer = signin(&server, &admin).await;
    let token = answer.json()["2faDetails"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let code = emailed_code(&sink, &admin, 1).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    post(
        &server,
        "2fa/confirm",
        json!({"token": token, "code": code}),
        "10.1.1.1",
    )
    .await
    .assert_error(401, "backoffice.invalid_2fa_token");
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_revokes_the_sign_in_on_every_node() {
    let (env, node_a, node_b, admin) = two_nodes_and_an_admin().await;
    let (access_1, refresh_1) = tokens(&signin(&node_a, &admin).await);
    let family = jwt_claims(&access_1)["sid"].as_str().unwrap().to_string();

    // Rotation: a new pair of the same sign-in; the old access token lives on until it expires.
    let (access_2, refresh_2) = tokens(&refresh(&node_b, &refresh_1).await);
    assert_ne!(refresh_2, refresh_1);
    assert_eq!(jwt_claims(&access_2)["sid"], family.as_str());
    assert_eq!(abilities(&node_a, &access_2).await.status, 200);
    let (access_3, refresh_3) = tokens(&refresh(&node_a, &refresh_2).await);
    assert_eq!(decide(&node_b, &access_3).await.status, 200);

    // The spent first token again: someone else holds this sign-in. Everything of it ends.
    refresh(&node_b, &refresh_1)
        .await
        .assert_error(401, "backoffice.refresh_token_reused");
    refresh(&node_a, &refresh_3)
        .await
        .assert_error(401, "backoffice.invalid_refresh_token");
    for node in [&node_a, &node_b] {
        decide(node, &access_3)
            .await
            .assert_error(401, "authz.invalid_session");
        assert_eq!(abilities(node, &access_2).await.status, 401);
    }
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM backoffice_refresh_tokens WHERE family = '{family}' AND revoked_at IS NULL"
        ))
        .await,
        0
    );
    let logged = activity(&env, &admin, "refresh").await;
    assert_eq!(
        logged.last().unwrap(),
        &(
            "failed".to_string(),
            Some(r#"{"reason":"backoffice.refresh_token_reused"}"#.to_string())
        )
    );
    assert_eq!(logged.len(), 3);

    // Another sign-in of the same user is not touched.
    let (other, other_refresh) = tokens(&signin(&node_b, &admin).await);
    assert_eq!(abilities(&node_a, &other).await.status, 200);
    tokens(&refresh(&node_a, &other_refresh).await);

    let missing = post(&node_a, "refresh", json!({}), "10.1.1.1").await;
    assert_eq!(
        missing.errors(),
        [
            "backoffice.missing_refreshToken",
            "backoffice.empty_refreshToken"
        ]
    );
    refresh(&node_a, "not-a-token")
        .await
        .assert_error(401, "backoffice.invalid_refresh_token");
}

#[tokio::test]
async fn signout_ends_the_sign_in_on_every_node() {
    let (env, node_a, node_b, admin) = two_nodes_and_an_admin().await;
    let (access, refresh_token) = tokens(&signin(&node_a, &admin).await);
    assert_eq!(decide(&node_b, &access).await.status, 200);

    let out = signout(&node_b, &access).await;
    assert_eq!(out.status, 200, "{}", out.text());
    decide(&node_a, &access)
        .await
        .assert_error(401, "authz.invalid_session");
    assert_eq!(abilities(&node_b, &access).await.status, 401);
    refresh(&node_a, &refresh_token)
        .await
        .assert_error(401, "backoffice.invalid_refresh_token");
    signout(&node_a, &access)
        .await
        .assert_error(401, "backoffice.invalid_access_token");
    Client::new()
        .post(url(&node_a, "signout"))
        .send()
        .await
        .assert_error(401, "backoffice.invalid_access_token");
    assert_eq!(activity(&env, &admin, "signout").await.len(), 1);
}

#[tokio::test]
async fn expired_tokens_answer_401() {
    let env = TestEnv::with_config("[backoffice]\naccess_ttl = 1\nrefresh_ttl = 1").await;
    let server = env.start().await;
    let admin = env.user("admin").await;
    let (access, refresh_token) = tokens(&signin(&server, &admin).await);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(abilities(&server, &access).await.status, 401);
    decide(&server, &access)
        .await
        .assert_error(401, "authz.invalid_session");
    signout(&server, &access)
        .await
        .assert_error(401, "backoffice.invalid_access_token");
    refresh(&server, &refresh_token)
        .await
        .assert_error(401, "backoffice.invalid_refresh_token");
}

#[tokio::test]
async fn a_banned_users_tokens_stop_at_once_and_a_refresh_ends_the_sign_in() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let admin = env.user("admin").await;
    let (access, refresh_token) = tokens(&signin(&server, &admin).await);
    env.sql(&format!(
        "UPDATE users SET state = 'banned' WHERE id = {}",
        admin.id
    ))
    .await;
    TestEnv::eventually(1_000, || async {
        abilities(&server, &access).await.status == 401
    })
    .await;
    refresh(&server, &refresh_token)
        .await
        .assert_error(401, "backoffice.invalid_refresh_token");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM backoffice_refresh_tokens WHERE user_id = {} AND revoked_at IS NULL",
            admin.id
        ))
        .await,
        0
    );
    // Unbanned, the old sign-in stays ended.
    env.sql(&format!(
        "UPDATE users SET state = 'active' WHERE id = {}",
        admin.id
    ))
    .await;
    refresh(&server, &refresh_token)
        .await
        .assert_error(401, "backoffice.invalid_refresh_token");
}

/// The seconds of a 429's Retry-After, after checking the code.
fn locked_for(answer: &Response) -> u64 {
    answer.assert_error(429, "backoffice.too_many_attempts");
    answer
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After")
}

#[tokio::test]
async fn five_sign_ins_a_minute_then_the_account_is_locked_out_on_every_node() {
    let env = TestEnv::with_config("[backoffice]\nlockout = 120").await;
    let node_a = env.start().await;
    let node_b = env.start().await;
    let admin = env.user("admin").await;
    for attempt in 0..5 {
        let node = if attempt % 2 == 0 { &node_a } else { &node_b };
        // From five addresses: the account's own limit is what trips.
        signin_as(
            node,
            &admin.email,
            "Wrong-passw0rd",
            &format!("10.3.0.{attempt}"),
        )
        .await
        .assert_error(401, "backoffice.invalid_credentials");
    }
    let locked = signin_as(&node_b, &admin.email, "Wrong-passw0rd", "10.3.1.1").await;
    assert!((110..=120).contains(&locked_for(&locked)));
    // Locked out: even the right password, on the other node, from another address.
    let locked = signin_as(&node_a, &admin.email, &admin.password, "10.3.1.2").await;
    assert!(locked_for(&locked) <= 120);
    // Another account is not locked.
    let other = env.user("admin").await;
    tokens(&signin_as(&node_a, &other.email, &other.password, "10.3.1.3").await);
}

#[tokio::test]
async fn five_sign_ins_a_minute_then_the_address_is_locked_out() {
    let env = TestEnv::new().await;
    let node_a = env.start().await;
    let node_b = env.start().await;
    for n in 0..5 {
        let node = if n % 2 == 0 { &node_a } else { &node_b };
        signin_as(
            node,
            &format!("nobody-{n}@example.com"),
            "Wrong-passw0rd",
            "10.4.0.1",
        )
        .await
        .assert_error(401, "backoffice.invalid_credentials");
    }
    let admin = env.user("admin").await;
    let locked = signin_as(&node_b, &admin.email, &admin.password, "10.4.0.1").await;
    assert!(
        (890..=900).contains(&locked_for(&locked)),
        "the default lock-out"
    );
    tokens(&signin_as(&node_a, &admin.email, &admin.password, "10.4.0.2").await);
}

#[tokio::test]
async fn three_2fa_codes_a_minute_then_the_token_is_locked_out() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new().await;
    let node_a = env.start_with(&sink.mail_config()).await;
    let node_b = env.start_with(&sink.mail_config()).await;
    let admin = env.user_with("admin", "active", true).await;
    let answer = signin(&node_a, &admin).await;
    let token = answer.json()["2faDetails"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let code = emailed_code(&sink, &admin, 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for attempt in 0..3 {
        let node = if attempt % 2 == 0 { &node_a } else { &node_b };
        post(
            node,
            "2fa/confirm",
            json!({"token": token, "code": wrong}),
            &format!("10.5.0.{attempt}"),
        )
        .await
        .assert_error(401, "backoffice.invalid_2fa_code");
    }
    // The right code, too late: the token is locked out everywhere.
    let locked = post(
        &node_b,
        "2fa/confirm",
        json!({"token": token, "code": code}),
        "10.5.1.1",
    )
    .await;
    locked_for(&locked);
    // And an address that tries three tokens is locked out too.
    for n in 0..3 {
        post(
            &node_a,
            "2fa/confirm",
            json!({"token": format!("guess-{n}"), "code": "123456"}),
            "10.5.2.1",
        )
        .await
        .assert_error(401, "backoffice.invalid_2fa_token");
    }
    locked_for(
        &post(
            &node_b,
            "2fa/confirm",
            json!({"token": "guess-4", "code": "123456"}),
            "10.5.2.1",
        )
        .await,
    );
}

#[tokio::test]
async fn five_refreshes_a_minute_then_the_address_is_locked_out() {
    let (_env, node_a, node_b, admin) = two_nodes_and_an_admin().await;
    let (_, mut refresh_token) = tokens(&signin(&node_a, &admin).await);
    for n in 0..5 {
        let node = if n % 2 == 0 { &node_a } else { &node_b };
        refresh_token = tokens(
            &post(
                node,
                "refresh",
                json!({"refreshToken": refresh_token}),
                "10.6.0.1",
            )
            .await,
        )
        .1;
    }
    let locked = post(
        &node_b,
        "refresh",
        json!({"refreshToken": refresh_token}),
        "10.6.0.1",
    )
    .await;
    locked_for(&locked);
    // The token was not spent by the refused attempt: it still works from elsewhere.
    tokens(
        &post(
            &node_a,
            "refresh",
            json!({"refreshToken": refresh_token}),
            "10.6.0.2",
        )
        .await,
    );
}

#[tokio::test]
async fn the_openapi_document_lists_the_four_operations_with_the_seeds_fields() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let document = Client::new()
        .get(server.url("/api/v2/auth/swagger_doc"))
        .send()
        .await
        .json();
    for path in ["signin", "2fa/confirm", "refresh", "signout"] {
        let operation = &document["paths"][format!("/api/v2/{path}")]["post"];
        assert!(operation.is_object(), "POST /api/v2/{path} missing");
        assert!(
            operation["responses"]["401"].is_object(),
            "{path}: {operation}"
        );
    }
    let schemas = &document["components"]["schemas"];
    let fields = &schemas["BackOfficeSignIn"]["properties"];
    for field in ["2faRequired", "2faDetails", "accessToken", "refreshToken"] {
        assert!(
            fields[field].is_object(),
            "BackOfficeSignIn.{field}: {fields}"
        );
    }
    for field in ["token", "createdAt", "expiresAt"] {
        assert!(schemas["BackOfficeToken"]["properties"][field].is_object());
    }

    // Off: not served, not documented.
    let off = env.start_with("[backoffice]\nenabled = false").await;
    let admin = env.user("admin").await;
    assert_eq!(signin(&off, &admin).await.status, 404);
    let document = Client::new()
        .get(off.url("/api/v2/auth/swagger_doc"))
        .send()
        .await
        .json();
    assert!(document["paths"]["/api/v2/signin"].is_null());
}
