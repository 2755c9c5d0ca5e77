//! A trader's whole way to a working API key, as issue 10 tells it: sign up, confirm the email
//! from the inbox, turn 2FA on with a real authenticator computation, create a key, sign a
//! request through the built-in proxy to an upstream, and see the key refused once 2FA is off.

use crate::resource_otp::{code, secret_of, step_now};
use crate::support::smtp::{SmtpSink, WAIT};
use crate::support::upstream::Upstream;
use crate::support::{Client, Session, TestEnv, UA, random_suffix, unique_nonce};

const BALANCES: &str = "/api/v2/peatio/account/balances";

#[tokio::test]
async fn a_new_user_reaches_the_upstream_with_a_key_until_2fa_is_turned_off() {
    let sink = SmtpSink::start().await;
    let upstream = Upstream::start().await;
    let env = TestEnv::new().await;
    let server = env
        .start_with(&format!(
            "{}\nconfirmation_url = \"https://exchange.test/confirm?token={{token}}\"\n\
             [[routes]]\nprefix = \"/api/v2/peatio\"\nupstream = \"{}\"",
            sink.mail_config(),
            upstream.url()
        ))
        .await;

    // 1. Sign up, and confirm with the link the email carries.
    let email = format!("trader-{}@example.com", random_suffix());
    let password = "Iequ4geiEWQw!";
    let signup = Client::new()
        .post(server.identity("users"))
        .header("user-agent", UA)
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await;
    assert_eq!(signup.status, 201, "{}", signup.text());
    let mail = sink.wait_for(&email, 1, WAIT).await.remove(0);
    let link = mail.first_link().expect("a confirmation link");
    let token = link.split_once("token=").expect("a token").1.to_string();
    let confirmed = Client::new()
        .post(server.identity("users/email/confirm_code"))
        .header("user-agent", UA)
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await;
    assert_eq!(confirmed.status, 201, "{}", confirmed.text());
    assert_eq!(confirmed.json()["state"], "active");
    let session = Session {
        cookie: confirmed.cookie("_barong_session").expect("a session"),
        csrf: confirmed.json()["csrf_token"].as_str().unwrap().to_string(),
    };
    let post = |route: &str, body: serde_json::Value| {
        Client::new()
            .post(server.resource(route))
            .session(&session)
            .header("x-csrf-token", &session.csrf)
            .json(&body)
            .send()
    };

    // 2. 2FA on, with the code an authenticator computes from the QR code's URL.
    let enrolment = post("otp/generate_qrcode", serde_json::json!({})).await;
    assert_eq!(enrolment.status, 201, "{}", enrolment.text());
    let secret = secret_of(enrolment.json()["data"]["url"].as_str().unwrap());
    let step = step_now();
    let enabled = post(
        "otp/enable",
        serde_json::json!({ "code": code(&secret, step) }),
    )
    .await;
    assert_eq!(enabled.status, 201, "{}", enabled.text());

    // 3. A key, created with the next code (each code is accepted once).
    let created = post(
        "api_keys",
        serde_json::json!({ "algorithm": "HS256", "totp_code": code(&secret, step + 1) }),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let key = created.json();
    let (kid, key_secret) = (
        key["kid"].as_str().unwrap().to_string(),
        key["secret"].as_str().unwrap().to_string(),
    );
    let signed = || {
        let nonce = unique_nonce();
        let signature = portcullis::authn::api_keys::sign(&key_secret, &nonce, &kid);
        Client::new()
            .get(server.url(BALANCES))
            .header("x-auth-apikey", &kid)
            .header("x-auth-nonce", &nonce)
            .header("x-auth-signature", &signature)
            .send()
    };

    // 4. The signed request reaches the upstream with a token naming the user: at once, though
    //    the gate cached the user (2FA off) during the session requests above, because the
    //    node that committed the change forgets its cached subject without waiting for the
    //    change notice.
    let reached = signed().await;
    assert_eq!(reached.status, 200, "{}", reached.text());
    let seen = reached.json();
    let bearer = seen["headers"]["authorization"]
        .as_str()
        .expect("a bearer token");
    let claims = crate::support::jwt_claims(bearer.trim_start_matches("Bearer "));
    assert_eq!(claims["email"], email.as_str());
    assert!(
        seen["headers"].get("x-auth-apikey").is_none(),
        "credentials stripped"
    );

    // 5. 2FA off: the key goes inactive, and the gate refuses it on the next request.
    // A step of the window not used yet: the one before, or (had the clock crossed into the
    // next step meanwhile) the one after it.
    let unused = (step_now() - 1..=step_now() + 1)
        .find(|s| *s != step && *s != step + 1)
        .unwrap();
    let disabled = post(
        "otp/disable",
        serde_json::json!({ "code": code(&secret, unused) }),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    // Refused at once: this node forgot the user, whose 2FA is off. The key's own cached
    // state turns inactive with the change notice, and then the key's code answers.
    let refused = signed().await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    let code_now = refused.errors()[0].clone();
    assert!(
        code_now == "authz.disabled_2fa" || code_now == "authz.apikey_not_active",
        "{}",
        refused.text()
    );
    TestEnv::eventually(2_000, || async {
        signed().await.errors() == ["authz.apikey_not_active"]
    })
    .await;
}
