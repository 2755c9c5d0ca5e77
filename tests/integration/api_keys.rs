//! The API-key path of the gate: every `authz.*` code in Barong's order, the replay guard,
//! service accounts.

use crate::support::{Client, TestEnv, jwt_claims, verify_with_jwks};

const BALANCES: &str = "/api/v2/peatio/account/balances";

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[tokio::test]
async fn a_signed_request_gets_a_token_once_per_nonce() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user_with("member", "active", true).await;
    let key = env.api_key(&user.uid).await;
    let client = Client::new();
    let headers = key.headers();
    let ok = client
        .post(server.decision(BALANCES))
        .headers(&headers)
        .send()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let claims = verify_with_jwks(&server, ok.header("authorization").unwrap()).await;
    assert_eq!(claims["uid"], user.uid.as_str());
    assert_eq!(claims["sub"], "session");
    // CSRF never applies to API keys; but the same (kid, nonce) is refused (decisions.md #4).
    client
        .post(server.decision(BALANCES))
        .headers(&headers)
        .send()
        .await
        .assert_error(401, "authz.nonce_expired");
    assert_eq!(
        client
            .get(server.decision(BALANCES))
            .headers(&key.headers())
            .send()
            .await
            .status,
        200
    );
    // With the guard off, Barong's behaviour: a nonce may be used again in its window.
    let lax = env
        .start_adjusted(|s| s.api_keys.replay_guard = false)
        .await;
    let headers = key.headers();
    for _ in 0..2 {
        assert_eq!(
            client
                .get(lax.decision(BALANCES))
                .headers(&headers)
                .send()
                .await
                .status,
            200
        );
    }
}

#[tokio::test]
async fn every_api_key_error_in_order() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user_with("member", "active", true).await;
    let key = env.api_key(&user.uid).await;
    let client = Client::new();
    let get = |headers: Vec<(String, String)>| {
        let client = client.clone();
        let url = server.decision(BALANCES);
        async move { client.get(url).headers(&headers).send().await }
    };
    let h = |kid: &str, nonce: &str, sig: &str| {
        vec![
            ("X-Auth-Apikey".to_string(), kid.to_string()),
            ("X-Auth-Nonce".to_string(), nonce.to_string()),
            ("X-Auth-Signature".to_string(), sig.to_string()),
        ]
    };

    // One header alone, or a blank one: 422.
    get(vec![("X-Auth-Apikey".into(), key.kid.clone())])
        .await
        .assert_error(422, "authz.invalid_api_key_headers");
    get(h(&key.kid, "  ", "abc"))
        .await
        .assert_error(422, "authz.invalid_api_key_headers");
    get(h("", "1", "abc"))
        .await
        .assert_error(422, "authz.invalid_api_key_headers");

    get(h("0000000000000000", &now_ms().to_string(), "abc"))
        .await
        .assert_error(401, "authz.unexistent_apikey");
    get(h(&key.kid, "abc", "abc"))
        .await
        .assert_error(401, "authz.nonce_not_valid_timestamp");
    get(h(&key.kid, "-5", "abc"))
        .await
        .assert_error(401, "authz.nonce_not_valid_timestamp");
    // A nonce in seconds, or too far in the past or future.
    let seconds = (now_ms() / 1000).to_string();
    get(key.headers_with_nonce(&seconds))
        .await
        .assert_error(401, "authz.nonce_expired");
    let old = (now_ms() - 6_000).to_string();
    get(key.headers_with_nonce(&old))
        .await
        .assert_error(401, "authz.nonce_expired");
    let future = (now_ms() + 6_000).to_string();
    get(key.headers_with_nonce(&future))
        .await
        .assert_error(401, "authz.nonce_expired");
    get(h(&key.kid, &now_ms().to_string(), &"0".repeat(64)))
        .await
        .assert_error(401, "authz.invalid_signature");
    // "123abc" parses as 123 the Ruby way: a valid timestamp format, but expired.
    get(key.headers_with_nonce("123abc"))
        .await
        .assert_error(401, "authz.nonce_expired");

    // Disabled key.
    env.sql(&format!(
        "UPDATE api_keys SET state = 'inactive' WHERE kid = '{}'",
        key.kid
    ))
    .await;
    TestEnv::eventually(2000, || async { get(key.headers()).await.status == 401 }).await;
    get(key.headers())
        .await
        .assert_error(401, "authz.apikey_not_active");
    env.sql(&format!(
        "UPDATE api_keys SET state = 'active' WHERE kid = '{}'",
        key.kid
    ))
    .await;
    TestEnv::eventually(2000, || async { get(key.headers()).await.status == 200 }).await;

    // Holder without 2FA, then banned holder.
    env.sql(&format!(
        "UPDATE users SET otp = false WHERE id = {}",
        user.id
    ))
    .await;
    TestEnv::eventually(2000, || async { get(key.headers()).await.status == 401 }).await;
    get(key.headers())
        .await
        .assert_error(401, "authz.disabled_2fa");
    env.sql(&format!(
        "UPDATE users SET otp = true, state = 'banned' WHERE id = {}",
        user.id
    ))
    .await;
    TestEnv::eventually(2000, || async {
        get(key.headers())
            .await
            .text()
            .contains("authz.invalid_session")
    })
    .await;

    // Permissions apply to key holders too.
    env.sql(&format!(
        "UPDATE users SET state = 'active' WHERE id = {}",
        user.id
    ))
    .await;
    TestEnv::eventually(2000, || async { get(key.headers()).await.status == 200 }).await;
    client
        .get(server.decision("/api/v2/peatio/admin/members"))
        .headers(&key.headers())
        .send()
        .await
        .assert_error(401, "authz.invalid_permission");
}

#[tokio::test]
async fn service_accounts_get_their_own_claims_and_no_audit() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let sa = env.service_account("sa_maker").await;
    let key = env.api_key(&sa).await;
    let client = Client::new();
    let ok = client
        .get(server.decision(BALANCES))
        .headers(&key.headers())
        .send()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let token = ok.header("authorization").unwrap();
    let claims = jwt_claims(&token[7..]);
    assert_eq!(claims["uid"], sa.as_str());
    assert_eq!(claims["role"], "sa_maker");
    assert!(claims.get("username").is_none() && claims.get("referral_id").is_none());
    // sa_maker may not touch API keys through the resource API.
    client
        .get(server.decision("/api/v2/auth/resource/api_keys"))
        .headers(&key.headers())
        .send()
        .await
        .assert_error(401, "authz.invalid_permission");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        env.count("SELECT count(*) FROM activities WHERE category = 'admin'")
            .await,
        0
    );
}
