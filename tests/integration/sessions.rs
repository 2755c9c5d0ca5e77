//! Login, logout, and the session path of the gate: CSRF, binding, expiry, user state,
//! permissions, token claims and reuse.

use crate::support::{Client, TestEnv, UA, jwt_claims, verify_with_jwks};

const BALANCES: &str = "/api/v2/peatio/account/balances";

/// The JSON text with the contents of arrays removed, so that only top-level keys remain.
fn top_level(text: &str) -> String {
    let mut depth = 0;
    text.chars()
        .filter(|c| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            depth == 0
        })
        .collect()
}

#[tokio::test]
async fn login_opens_a_session_and_the_decision_mints_barongs_token() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;

    let login = Client::new()
        .post(server.identity("sessions"))
        .header("user-agent", UA)
        .json(&serde_json::json!({ "email": user.email, "password": user.password }))
        .send()
        .await;
    assert_eq!(login.status, 200, "{}", login.text());
    let cookie = login.header("set-cookie").unwrap();
    assert!(cookie.starts_with("_barong_session="), "{cookie}");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=86400"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing in {cookie}"
        );
    }
    assert!(!cookie.contains("Secure"), "secure_cookie is off in tests");
    let body = login.json();
    // Barong's key order (UserWithFullInfo), as sent on the wire.
    let text = top_level(&login.text());
    let positions: Vec<usize> = [
        "email",
        "uid",
        "role",
        "level",
        "otp",
        "state",
        "referral_uid",
        "csrf_token",
        "data",
        "labels",
        "phones",
        "profiles",
        "data_storages",
        "created_at",
        "updated_at",
        "username",
    ]
    .iter()
    .map(|key| {
        text.find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("{key} missing"))
    })
    .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "key order differs: {text}"
    );
    assert_eq!(body.as_object().unwrap().len(), 16);
    assert_eq!(body["uid"], user.uid.as_str());
    assert_eq!(body["labels"][0]["key"], "email");
    assert_eq!(body["csrf_token"].as_str().unwrap().len(), 32);

    let session = server.login(&user).await;
    let decision = Client::new()
        .get(server.decision(BALANCES))
        .session(&session)
        .send()
        .await;
    assert_eq!(decision.status, 200, "{}", decision.text());
    assert!(decision.body.is_empty());
    let bearer = decision.header("authorization").expect("bearer minted");
    let claims = verify_with_jwks(&server, bearer).await;
    assert_eq!(claims["sub"], "session");
    assert_eq!(claims["iss"], "barong");
    assert_eq!(claims["aud"], serde_json::json!(["peatio", "barong"]));
    assert_eq!(claims["uid"], user.uid.as_str());
    assert_eq!(claims["email"], user.email.as_str());
    assert_eq!(claims["role"], "member");
    assert_eq!(claims["level"], 1);
    assert_eq!(claims["state"], "active");
    assert!(claims["referral_id"].is_null());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(claims["jti"].as_str().unwrap().len(), 20);

    // Activity and event were written with the login.
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM activities WHERE user_id = {} AND topic = 'session' AND action = 'login' AND result = 'succeed'",
            user.id
        ))
        .await,
        2
    );
    assert_eq!(
        env.count("SELECT count(*) FROM event_outbox WHERE name = 'system.session.create'")
            .await,
        2
    );
}

#[tokio::test]
async fn login_errors_follow_barong_with_the_password_checked_first() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let url = server.identity("sessions");
    let client = Client::new();

    let missing = client.post(&url).json(&serde_json::json!({})).send().await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.errors(),
        [
            "identity.session.missing_email",
            "identity.session.missing_password"
        ]
    );

    let unknown = client
        .post(&url)
        .form("email=nobody%40example.com&password=whatever")
        .send()
        .await;
    unknown.assert_error(401, "identity.session.invalid_params");

    let user = env.user("member").await;
    let wrong = client
        .post(&url)
        .json(&serde_json::json!({ "email": user.email, "password": "Wrong-pass1" }))
        .send()
        .await;
    wrong.assert_error(401, "identity.session.invalid_params");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM activities WHERE user_id = {} AND action = 'login' AND result = 'failed'",
            user.id
        ))
        .await,
        1
    );

    for (state, code) in [
        ("banned", "identity.session.banned"),
        ("deleted", "identity.session.deleted"),
        ("locked", "identity.session.not_active"),
    ] {
        let someone = env.user_with("member", state, false).await;
        // A wrong password never reveals the state (decisions.md #6).
        let wrong = client
            .post(&url)
            .json(&serde_json::json!({ "email": someone.email, "password": "Wrong-pass1" }))
            .send()
            .await;
        wrong.assert_error(401, "identity.session.invalid_params");
        let right = client
            .post(&url)
            .json(&serde_json::json!({ "email": someone.email, "password": someone.password }))
            .send()
            .await;
        right.assert_error(401, code);
    }

    // Pending users may log in; the email is matched without regard to case.
    let pending = env.user_with("member", "pending", false).await;
    let ok = client
        .post(&url)
        .json(&serde_json::json!({ "email": pending.email.to_uppercase(), "password": pending.password }))
        .send()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());

    let bad_captcha = client
        .post(&url)
        .json(
            &serde_json::json!({ "email": pending.email, "password": "x", "captcha_response": 5 }),
        )
        .send()
        .await;
    bad_captcha.assert_error(422, "identity.session.invalid_captcha_format");

    let bad_json = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await;
    bad_json.assert_error(400, "request.invalid_json");
}

#[tokio::test]
async fn two_factor_login_needs_a_fresh_code() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user_with("member", "active", true).await;
    let url = server.identity("sessions");
    let client = Client::new();
    let body = |otp: Option<&str>| {
        let mut b = serde_json::json!({ "email": user.email, "password": user.password });
        if let Some(code) = otp {
            b["otp_code"] = code.into();
        }
        b
    };
    client
        .post(&url)
        .json(&body(None))
        .send()
        .await
        .assert_error(401, "identity.session.missing_otp");
    client
        .post(&url)
        .json(&body(Some("")))
        .send()
        .await
        .assert_error(401, "identity.session.missing_otp");
    client
        .post(&url)
        .json(&body(Some("000000x")))
        .send()
        .await
        .assert_error(403, "identity.session.invalid_otp");
    let code = user.otp_code();
    let ok = client
        .post(&url)
        .header("user-agent", UA)
        .json(&body(Some(&code)))
        .send()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["otp"], true);
    // The same code twice is a replay.
    client
        .post(&url)
        .json(&body(Some(&code)))
        .send()
        .await
        .assert_error(403, "identity.session.invalid_otp");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM activities WHERE user_id = {} AND action = 'login::2fa' AND result = 'succeed'",
            user.id
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn login_rotates_the_session_and_logout_ends_it() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let first = server.login(&user).await;

    // Logging in again with the old cookie yields a new id and kills the old one.
    let again = Client::new()
        .post(server.identity("sessions"))
        .session(&first)
        .json(&serde_json::json!({ "email": user.email, "password": user.password }))
        .send()
        .await;
    assert_eq!(again.status, 200);
    let second = again.cookie("_barong_session").unwrap();
    assert_ne!(second, first.cookie);
    Client::new()
        .get(server.decision(BALANCES))
        .session(&first)
        .send()
        .await
        .assert_error(401, "authz.invalid_session");

    let session = crate::support::Session {
        cookie: second,
        csrf: again.json()["csrf_token"].as_str().unwrap().to_string(),
    };
    let logout = Client::new()
        .delete(server.identity("sessions"))
        .session(&session)
        .send()
        .await;
    assert_eq!(logout.status, 200);
    assert!(logout.header("set-cookie").unwrap().contains("Max-Age=0"));
    Client::new()
        .get(server.decision(BALANCES))
        .session(&session)
        .send()
        .await
        .assert_error(401, "authz.invalid_session");
    Client::new()
        .delete(server.identity("sessions"))
        .session(&session)
        .send()
        .await
        .assert_error(404, "identity.session.not_found");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM activities WHERE user_id = {} AND action = 'logout'",
            user.id
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn csrf_is_checked_before_the_session_as_barong_does() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let client = Client::new();
    let post = |url: String| client.post(url);

    // Anonymous POST without a token: missing_csrf_token, not invalid_session.
    post(server.decision(BALANCES))
        .send()
        .await
        .assert_error(401, "authz.missing_csrf_token");
    // Anonymous POST with a token: there is no session token to match.
    post(server.decision(BALANCES))
        .header("x-csrf-token", "abc")
        .send()
        .await
        .assert_error(401, "authz.csrf_token_mismatch");
    post(server.decision(BALANCES))
        .session(&session)
        .send()
        .await
        .assert_error(401, "authz.missing_csrf_token");
    post(server.decision(BALANCES))
        .session(&session)
        .header("x-csrf-token", "0000")
        .send()
        .await
        .assert_error(401, "authz.csrf_token_mismatch");
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let ok = client
            .request(method, server.decision(BALANCES))
            .session(&session)
            .header("x-csrf-token", &session.csrf)
            .send()
            .await;
        assert_eq!(ok.status, 200, "{method}: {}", ok.text());
    }
    // GET never needs the token; with protection off, nothing does.
    assert_eq!(
        client
            .get(server.decision(BALANCES))
            .session(&session)
            .send()
            .await
            .status,
        200
    );
    let relaxed = env.start_with("[session]\ncsrf_protection = false").await;
    let session = relaxed.login(&user).await;
    assert_eq!(
        client
            .post(relaxed.decision(BALANCES))
            .session(&session)
            .send()
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn sessions_are_bound_to_agent_and_network() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let client = Client::new();

    // Same /16: fine. Another user agent: the session is destroyed for good.
    let session = server.login(&user).await;
    let ok = client
        .get(server.decision(BALANCES))
        .session(&session)
        .header("x-forwarded-for", "127.0.200.1")
        .send()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    client
        .get(server.decision(BALANCES))
        .header("cookie", &session.cookie_header())
        .header("user-agent", "other-agent")
        .send()
        .await
        .assert_error(401, "authz.client_session_mismatch");
    client
        .get(server.decision(BALANCES))
        .session(&session)
        .send()
        .await
        .assert_error(401, "authz.invalid_session");

    // Another /16 (client address from a trusted proxy's X-Forwarded-For).
    let session = server.login(&user).await;
    client
        .get(server.decision(BALANCES))
        .session(&session)
        .header("x-forwarded-for", "8.8.8.8")
        .send()
        .await
        .assert_error(401, "authz.client_session_mismatch");

    let garbage = crate::support::Session {
        cookie: "not-a-session".into(),
        csrf: String::new(),
    };
    client
        .get(server.decision(BALANCES))
        .session(&garbage)
        .send()
        .await
        .assert_error(401, "authz.invalid_session");
}

#[tokio::test]
async fn sessions_expire_after_inactivity_and_slide_with_use() {
    let env = TestEnv::new().await;
    let server = env
        .start_with("[session]\nexpire_time = 3\nrenew_interval = 0")
        .await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let client = Client::new();
    // Used every second for four seconds: stays alive past the 3 s limit (expiry is kept in
    // whole seconds, so the margins are a second wide).
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        let r = client
            .get(server.decision(BALANCES))
            .session(&session)
            .send()
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    client
        .get(server.decision(BALANCES))
        .session(&session)
        .send()
        .await
        .assert_error(401, "authz.client_session_mismatch");
}

#[tokio::test]
async fn user_state_and_permissions_decide_and_denials_are_audited() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let client = Client::new();

    // Members have no admin rights: denied, and recorded as an admin activity.
    client
        .get(server.decision("/api/v2/peatio/admin/members?uid=ID0000000001"))
        .session(&session)
        .send()
        .await
        .assert_error(401, "authz.invalid_permission");
    TestEnv::eventually(3000, || async {
        env.count(&format!(
            "SELECT count(*) FROM activities WHERE user_id = {} AND category = 'admin' AND result = 'denied'
             AND topic = 'members' AND action = 'read' AND target_uid = 'ID0000000001'",
            user.id
        ))
        .await
            == 1
    })
    .await;

    // A ban takes effect on the next request (change notice), not after a cache expiry.
    env.sql(&format!(
        "UPDATE users SET state = 'banned' WHERE id = {}",
        user.id
    ))
    .await;
    TestEnv::eventually(2000, || async {
        client
            .get(server.decision(BALANCES))
            .session(&session)
            .send()
            .await
            .status
            == 401
    })
    .await;
    client
        .get(server.decision(BALANCES))
        .session(&session)
        .send()
        .await
        .assert_error(401, "authz.user_not_active");
}

#[tokio::test]
async fn tokens_are_reused_until_the_subject_changes() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let client = Client::new();
    let bearer = || async {
        client
            .get(server.decision(BALANCES))
            .session(&session)
            .send()
            .await
            .header("authorization")
            .unwrap()
            .to_string()
    };
    let first = bearer().await;
    assert_eq!(first, bearer().await, "a fresh token is reused");

    env.sql(&format!(
        "UPDATE users SET role = 'trader', level = 2 WHERE id = {}",
        user.id
    ))
    .await;
    TestEnv::eventually(2000, || async { bearer().await != first }).await;
    let claims = jwt_claims(bearer().await.strip_prefix("Bearer ").unwrap());
    assert_eq!(claims["role"], "trader");
    assert_eq!(claims["level"], 2);

    // With the cache off every decision signs a new token.
    let uncached = env.start_with("[jwt]\ncache_tokens = false").await;
    let session = uncached.login(&user).await;
    let get = || async {
        client
            .get(uncached.decision(BALANCES))
            .session(&session)
            .send()
            .await
            .header("authorization")
            .unwrap()
            .to_string()
    };
    let (a, b) = (get().await, get().await);
    assert_ne!(jwt_claims(&a[7..])["jti"], jwt_claims(&b[7..])["jti"]);
}

#[tokio::test]
async fn login_is_rate_limited_per_account_and_address() {
    let env = TestEnv::new().await;
    let server = env
        .start_with("[rate_limits]\nlogin_per_account = { max = 3, window = 60 }\nlogin_per_ip = { max = 4, window = 60 }")
        .await;
    let user = env.user("member").await;
    let url = server.identity("sessions");
    let client = Client::new();
    for _ in 0..3 {
        let r = client
            .post(&url)
            .json(&serde_json::json!({ "email": user.email, "password": "Wrong-pass1" }))
            .send()
            .await;
        assert_eq!(r.status, 401);
    }
    let limited = client
        .post(&url)
        .json(&serde_json::json!({ "email": user.email, "password": user.password }))
        .send()
        .await;
    limited.assert_error(429, "identity.session.too_many_attempts");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Other accounts from the same address hit the address limit: 5 attempts in all.
    let other = env.user("member").await;
    let r = client
        .post(&url)
        .json(&serde_json::json!({ "email": other.email, "password": other.password }))
        .send()
        .await;
    r.assert_error(429, "identity.session.too_many_attempts");
    // A different client address is not limited by the first one's attempts.
    let r = client
        .post(&url)
        .header("x-forwarded-for", "9.9.9.9")
        .header("user-agent", UA)
        .json(&serde_json::json!({ "email": other.email, "password": other.password }))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn bcrypt_hashes_from_barong_verify_and_are_upgraded() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let bcrypt = bcrypt::hash(&user.password, 4).unwrap();
    env.sql(&format!(
        "UPDATE users SET password_digest = '{bcrypt}' WHERE id = {}",
        user.id
    ))
    .await;
    server.login(&user).await;
    let digest_is_argon = env
        .count(&format!(
            "SELECT count(*) FROM users WHERE id = {} AND password_digest LIKE '$argon2id$%'",
            user.id
        ))
        .await;
    assert_eq!(digest_is_argon, 1);
    server.login(&user).await;
}
