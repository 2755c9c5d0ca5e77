//! `/resource/otp`: enrolment (QR code, then enable with a code an authenticator app would
//! compute from the URI's secret), verify, disable, and every refusal.
//!
//! Codes are accepted once per 30 s step, within one step of skew. Each test therefore takes
//! the step `s` current when it starts and uses at most the codes of `s` and `s + 1`, which
//! the server accepts while its clock is anywhere from `s - 1` to `s + 1` (for `s`) or `s` to
//! `s + 2` (for `s + 1`): a test would have to run for over 30 s to see either refused.

use crate::support::{Client, Response, Server, Session, TestEnv};

const BALANCES: &str = "/api/v2/peatio/account/balances";

/// RFC 4648 base32 without padding, as authenticator apps read the URI's `secret`.
fn base32_decode(text: &str) -> Vec<u8> {
    let (mut buffer, mut bits, mut out) = (0u64, 0, Vec::new());
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {text}"),
        };
        buffer = (buffer << 5) | value as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The secret of an `otpauth://` URI.
pub(crate) fn secret_of(url: &str) -> Vec<u8> {
    let query = url.split_once('?').expect("a query").1;
    let secret = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("secret="))
        .expect("a secret");
    base32_decode(secret)
}

pub(crate) fn step_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() / 30
}

pub(crate) fn code(secret: &[u8], step: i64) -> String {
    format!(
        "{:06}",
        portcullis::authn::totp::code_at(secret, step as u64)
    )
}

/// A code that no step near `step` yields: certainly wrong, without being malformed.
fn wrong_code(secret: &[u8], step: i64) -> String {
    let near: Vec<String> = (step - 2..=step + 3).map(|s| code(secret, s)).collect();
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|candidate| !near.contains(candidate))
        .unwrap()
}

/// The body `{"code": code}`.
fn code_is(code: impl Into<String>) -> serde_json::Value {
    serde_json::json!({ "code": code.into() })
}

async fn otp(
    server: &Server,
    session: &Session,
    action: &str,
    body: serde_json::Value,
) -> Response {
    Client::new()
        .post(server.resource(&format!("otp/{action}")))
        .session(session)
        .header("x-csrf-token", &session.csrf)
        .json(&body)
        .send()
        .await
}

async fn activities(env: &TestEnv, user_id: i64, result: &str) -> i64 {
    env.count(&format!(
        "SELECT count(*) FROM activities WHERE user_id = {user_id} AND topic = 'otp' AND result = '{result}'"
    ))
    .await
}

#[tokio::test]
async fn enrolment_turns_2fa_on_with_a_code_of_the_latest_secret_and_ends_other_sessions() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let here = server.login(&user).await;
    let elsewhere = server.login(&user).await;
    let call = |action: &'static str, body| otp(&server, &here, action, body);
    let me = |session: &Session| {
        Client::new()
            .get(server.resource("users/me"))
            .session(session)
            .send()
    };

    // Nothing to verify or disable yet (decisions.md #18), nor a secret to enable.
    call("verify", code_is("123456"))
        .await
        .assert_error(400, "resource.otp.not_enabled");
    call("disable", code_is("123456"))
        .await
        .assert_error(400, "resource.otp.not_enabled");
    call("enable", code_is("123456"))
        .await
        .assert_error(422, "resource.otp.invalid");

    let first = call("generate_qrcode", serde_json::json!({})).await;
    assert_eq!(first.status, 201, "{}", first.text());
    let body = first.json();
    let url = body["data"]["url"].as_str().unwrap().to_string();
    let prefix = format!("otpauth://totp/Barong:{}?secret=", user.email);
    assert!(url.starts_with(&prefix), "{url}");
    assert!(url.contains("&issuer=Barong&"), "{url}");
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        body["data"]["barcode"].as_str().unwrap(),
    )
    .unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(
        (&body["auth"], &body["lease_duration"], &body["renewable"]),
        (
            &serde_json::Value::Null,
            &serde_json::json!(0),
            &serde_json::json!(false)
        )
    );
    let first_secret = secret_of(&url);

    // A second QR code replaces the first secret, whose codes no longer enable.
    let second = call("generate_qrcode", serde_json::json!({})).await;
    assert_eq!(second.status, 201, "{}", second.text());
    let secret = secret_of(second.json()["data"]["url"].as_str().unwrap());
    assert_ne!(secret, first_secret);
    let s = step_now();
    call("enable", code_is(code(&first_secret, s)))
        .await
        .assert_error(422, "resource.otp.invalid");
    // Sealed at rest: the row holds neither the secret nor its base32.
    let stored: String = {
        let client = env.store.client().await.unwrap();
        client
            .query_one(
                "SELECT otp_secret_encrypted FROM users WHERE id = $1",
                &[&user.id],
            )
            .await
            .unwrap()
            .get(0)
    };
    assert!(!stored.contains(&portcullis::authn::totp::base32(&secret)));

    let missing = call("enable", serde_json::json!({})).await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.errors(),
        ["resource.otp.missing_code", "resource.otp.empty_code"]
    );
    call("enable", code_is(" "))
        .await
        .assert_error(422, "resource.otp.empty_code");

    let enabled = call("enable", code_is(code(&secret, s))).await;
    assert_eq!(enabled.status, 201, "{}", enabled.text());
    assert_eq!(enabled.json(), serde_json::json!(200));
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM users WHERE id = {} AND otp",
            user.id
        ))
        .await,
        1
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM labels WHERE user_id = {} AND key = 'otp' AND value = 'enabled' AND scope = 'private'",
            user.id
        ))
        .await,
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM event_outbox WHERE name = 'model.label.created'")
            .await,
        1
    );
    // This session goes on; the other one ended.
    assert_eq!(me(&here).await.status, 200);
    me(&elsewhere)
        .await
        .assert_error(401, "authz.invalid_session");

    // On now: no new secret, no second enabling.
    call("generate_qrcode", serde_json::json!({}))
        .await
        .assert_error(400, "resource.otp.already_enabled");
    call("enable", code_is(code(&secret, s + 1)))
        .await
        .assert_error(400, "resource.otp.already_enabled");

    // The code that enabled is spent; the next step's is good, once.
    call("verify", code_is(code(&secret, s)))
        .await
        .assert_error(422, "resource.otp.invalid");
    let verified = call("verify", code_is(code(&secret, s + 1))).await;
    assert_eq!(verified.status, 201, "{}", verified.text());
    assert!(verified.text().is_empty(), "{}", verified.text());
    call("verify", code_is(code(&secret, s + 1)))
        .await
        .assert_error(422, "resource.otp.invalid");

    // Failed: verify, disable, enable without a secret, enable with the old secret, then
    // generate and enable while on, and the two spent codes. Parameter errors are not recorded.
    assert_eq!(activities(&env, user.id, "failed").await, 8);
    // Succeeded: two QR codes, enable, verify.
    assert_eq!(activities(&env, user.id, "succeed").await, 4);
}

#[tokio::test]
async fn disabling_2fa_removes_the_label_and_deactivates_the_api_keys() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user_with("member", "active", true).await;
    let secret = user.otp_secret.clone().unwrap();
    env.sql(&format!(
        "INSERT INTO labels (user_id, key, value, scope) VALUES ({}, 'otp', 'enabled', 'private')",
        user.id
    ))
    .await;
    // A key of the user's, and one of a service account they own.
    let key = env.api_key(&user.uid).await;
    let account = env.service_account("member").await;
    env.sql(&format!(
        "UPDATE service_accounts SET owner_id = {} WHERE uid = '{account}'",
        user.id
    ))
    .await;
    let account_key = env.api_key(&account).await;
    let decide = || {
        Client::new()
            .get(server.decision(BALANCES))
            .headers(&key.headers())
            .send()
    };
    assert_eq!(decide().await.status, 200);

    // Logging in spends the current step's code; `s + 1` is still unused.
    let session = server.login(&user).await;
    let call = |action: &'static str, body| otp(&server, &session, action, body);
    let s = step_now();
    let missing = call("disable", serde_json::json!({})).await;
    assert_eq!(
        missing.errors(),
        ["resource.otp.missing_code", "resource.otp.empty_code"]
    );
    call("disable", code_is(wrong_code(&secret, s)))
        .await
        .assert_error(422, "resource.otp.invalid");
    call("verify", code_is(wrong_code(&secret, s)))
        .await
        .assert_error(422, "resource.otp.invalid");

    let disabled = call("disable", code_is(code(&secret, s + 1))).await;
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM users WHERE id = {} AND NOT otp AND otp_secret_encrypted IS NULL",
            user.id
        ))
        .await,
        1
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM labels WHERE user_id = {} AND key = 'otp'",
            user.id
        ))
        .await,
        0
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM api_keys WHERE kid IN ('{}', '{}') AND state = 'inactive'",
            key.kid, account_key.kid
        ))
        .await,
        2
    );
    TestEnv::eventually(2000, || async { decide().await.status == 401 }).await;
    decide().await.assert_error(401, "authz.apikey_not_active");

    // Off now: nothing to disable or verify.
    call("disable", code_is(code(&secret, s)))
        .await
        .assert_error(400, "resource.otp.not_enabled");
    call("verify", code_is(code(&secret, s)))
        .await
        .assert_error(400, "resource.otp.not_enabled");
    assert_eq!(activities(&env, user.id, "failed").await, 4);
    assert_eq!(activities(&env, user.id, "succeed").await, 1);
}
