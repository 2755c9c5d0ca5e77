//! The identity API: signup, email confirmation, password reset, whitelinks, captcha (Auth0
//! logins are in `auth0.rs`).

use serde_json::{Value, json};

use crate::support::fakes::{Fakes, geetest_validate_for};
use crate::support::smtp::{SmtpSink, WAIT};
use crate::support::{Client, Server, Session, TestEnv, UA, random_suffix};

const BASE: &str = "/api/v2/auth/identity";

fn url(server: &Server, path: &str) -> String {
    server.url(&format!("{BASE}{path}"))
}

/// The newest event `name` about the account `email` (its body).
async fn last_event(env: &TestEnv, name: &str, email: &str) -> Option<Value> {
    let client = env.store.client().await.unwrap();
    client
        .query_opt(
            "SELECT payload FROM event_outbox WHERE name = $1 AND payload->'record'->'user'->>'email' = $2
             ORDER BY id DESC LIMIT 1",
            &[&name, &email],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

async fn count_events(env: &TestEnv, name: &str, email: &str) -> i64 {
    let client = env.store.client().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM event_outbox WHERE name = $1 AND payload->'record'->'user'->>'email' = $2",
            &[&name, &email],
        )
        .await
        .unwrap()
        .get(0)
}

fn email() -> String {
    format!("new-{}@example.com", random_suffix())
}

async fn signup(server: &Server, body: Value) -> crate::support::Response {
    Client::new()
        .post(url(server, "/users"))
        .header("user-agent", UA)
        .json(&body)
        .send()
        .await
}

fn session_of(response: &crate::support::Response) -> Session {
    Session {
        cookie: response.cookie("_barong_session").expect("session cookie"),
        csrf: response.json()["csrf_token"].as_str().unwrap().to_string(),
    }
}

#[tokio::test]
async fn signup_opens_a_session_and_confirmation_activates_the_account() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let address = email();
    let created = signup(&server, json!({ "email": address, "password": "Iequ4geiEWQw!", "username": "Trader42", "data": "{\"language\":\"en\"}" })).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    assert_eq!(body["email"], address.as_str());
    assert_eq!(body["state"], "pending");
    assert_eq!(body["role"], "member");
    assert_eq!(body["level"], 0);
    assert_eq!(body["username"], "trader42");
    assert!(body["csrf_token"].as_str().unwrap().len() == 32);
    let uid = body["uid"].as_str().unwrap().to_string();
    assert!(uid.starts_with("ID") && uid.len() == 12);
    // The session works at once (pending users may hold one).
    let session = session_of(&created);
    let decision = Client::new()
        .get(server.decision("/api/v2/peatio/account/balances"))
        .session(&session)
        .send()
        .await;
    assert_eq!(decision.status, 200);
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM activities a JOIN users u ON u.id = a.user_id
             WHERE u.uid = '{uid}' AND a.topic = 'account' AND a.action = 'signup' AND a.result = 'succeed'
             AND u.password_digest LIKE '$argon2id$%'"
        ))
        .await,
        1
    );

    let event = last_event(&env, "system.user.email.confirmation.token", &address)
        .await
        .expect("confirmation event");
    assert_eq!(event["record"]["domain"], "openware.com");
    assert_eq!(event["record"]["user"]["uid"], uid.as_str());
    let token = event["record"]["token"].as_str().unwrap().to_string();
    let claims = crate::support::jwt_claims(&token);
    assert_eq!(
        (claims["sub"].as_str(), claims["email"].as_str()),
        (Some("confirmation"), Some(address.as_str()))
    );

    let confirmed = Client::new()
        .post(url(&server, "/users/email/confirm_code"))
        .header("user-agent", UA)
        .form(&format!("token={token}"))
        .send()
        .await;
    assert_eq!(confirmed.status, 201, "{}", confirmed.text());
    let body = confirmed.json();
    assert_eq!(body["state"], "active");
    assert_eq!(body["level"], 1);
    assert_eq!(body["labels"][0]["key"], "email");
    assert_eq!(body["labels"][0]["scope"], "private");
    assert!(body["csrf_token"].is_string());
    assert!(
        last_event(&env, "system.user.email.confirmed", &address)
            .await
            .is_some()
    );
    // Once active, the same link says so; a forged one is refused by its signature.
    Client::new()
        .post(url(&server, "/users/email/confirm_code"))
        .form(&format!("token={token}"))
        .send()
        .await
        .assert_error(422, "identity.user.active_or_doesnt_exist");
    let mut forged = token.clone();
    let at = forged.rfind('.').unwrap() + 1;
    let flipped = if &forged[at..at + 1] == "A" { "B" } else { "A" };
    forged.replace_range(at..at + 1, flipped);
    Client::new()
        .post(url(&server, "/users/email/confirm_code"))
        .form(&format!("token={forged}"))
        .send()
        .await
        .assert_error(422, "jwt.decode_and_verify.raised");
}

#[tokio::test]
async fn a_confirmation_token_is_single_use() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let address = email();
    let created = signup(
        &server,
        json!({ "email": address, "password": "Iequ4geiEWQw!" }),
    )
    .await;
    let uid = created.json()["uid"].as_str().unwrap().to_string();
    // A lock label keeps the account out of `active` after confirmation (Barong's triggers),
    // so a second use of the link meets the burned jti rather than the active state.
    env.sql(&format!(
        "INSERT INTO labels (user_id, key, value, scope) SELECT id, 'lock', 'yes', 'private' FROM users WHERE uid = '{uid}'"
    ))
    .await;
    let token = last_event(&env, "system.user.email.confirmation.token", &address)
        .await
        .unwrap()["record"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let first = Client::new()
        .post(url(&server, "/users/email/confirm_code"))
        .form(&format!("token={token}"))
        .send()
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(first.json()["state"], "locked");
    Client::new()
        .post(url(&server, "/users/email/confirm_code"))
        .form(&format!("token={token}"))
        .send()
        .await
        .assert_error(422, "identity.user.utilized_token");
}

#[tokio::test]
async fn signup_validation_collects_barongs_codes() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let empty = signup(&server, json!({})).await;
    assert_eq!(empty.status, 422);
    assert_eq!(
        empty.errors(),
        [
            "identity.user.missing_email",
            "identity.user.empty_email",
            "identity.user.missing_password",
            "identity.user.empty_password"
        ]
    );
    let r = signup(
        &server,
        json!({ "email": "not-an-email", "password": "Password1" }),
    )
    .await;
    assert_eq!(
        (r.status, r.errors()),
        (
            422,
            vec!["email.invalid".to_string(), "password.weak".to_string()]
        )
    );
    let r = signup(&server, json!({ "email": email(), "password": "password" })).await;
    assert_eq!(r.errors(), ["password.requirements"]);
    let r = signup(
        &server,
        json!({ "email": email(), "password": "Iequ4geiEWQw!", "username": "" }),
    )
    .await;
    assert_eq!(r.errors(), ["username.too_short", "username.invalid"]);
    let r = signup(
        &server,
        json!({ "email": email(), "password": "Iequ4geiEWQw!", "data": "{oops" }),
    )
    .await;
    assert_eq!(r.errors(), ["data.invalid_format"]);
    let r = signup(
        &server,
        json!({ "email": email(), "password": "Iequ4geiEWQw!", "refid": "XX0000000000" }),
    )
    .await;
    r.assert_error(422, "identity.user.invalid_referral_format");
    let r = signup(
        &server,
        json!({ "email": email(), "password": "Iequ4geiEWQw!", "refid": "ID0000000000" }),
    )
    .await;
    r.assert_error(422, "identity.user.referral_doesnt_exist");

    // Taken email (without regard to case) and username; a valid referral.
    let first = email();
    let created = signup(
        &server,
        json!({ "email": first, "password": "Iequ4geiEWQw!", "username": "alice1" }),
    )
    .await;
    assert_eq!(created.status, 201);
    let referrer = created.json()["uid"].as_str().unwrap().to_string();
    let r = signup(
        &server,
        json!({ "email": first.to_uppercase(), "password": "Iequ4geiEWQw!", "username": "ALICE1" }),
    )
    .await;
    assert_eq!(r.errors(), ["email.taken", "username.taken"]);
    let referred = signup(
        &server,
        json!({ "email": email(), "password": "Iequ4geiEWQw!", "refid": referrer }),
    )
    .await;
    assert_eq!(referred.status, 201, "{}", referred.text());
    assert_eq!(referred.json()["referral_uid"], referrer.as_str());
    // The session token of a referred user carries the referrer's numeric id (Barong #5).
    let session = session_of(&referred);
    let bearer = Client::new()
        .get(server.decision("/api/v2/peatio/account/balances"))
        .session(&session)
        .send()
        .await
        .header("authorization")
        .unwrap()
        .to_string();
    let referral_id = crate::support::jwt_claims(&bearer[7..])["referral_id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        env.count(&format!("SELECT id FROM users WHERE uid = '{referrer}'"))
            .await,
        referral_id
    );
}

#[tokio::test]
async fn the_first_registration_may_be_the_superadmin_when_configured() {
    let env = TestEnv::new().await;
    let server = env
        .start_with("[users]\nfirst_registration_superadmin = true")
        .await;
    let address = email();
    let first = signup(
        &server,
        json!({ "email": address, "password": "Iequ4geiEWQw!" }),
    )
    .await;
    assert_eq!(first.status, 201);
    assert_eq!(
        (
            first.json()["role"].as_str(),
            first.json()["state"].as_str()
        ),
        (Some("superadmin"), Some("active"))
    );
    assert!(
        last_event(&env, "system.user.email.confirmation.token", &address)
            .await
            .is_none()
    );
    let second = signup(
        &server,
        json!({ "email": email(), "password": "Iequ4geiEWQw!" }),
    )
    .await;
    assert_eq!(second.json()["role"], "member");
}

#[tokio::test]
async fn email_codes_answer_alike_whether_or_not_the_account_exists() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let generate = |email: &str| {
        Client::new()
            .post(url(&server, "/users/email/generate_code"))
            .json(&json!({ "email": email }))
            .send()
    };
    let missing = Client::new()
        .post(url(&server, "/users/email/generate_code"))
        .send()
        .await;
    assert_eq!(
        missing.errors(),
        ["identity.user.missing_email", "identity.user.empty_email"]
    );
    let unknown = generate("nobody@example.com").await;
    assert_eq!((unknown.status, unknown.body.len()), (201, 0));
    let active = env.user("member").await;
    assert_eq!(generate(&active.email).await.status, 201);
    assert_eq!(
        count_events(&env, "system.user.email.confirmation.token", &active.email).await,
        0
    );
    let pending = env.user_with("member", "pending", false).await;
    assert_eq!(generate(&pending.email).await.status, 201);
    assert_eq!(
        count_events(&env, "system.user.email.confirmation.token", &pending.email).await,
        1
    );
    // Wrong kind of token, garbage, nothing.
    let confirm = |body: &str| {
        Client::new()
            .post(url(&server, "/users/email/confirm_code"))
            .form(body)
            .send()
    };
    let absent = confirm("").await;
    assert_eq!(
        absent.errors(),
        ["identity.user.missing_token", "identity.user.empty_token"]
    );
    let r = confirm("token=").await;
    assert_eq!(r.errors(), ["identity.user.empty_token"]);
    confirm("token=abc")
        .await
        .assert_error(422, "jwt.decode_and_verify.segments");
    let reset = server.app.issuer().sign_standard(
        "reset",
        json!({"email": pending.email}),
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    confirm(&format!("token={reset}"))
        .await
        .assert_error(422, "jwt.decode_and_verify.reset");
    let expired = server.app.issuer().sign_standard(
        "confirmation",
        json!({"email": pending.email}),
        time::OffsetDateTime::now_utc().unix_timestamp() - 7200,
    );
    confirm(&format!("token={expired}"))
        .await
        .assert_error(422, "jwt.decode_and_verify.expired");
}

#[tokio::test]
async fn password_reset_takes_the_newest_link_once_and_ends_every_session() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let old_session = server.login(&user).await;
    let generate = || {
        Client::new()
            .post(url(&server, "/users/password/generate_code"))
            .json(&json!({ "email": user.email }))
            .send()
    };
    assert_eq!(generate().await.status, 201);
    let older = last_event(&env, "system.user.password.reset.token", &user.email)
        .await
        .unwrap()["record"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(generate().await.status, 201);
    let newest = last_event(&env, "system.user.password.reset.token", &user.email)
        .await
        .unwrap()["record"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(older, newest);
    let confirm = |token: &str, password: &str, confirm: &str| {
        Client::new()
            .post(url(&server, "/users/password/confirm_code"))
            .json(&json!({ "reset_password_token": token, "password": password, "confirm_password": confirm }))
            .send()
    };
    let missing = Client::new()
        .post(url(&server, "/users/password/confirm_code"))
        .send()
        .await;
    assert_eq!(
        missing.errors(),
        [
            "identity.user.missing_pass_token",
            "identity.user.empty_reset_password_token",
            "identity.user.missing_password",
            "identity.user.empty_password",
            "identity.user.missing_confirm_password",
            "identity.user.empty_confirm_password"
        ]
    );
    confirm(&newest, "Xwqe213PZCXwe", "Xwqe213PZCXwf")
        .await
        .assert_error(422, "identity.user.passwords_doesnt_match");
    confirm(&older, "Xwqe213PZCXwe", "Xwqe213PZCXwe")
        .await
        .assert_error(422, "identity.user.utilized_token");
    confirm(&newest, "Password1", "Password1")
        .await
        .assert_error(422, "password.weak");
    let done = confirm(&newest, "Xwqe213PZCXwe", "Xwqe213PZCXwe").await;
    assert_eq!(done.status, 201, "{}", done.text());
    confirm(&newest, "Kal31ewwqXrew", "Kal31ewwqXrew")
        .await
        .assert_error(422, "identity.user.utilized_token");

    // Every session ended; the new password works, the old one does not.
    Client::new()
        .get(server.decision("/api/v2/peatio/account/balances"))
        .session(&old_session)
        .send()
        .await
        .assert_error(401, "authz.invalid_session");
    Client::new()
        .post(server.identity("sessions"))
        .json(&json!({ "email": user.email, "password": user.password }))
        .send()
        .await
        .assert_error(401, "identity.session.invalid_params");
    let login = Client::new()
        .post(server.identity("sessions"))
        .json(&json!({ "email": user.email, "password": "Xwqe213PZCXwe" }))
        .send()
        .await;
    assert_eq!(login.status, 200);
    assert!(
        last_event(&env, "system.user.password.reset", &user.email)
            .await
            .is_some()
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM activities WHERE user_id = {} AND topic = 'password'
             AND ((action = 'password reset' AND result IN ('succeed', 'failed')) OR action = 'request password reset')",
            user.id
        ))
        .await,
        4
    );
    // Unknown addresses get the same answer.
    let unknown = Client::new()
        .post(url(&server, "/users/password/generate_code"))
        .json(&json!({ "email": "nobody@example.com" }))
        .send()
        .await;
    assert_eq!(unknown.status, 201);
}

#[tokio::test]
async fn a_whitelink_whitelists_the_caller_even_when_blacklisted() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    env.sql("INSERT INTO restrictions (category, scope, value, code) VALUES ('blacklist', 'ip', '3.3.3.3', 403)").await;
    TestEnv::eventually(2000, || async {
        Client::new()
            .get(server.decision("/api/v2/peatio/public/x"))
            .header("x-forwarded-for", "3.3.3.3")
            .send()
            .await
            .status
            == 403
    })
    .await;
    let token = portcullis::crypto::random_hex::<32>();
    let redis = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{}whitelink:{token}", env.redis_prefix))
        .arg("active")
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    let redeem = |token: &str| {
        Client::new()
            .post(url(&server, "/users/access"))
            .header("x-forwarded-for", "3.3.3.3")
            .json(&json!({ "whitelink_token": token }))
            .send()
    };
    redeem("wrong")
        .await
        .assert_error(422, "identity.user.access.invalid_token");
    let ok = redeem(&token).await;
    assert_eq!((ok.status, ok.text()), (201, "true".to_string()));
    assert_eq!(
        env.count("SELECT count(*) FROM restrictions WHERE category = 'whitelist' AND scope = 'ip' AND value = '3.3.3.3'").await,
        1
    );
    TestEnv::eventually(2000, || async {
        Client::new()
            .get(server.decision("/api/v2/peatio/public/x"))
            .header("x-forwarded-for", "3.3.3.3")
            .send()
            .await
            .status
            == 200
    })
    .await;
    redeem(&token).await.assert_error(422, "value.taken");
    let missing = Client::new()
        .post(url(&server, "/users/access"))
        .send()
        .await;
    assert_eq!(
        missing.errors(),
        [
            "identity.user.missing_whitelink_token",
            "identity.user.empty_whitelink_token"
        ]
    );
}

#[tokio::test]
async fn recaptcha_guards_the_protected_endpoints() {
    let env = TestEnv::new().await;
    let fakes = Fakes::start().await;
    let server = env
        .start_with(&format!(
            "[captcha]\nkind = \"recaptcha\"\nrecaptcha_secret_key = \"s3cret\"\nrecaptcha_site_key = \"site\"\n\
             recaptcha_verify_url = \"{}\"",
            fakes.url("/recaptcha/siteverify")
        ))
        .await;
    let body = |captcha: Value| json!({ "email": email(), "password": "Iequ4geiEWQw!", "captcha_response": captcha });
    signup(&server, body(Value::Null))
        .await
        .assert_error(400, "identity.captcha.required");
    signup(&server, body(json!("")))
        .await
        .assert_error(400, "identity.captcha.required");
    fakes.set(|s| s.recaptcha_ok = false);
    signup(&server, body(json!("answer")))
        .await
        .assert_error(422, "identity.captcha.verification_failed");
    fakes.set(|s| s.recaptcha_ok = true);
    assert_eq!(signup(&server, body(json!("answer"))).await.status, 201);
    let (_, sent) = fakes
        .calls()
        .into_iter()
        .find(|(k, _)| k == "recaptcha")
        .unwrap();
    assert_eq!(sent, "secret=s3cret&response=answer");
    // Login and code requests ask too; configs tell front ends which captcha and site key.
    Client::new()
        .post(server.identity("sessions"))
        .json(&json!({ "email": "x@example.com", "password": "x" }))
        .send()
        .await
        .assert_error(400, "identity.captcha.required");
    let configs = Client::new()
        .get(url(&server, "/configs"))
        .send()
        .await
        .json();
    assert_eq!(
        (
            configs["captcha_type"].as_str(),
            configs["captcha_id"].as_str()
        ),
        (Some("recaptcha"), Some("site"))
    );
}

#[tokio::test]
async fn geetest_registers_and_validates() {
    let env = TestEnv::new().await;
    let fakes = Fakes::start().await;
    let server = env
        .start_with(&format!(
            "[captcha]\nkind = \"geetest\"\ngeetest_id = \"gt-id\"\ngeetest_key = \"gt-key\"\ngeetest_api_url = \"{}\"",
            fakes.url("/geetest")
        ))
        .await;
    let challenge = "0123456789abcdef0123456789abcdef";
    fakes.set(|s| s.geetest_challenge = Some(challenge.into()));
    let registered = Client::new()
        .get(url(&server, "/users/register_geetest"))
        .send()
        .await
        .json();
    assert_eq!(registered["gt"], "gt-id");
    let expected = hex::encode(<md5::Md5 as md5::Digest>::digest(
        format!("{challenge}gt-key").as_bytes(),
    ));
    assert_eq!(registered["challenge"], expected.as_str());
    fakes.set(|s| s.geetest_challenge = None);
    assert_eq!(
        Client::new()
            .get(url(&server, "/users/register_geetest"))
            .send()
            .await
            .text(),
        "\"\""
    );

    let answer = |validate: &str| json!({ "geetest_challenge": "ch", "geetest_validate": validate, "geetest_seccode": "sc|jordan" });
    let body = |captcha: Value| json!({ "email": email(), "password": "Iequ4geiEWQw!", "captcha_response": captcha });
    signup(&server, body(json!({ "geetest_challenge": "ch" })))
        .await
        .assert_error(400, "identity.captcha.mandatory_fields");
    signup(&server, body(answer("bad")))
        .await
        .assert_error(422, "identity.captcha.verification_failed");
    fakes.set(|s| s.geetest_ok = false);
    signup(&server, body(answer(&geetest_validate_for("gt-key", "ch"))))
        .await
        .assert_error(422, "identity.captcha.verification_failed");
    fakes.set(|s| s.geetest_ok = true);
    assert_eq!(
        signup(&server, body(answer(&geetest_validate_for("gt-key", "ch"))))
            .await
            .status,
        201
    );
    // Form bodies carry GeeTest's hash in Rack's nested form.
    let form = format!(
        "email={}&password=Iequ4geiEWQw%21&captcha_response[geetest_challenge]=ch&captcha_response[geetest_validate]={}&captcha_response[geetest_seccode]=sc",
        email().replace('@', "%40"),
        geetest_validate_for("gt-key", "ch")
    );
    let r = Client::new()
        .post(url(&server, "/users"))
        .form(&form)
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn public_information_is_served_under_both_mounts() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    for mount in ["identity", "public"] {
        let get = |path: &str| {
            Client::new()
                .get(server.url(&format!("/api/v2/auth/{mount}{path}")))
                .send()
        };
        assert_eq!(get("/ping").await.json(), json!({ "ping": "pong" }));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((get("/time").await.json()["time"].as_i64().unwrap() - now).abs() <= 2);
        let version = get("/version").await.json();
        assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
        assert!(version["git_sha"].is_string() && version["build_date"].is_string());
        let configs = get("/configs").await.json();
        assert_eq!(
            configs,
            json!({
                "session_expire_time": 1800,
                "captcha_type": "none",
                "phone_verification_type": "mock",
                "password_min_entropy": 14,
                "password_regexp": "(?-mix:^(?=.*[[:lower:]])(?=.*[[:upper:]])(?=.*[[:digit:]])(?=.*[[:graph:]]).{8,80}$)",
            })
        );
        let validate = |password: &str| {
            Client::new()
                .post(server.url(&format!("/api/v2/auth/{mount}/password/validate")))
                .json(&json!({ "password": password }))
                .send()
        };
        let weak = validate("Password1").await;
        assert_eq!(
            (weak.status, weak.json()["entropy"].as_f64()),
            (201, Some(2.0))
        );
        assert_eq!(
            validate("Iequ4geiEWQw").await.json()["entropy"].as_f64(),
            Some(19.59375)
        );
        let missing = Client::new()
            .post(server.url(&format!("/api/v2/auth/{mount}/password/validate")))
            .send()
            .await;
        assert_eq!(
            missing.errors(),
            [
                format!("{mount}.general.missing_password"),
                format!("{mount}.general.empty_password")
            ]
        );
    }
}

#[tokio::test]
async fn code_requests_and_signups_are_rate_limited() {
    let env = TestEnv::new().await;
    let server = env
        .start_with(
            "[rate_limits]\nemail_code_per_account = { max = 2, window = 60 }\npassword_reset_per_account = { max = 2, window = 60 }\nsignup_per_ip = { max = 2, window = 60 }",
        )
        .await;
    let user = env.user("member").await;
    for path in [
        "/users/email/generate_code",
        "/users/password/generate_code",
    ] {
        for _ in 0..2 {
            let r = Client::new()
                .post(url(&server, path))
                .json(&json!({ "email": user.email }))
                .send()
                .await;
            assert_eq!(r.status, 201);
        }
        let limited = Client::new()
            .post(url(&server, path))
            .json(&json!({ "email": user.email }))
            .send()
            .await;
        limited.assert_error(429, "identity.user.too_many_attempts");
        assert!(limited.header("retry-after").is_some());
    }
    for _ in 0..2 {
        assert_eq!(
            signup(
                &server,
                json!({ "email": email(), "password": "Iequ4geiEWQw!" })
            )
            .await
            .status,
            201
        );
    }
    signup(
        &server,
        json!({ "email": email(), "password": "Iequ4geiEWQw!" }),
    )
    .await
    .assert_error(429, "identity.user.too_many_attempts");
}

#[tokio::test]
async fn signing_up_emails_a_link_that_confirms_the_account() {
    let env = TestEnv::new().await;
    let sink = SmtpSink::start().await;
    let server = env
        .start_with(&format!(
            "{}\n[app]\ndomain = \"exchange.test\"",
            sink.mail_config()
        ))
        .await;
    let address = email();
    let created = signup(
        &server,
        json!({ "email": address, "password": "Iequ4geiEWQw!" }),
    )
    .await;
    assert_eq!(created.status, 201);
    let mail = sink.wait_for(&address, 1, WAIT).await.remove(0);
    let link = mail.first_link().expect("a link in the email");
    let prefix = "https://exchange.test/accounts/confirmation?confirmation_token=";
    assert!(link.starts_with(prefix), "{link}");
    // What the front end does with the link: post its token.
    let token = &link[prefix.len()..];
    let confirmed = Client::new()
        .post(url(&server, "/users/email/confirm_code"))
        .header("user-agent", UA)
        .json(&json!({ "token": token }))
        .send()
        .await;
    assert_eq!(confirmed.status, 201, "{}", confirmed.text());
    assert_eq!(confirmed.json()["state"], "active");
    // The confirmation is itself announced by email.
    let mails = sink.wait_for(&address, 2, WAIT).await;
    assert_ne!(mails[1].subject(), mails[0].subject());
}

#[tokio::test]
async fn cross_origin_calls_follow_the_configured_origins() {
    let env = TestEnv::new().await;
    let open = env.start().await;
    // Barong's default: any origin, no credentials, on every answer including errors.
    let error = Client::new()
        .post(url(&open, "/sessions"))
        .header("origin", "https://exchange.example")
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(error.status, 422);
    assert_eq!(error.header("access-control-allow-origin"), Some("*"));
    assert_eq!(error.header("access-control-allow-credentials"), None);

    let listed = env
        .start_with(
            "[cors]\norigins = \"https://exchange.example, http://localhost:3000\"\n\
             allow_credentials = true\nmax_age = 600",
        )
        .await;
    let preflight = |origin: &'static str| {
        Client::new()
            .request("OPTIONS", url(&listed, "/sessions"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, x-csrf-token",
            )
            .send()
    };
    let allowed = preflight("https://exchange.example").await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://exchange.example")
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        allowed.header("access-control-allow-headers"),
        Some("content-type, x-csrf-token")
    );
    assert!(
        allowed
            .header("access-control-allow-methods")
            .unwrap()
            .contains("DELETE")
    );
    assert_eq!(allowed.header("access-control-max-age"), Some("600"));
    assert_eq!(allowed.header("vary"), Some("Origin"));
    // A preflight is answered by the gateway; it never becomes a login attempt.
    assert!(allowed.text().is_empty());

    // The decision fronts are not the auth API: a preflight there is a request like any other
    // and the gate decides it, never an allow answered by CORS.
    let through_envoy = Client::new()
        .request(
            "OPTIONS",
            listed.decision("/api/v2/peatio/account/balances"),
        )
        .header("origin", "https://exchange.example")
        .header("access-control-request-method", "POST")
        .send()
        .await;
    through_envoy.assert_error(401, "authz.invalid_session");
    assert_eq!(through_envoy.header("access-control-allow-origin"), None);

    let refused = preflight("https://evil.example").await;
    assert_eq!(refused.status, 200);
    assert_eq!(refused.header("access-control-allow-origin"), None);
    assert_eq!(refused.header("access-control-allow-methods"), None);

    let actual = Client::new()
        .get(url(&listed, "/ping"))
        .header("origin", "http://localhost:3000")
        .send()
        .await;
    assert_eq!(actual.json(), json!({ "ping": "pong" }));
    assert_eq!(
        actual.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    assert!(
        actual
            .header("access-control-expose-headers")
            .unwrap()
            .contains("Retry-After")
    );
    let stranger = Client::new()
        .get(url(&listed, "/ping"))
        .header("origin", "https://evil.example")
        .send()
        .await;
    assert_eq!(stranger.status, 200);
    assert_eq!(stranger.header("access-control-allow-origin"), None);
}
