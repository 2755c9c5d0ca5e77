//! `/resource/phones`: adding, listing, sending codes to and verifying phone numbers, with each
//! provider (`mock`, `twilio_sms` and `twilio_verify` against a local Twilio fake), every
//! refusal, the rate limits, and what a verification writes (label, level, event, email).

use portcullis::config::{PhoneVerification, Secret, Settings};
use serde_json::{Value, json};

use crate::resource::bearer;
use crate::support::smtp::{self, SmtpSink, WAIT};
use crate::support::twilio::FakeTwilio;
use crate::support::{Client, Response, Server, Session, TestEnv, TestUser};

const UA: &str = "380501234567";
const UA_TYPED: &str = "+380 (50) 123-45-67";
const US: &str = "14155552671";

/// How a test reaches the API: a session through the gate (with CSRF), or a Bearer token.
enum Auth {
    Session(Session),
    Bearer(String),
}

impl Auth {
    async fn call(&self, server: &Server, route: &str, body: Option<Value>) -> Response {
        let client = Client::new();
        let request = match body {
            Some(body) => client.post(server.resource(route)).json(&body),
            None => client.get(server.resource(route)),
        };
        match self {
            Auth::Session(session) => {
                request
                    .session(session)
                    .header("x-csrf-token", &session.csrf)
                    .send()
                    .await
            }
            Auth::Bearer(token) => request.header("authorization", token).send().await,
        }
    }

    async fn add(&self, server: &Server, number: &str) -> Response {
        self.call(server, "phones", Some(json!({ "phone_number": number })))
            .await
    }

    async fn send_code(&self, server: &Server, number: &str) -> Response {
        self.call(
            server,
            "phones/send_code",
            Some(json!({ "phone_number": number })),
        )
        .await
    }

    async fn verify(&self, server: &Server, number: &str, code: &str) -> Response {
        self.call(
            server,
            "phones/verify",
            Some(json!({ "phone_number": number, "verification_code": code })),
        )
        .await
    }

    async fn list(&self, server: &Server) -> Value {
        let listed = self.call(server, "phones", None).await;
        assert_eq!(listed.status, 200, "{}", listed.text());
        listed.json()
    }
}

async fn session(server: &Server, user: &TestUser) -> Auth {
    Auth::Session(server.login(user).await)
}

async fn token(server: &Server, user: &TestUser) -> Auth {
    let session = server.login(user).await;
    Auth::Bearer(bearer(server, &session).await)
}

#[track_caller]
fn sent(response: &Response, channel: &str) {
    assert_eq!(response.status, 201, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({ "message": format!("Code was sent successfully via {channel}") })
    );
}

fn twilio(settings: &mut Settings, fake: &FakeTwilio, kind: PhoneVerification) {
    settings.phones.verification = kind;
    settings.phones.twilio_api_url = fake.url();
    settings.phones.twilio_verify_url = fake.url();
    settings.phones.twilio_account_sid = "ACfake".into();
    settings.phones.twilio_auth_token = Some(Secret::new("twilio-token"));
}

async fn outbox(env: &TestEnv, name: &str, uid: &str) -> Vec<Value> {
    let client = env.store.client().await.unwrap();
    client
        .query(
            "SELECT payload FROM event_outbox WHERE name = $1 AND payload->'record'->'user'->>'uid' = $2 ORDER BY id",
            &[&name, &uid],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// (number_encrypted, number_index, country, code_digest, code, validated_at is set).
async fn phone_row(
    env: &TestEnv,
    user_id: i64,
) -> (String, String, String, Option<String>, Option<String>, bool) {
    let client = env.store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT number_encrypted, number_index, country, code_digest, code, validated_at IS NOT NULL
             FROM phones WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap();
    (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    )
}

#[tokio::test]
async fn mock_numbers_are_added_masked_verified_and_labelled_with_a_session_or_a_token() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let by_session = session(&server, &user).await;
    let by_token = token(&server, &user).await;

    assert_eq!(by_token.list(&server).await, json!([]));
    sent(&by_session.add(&server, UA_TYPED).await, "sms");
    let call = by_token
        .call(
            &server,
            "phones",
            Some(json!({ "phone_number": "1 415-555-2671", "channel": "call" })),
        )
        .await;
    sent(&call, "call");

    // Listed oldest first, masked: the country code and the last 4 digits.
    assert_eq!(
        by_session.list(&server).await,
        json!([
            { "country": "UA", "number": "380*****4567", "validated_at": null },
            { "country": "US", "number": "1******2671", "validated_at": null },
        ])
    );
    // Sealed at rest, found through the keyed index; mock stores no code.
    let client = env.store.client().await.unwrap();
    let (sealed, index, country): (String, String, String) = {
        let row = client
            .query_one(
                "SELECT number_encrypted, number_index, country FROM phones WHERE user_id = $1 ORDER BY id LIMIT 1",
                &[&user.id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert!(!sealed.contains(UA), "{sealed}");
    let secrets = env.secrets();
    assert_eq!(secrets.open_string("phone.number", &sealed).unwrap(), UA);
    assert_eq!(index, secrets.blind_index("phone.number", UA.as_bytes()));
    assert_eq!(country, "UA");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM phones WHERE user_id = {} AND (code IS NOT NULL OR code_digest IS NOT NULL)",
            user.id
        ))
        .await,
        0
    );

    // mock: any code verifies a number the user added.
    let verified = by_token.verify(&server, "380-50-123-45-67", "00000").await;
    assert_eq!(verified.status, 201, "{}", verified.text());
    let body = verified.json();
    assert_eq!(body["uid"], user.uid.as_str());
    assert_eq!(body["level"], 2);
    assert_eq!(body["phones"][0]["number"], "380*****4567");
    let validated_at = body["phones"][0]["validated_at"].as_str().unwrap();
    assert!(
        validated_at.len() == 24 && validated_at.ends_with('Z') && &validated_at[19..20] == ".",
        "milliseconds, as Barong renders it: {validated_at}"
    );
    assert_eq!(body["phones"][1]["validated_at"], Value::Null);
    let labels = body["labels"].as_array().unwrap();
    assert!(
        labels
            .iter()
            .any(|l| l["key"] == "phone" && l["value"] == "verified" && l["scope"] == "private"),
        "{labels:?}"
    );
    // The same entity as GET /users/me, and the token now carries level 2.
    let me = by_session.call(&server, "users/me", None).await.json();
    assert_eq!(me["phones"], body["phones"]);
    assert_eq!(me["level"], 2);
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM users WHERE id = {} AND level = 2",
            user.id
        ))
        .await,
        1
    );

    // The events: the label, and the phone (country, masked number).
    let events = outbox(&env, "system.phone.verified", &user.uid).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["record"]["phone"],
        json!({ "country": "UA", "number": "380*****4567", "last_digits": "4567" })
    );
    assert!(!events[0].to_string().contains(UA), "{}", events[0]);
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM event_outbox WHERE name = 'model.label.created'
             AND payload->'record'->>'key' = 'phone' AND payload->'record'->'user'->>'uid' = '{}'",
            user.uid
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn every_refusal_answers_barongs_code() {
    let env = TestEnv::new().await;
    let server = env
        .start_adjusted(|s| s.rate_limits.phone_code_per_account.max = 100)
        .await;
    let (alice, bob) = (env.user("member").await, env.user("member").await);
    let a = session(&server, &alice).await;
    let b = token(&server, &bob).await;

    // Parameters: every code in one 422.
    let missing = a.call(&server, "phones", Some(json!({}))).await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.errors(),
        [
            "resource.phone.missing_phone_number",
            "resource.phone.empty_phone_number"
        ]
    );
    let blank = a
        .call(
            &server,
            "phones",
            Some(json!({ "phone_number": " ", "channel": "fax" })),
        )
        .await;
    assert_eq!(
        (blank.status, blank.errors()),
        (
            422,
            vec![
                "resource.phone.empty_phone_number".to_string(),
                "resource.phone.invalid_channel".to_string()
            ]
        )
    );
    let no_code = b
        .call(
            &server,
            "phones/verify",
            Some(json!({ "phone_number": UA })),
        )
        .await;
    assert_eq!(
        (no_code.status, no_code.errors()),
        (
            422,
            vec![
                "resource.phone.missing_verification_code".to_string(),
                "resource.phone.empty_verification_code".to_string()
            ]
        )
    );
    b.call(
        &server,
        "phones/send_code",
        Some(json!({ "phone_number": UA, "channel": "pigeon" })),
    )
    .await
    .assert_error(422, "resource.phone.invalid_channel");

    // Not international numbers: national forms, too short, unknown country codes, words.
    for bad in ["0501234567", "38050", "999123456789", "phone", "+"] {
        a.add(&server, bad)
            .await
            .assert_error(400, "resource.phone.invalid_num");
        b.verify(&server, bad, "12345")
            .await
            .assert_error(400, "resource.phone.invalid_num");
        b.send_code(&server, bad)
            .await
            .assert_error(400, "resource.phone.invalid_num");
    }
    // Not added yet.
    a.send_code(&server, UA)
        .await
        .assert_error(404, "resource.phone.doesnt_exist");
    a.verify(&server, UA, "12345")
        .await
        .assert_error(404, "resource.phone.doesnt_exist");

    // Both add the number; adding it again (in any spelling) is `exists`.
    sent(&a.add(&server, UA).await, "sms");
    sent(&b.add(&server, UA_TYPED).await, "sms");
    a.add(&server, "+380501234567")
        .await
        .assert_error(400, "resource.phone.exists");
    // Alice verifies it: nobody may add it, resend to it, or verify it any more.
    assert_eq!(a.verify(&server, UA, "1").await.status, 201);
    let carol = env.user("member").await;
    let c = session(&server, &carol).await;
    c.add(&server, UA)
        .await
        .assert_error(400, "resource.phone.number_exist");
    a.add(&server, UA)
        .await
        .assert_error(400, "resource.phone.number_exist");
    b.send_code(&server, UA)
        .await
        .assert_error(400, "resource.phone.number_exist");
    b.verify(&server, UA, "1")
        .await
        .assert_error(400, "resource.phone.number_exist");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM phones WHERE user_id = {} AND validated_at IS NOT NULL",
            bob.id
        ))
        .await,
        0
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM phones WHERE user_id = {}",
            carol.id
        ))
        .await,
        0
    );
    // Nothing answered 500 on the way, and no credential: Barong's 401.
    Client::new()
        .post(server.resource("phones"))
        .json(&json!({ "phone_number": US }))
        .send()
        .await
        .assert_error(401, "jwt.decode_and_verify");
}

#[tokio::test]
async fn twilio_sms_sends_our_code_which_verifies_once_and_expires() {
    let fake = FakeTwilio::start().await;
    let env = TestEnv::new().await;
    let server = env
        .start_adjusted(|s| twilio(s, &fake, PhoneVerification::TwilioSms))
        .await;
    let user = env.user("member").await;
    let by_token = token(&server, &user).await;

    let added = by_token
        .call(
            &server,
            "phones",
            Some(json!({ "phone_number": UA_TYPED, "channel": "call" })),
        )
        .await;
    sent(&added, "call");
    let messages = fake.calls("messages");
    assert_eq!(messages.len(), 1);
    let sms = &messages[0];
    assert_eq!(sms.path, "/2010-04-01/Accounts/ACfake/Messages.json");
    assert_eq!(
        sms.authorization,
        format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                "ACfake:twilio-token"
            )
        )
    );
    assert_eq!(sms.form["To"], format!("+{UA}"));
    assert_eq!(sms.form["From"], "+15005550000");
    let first = fake.last_code();
    assert_eq!(
        sms.form["Body"],
        format!("Your verification code for Barong: {first}")
    );
    // Stored as a keyed digest bound to the row, never as the code.
    let (_, _, _, digest, code, _) = phone_row(&env, user.id).await;
    assert_eq!(code, None);
    let digest = digest.expect("a digest");
    assert!(!digest.contains(&first));
    assert_eq!(digest.len(), 64);

    // A wrong code, then a resend: the first code no longer verifies.
    let wrong = if first == "11111" { "22222" } else { "11111" };
    by_token
        .verify(&server, UA, wrong)
        .await
        .assert_error(404, "resource.phone.verification_invalid");
    sent(&by_token.send_code(&server, UA).await, "sms");
    let second = fake.last_code();
    assert_eq!(fake.calls("messages").len(), 2);
    if second != first {
        by_token
            .verify(&server, UA, &first)
            .await
            .assert_error(404, "resource.phone.verification_invalid");
    }

    // An expired code is refused.
    env.sql(&format!(
        "UPDATE phones SET code_expires_at = now() - interval '1 second' WHERE user_id = {}",
        user.id
    ))
    .await;
    by_token
        .verify(&server, UA, &second)
        .await
        .assert_error(404, "resource.phone.verification_invalid");

    // A fresh code verifies, once.
    sent(&by_token.send_code(&server, UA).await, "sms");
    let third = fake.last_code();
    let verified = by_token.verify(&server, UA, &third).await;
    assert_eq!(verified.status, 201, "{}", verified.text());
    assert_eq!(verified.json()["level"], 2);
    let (_, _, _, digest, _, validated) = phone_row(&env, user.id).await;
    assert!(validated);
    assert_eq!(digest, None, "the code is forgotten once used");
    by_token
        .verify(&server, UA, &third)
        .await
        .assert_error(404, "resource.phone.verification_invalid");
    assert_eq!(
        outbox(&env, "system.phone.verified", &user.uid).await.len(),
        1
    );
}

#[tokio::test]
async fn twilio_errors_answer_barongs_codes_and_keep_the_number() {
    let fake = FakeTwilio::start().await;
    let env = TestEnv::new().await;
    let server = env
        .start_adjusted(|s| {
            twilio(s, &fake, PhoneVerification::TwilioSms);
            s.rate_limits.phone_code_per_account.max = 100;
        })
        .await;
    let user = env.user("member").await;
    let by_session = session(&server, &user).await;

    fake.set(|s| s.error = Some(21614));
    by_session
        .add(&server, UA)
        .await
        .assert_error(422, "resource.phone.num_not_valid");
    // The number stays added, as in Barong: a resend is the way on.
    assert_eq!(by_session.list(&server).await.as_array().unwrap().len(), 1);
    for (twilio_code, code) in [
        (21612, "resource.phone.num_not_reachable"),
        (21618, "resource.phone.sms_content_invalid"),
        (21610, "resource.phone.unsubscribed_recipient"),
        (20003, "resource.phone.twilio_unexpected"),
    ] {
        fake.set(|s| s.error = Some(twilio_code));
        by_session
            .send_code(&server, UA)
            .await
            .assert_error(422, code);
    }
    fake.set(|s| s.error = None);
    sent(&by_session.send_code(&server, UA).await, "sms");

    // Twilio down: the same unexpected error, not a 500.
    let down = FakeTwilio::start().await;
    let server = env
        .start_adjusted(|s| {
            twilio(s, &down, PhoneVerification::TwilioSms);
            s.phones.twilio_api_url = "http://127.0.0.1:9".into();
        })
        .await;
    let again = session(&server, &user).await;
    again
        .send_code(&server, UA)
        .await
        .assert_error(422, "resource.phone.twilio_unexpected");
}

#[tokio::test]
async fn twilio_verify_creates_its_service_sends_and_checks_through_twilio() {
    let fake = FakeTwilio::start().await;
    let env = TestEnv::new().await;
    let server = env
        .start_adjusted(|s| twilio(s, &fake, PhoneVerification::TwilioVerify))
        .await;
    // Created at start, named after the application.
    let created = fake.calls("service");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].form["FriendlyName"], "Barong");
    assert!(created[0].authorization.starts_with("Basic "));

    let user = env.user("member").await;
    let by_token = token(&server, &user).await;
    let added = by_token
        .call(
            &server,
            "phones",
            Some(json!({ "phone_number": US, "channel": "call" })),
        )
        .await;
    sent(&added, "call");
    let verifications = fake.calls("verification");
    assert_eq!(verifications.len(), 1);
    assert_eq!(
        verifications[0].path,
        "/v2/Services/VAfake0001/Verifications"
    );
    assert_eq!(verifications[0].form["To"], format!("+{US}"));
    assert_eq!(verifications[0].form["Channel"], "call");
    let (_, _, _, digest, _, _) = phone_row(&env, user.id).await;
    assert_eq!(digest, None, "Twilio keeps the code");

    // pending, then a check Twilio no longer finds: both a wrong code.
    fake.set(|s| s.approve = Some("424242".into()));
    by_token
        .verify(&server, US, "123456")
        .await
        .assert_error(404, "resource.phone.verification_invalid");
    fake.set(|s| s.check_not_found = true);
    by_token
        .verify(&server, US, "424242")
        .await
        .assert_error(404, "resource.phone.verification_invalid");
    fake.set(|s| s.check_not_found = false);
    let verified = by_token.verify(&server, US, "424242").await;
    assert_eq!(verified.status, 201, "{}", verified.text());
    let checks = fake.calls("check");
    assert_eq!(checks.len(), 3);
    assert_eq!(checks[2].path, "/v2/Services/VAfake0001/VerificationCheck");
    assert_eq!(
        (
            checks[2].form["To"].as_str(),
            checks[2].form["Code"].as_str()
        ),
        ("+14155552671", "424242")
    );
    assert_eq!(fake.calls("service").len(), 1, "created once");

    // A configured service is used as it is.
    let configured = FakeTwilio::start().await;
    let server = env
        .start_adjusted(|s| {
            twilio(s, &configured, PhoneVerification::TwilioVerify);
            s.phones.twilio_service_sid = Some("VAconfigured".into());
        })
        .await;
    let other = env.user("member").await;
    sent(
        &session(&server, &other).await.add(&server, UA).await,
        "sms",
    );
    assert!(configured.calls("service").is_empty());
    assert_eq!(
        configured.calls("verification")[0].path,
        "/v2/Services/VAconfigured/Verifications"
    );
}

#[tokio::test]
async fn twilio_verify_without_a_service_starts_and_answers_unavailable_until_one_is_made() {
    let fake = FakeTwilio::start().await;
    fake.set(|s| s.services_fail = true);
    let env = TestEnv::new().await;
    let server = env
        .start_adjusted(|s| twilio(s, &fake, PhoneVerification::TwilioVerify))
        .await;
    let user = env.user("member").await;
    let by_session = session(&server, &user).await;
    by_session
        .add(&server, UA)
        .await
        .assert_error(503, "resource.phone.verification_unavailable");
    by_session
        .verify(&server, UA, "123456")
        .await
        .assert_error(503, "resource.phone.verification_unavailable");
    assert!(fake.calls("verification").is_empty());

    // Twilio is back: the next request creates the service and goes on.
    fake.set(|s| s.services_fail = false);
    sent(&by_session.send_code(&server, UA).await, "sms");
    assert_eq!(
        fake.calls("verification")[0].path,
        "/v2/Services/VAfake0001/Verifications"
    );
}

#[tokio::test]
async fn sending_and_trying_codes_are_rate_limited_per_user() {
    let env = TestEnv::new().await;
    let server = env
        .start_adjusted(|s| {
            s.rate_limits.phone_code_per_account.max = 2;
            s.rate_limits.phone_verify_per_account.max = 2;
        })
        .await;
    let user = env.user("member").await;
    let by_session = session(&server, &user).await;
    let by_token = token(&server, &user).await;
    sent(&by_session.add(&server, UA).await, "sms");
    sent(&by_token.send_code(&server, UA).await, "sms");
    // A number that is not one costs nothing.
    by_session
        .add(&server, "0501234567")
        .await
        .assert_error(400, "resource.phone.invalid_num");
    // The third send in the window, by any credential and to any number, is refused.
    let limited = by_session.add(&server, US).await;
    limited.assert_error(429, "resource.phone.too_many_attempts");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    by_token
        .send_code(&server, UA)
        .await
        .assert_error(429, "resource.phone.too_many_attempts");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM phones WHERE user_id = {}",
            user.id
        ))
        .await,
        1
    );
    // Another user has limits of their own.
    let other = env.user("member").await;
    sent(
        &session(&server, &other).await.add(&server, UA).await,
        "sms",
    );

    // Verification tries: two, then 429 whatever the code.
    by_token
        .verify(&server, US, "1")
        .await
        .assert_error(404, "resource.phone.doesnt_exist");
    assert_eq!(by_token.verify(&server, UA, "1").await.status, 201);
    by_token
        .verify(&server, UA, "1")
        .await
        .assert_error(429, "resource.phone.too_many_attempts");
}

#[tokio::test]
async fn a_verified_number_mails_its_owner_a_security_notice() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new().await;
    let server = env.start_with(&smtp::mail_config(sink.port())).await;
    let user = env.user("member").await;
    let by_session = session(&server, &user).await;
    sent(&by_session.add(&server, UA).await, "sms");
    assert_eq!(by_session.verify(&server, UA, "1").await.status, 201);

    let mail = sink.wait_for(&user.email, 1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), "Phone Number Verified");
    let text = mail.text_body();
    assert!(text.contains("ending in 4567"), "{text}");
    assert!(text.contains(&user.email), "{text}");
    assert!(!text.contains(UA), "the full number is not mailed: {text}");
    assert!(mail.html_body().contains("ending in 4567"));
}
