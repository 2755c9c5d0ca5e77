//! Emails sent by the built-in mailer: what arrives at an SMTP server (recipient, sender, subject
//! in the user's language, the link), the queue row marked sent, and retries while the relay is
//! down. Events are emitted as the identity flows emit them (`Events::emit`, then `ring`).

use portcullis::store;
use serde_json::json;

use crate::support::smtp::{self, SENDER_EMAIL, SENDER_NAME, SmtpSink, WAIT};
use crate::support::{Server, TestEnv, TestUser, random_suffix};

const CONFIRMATION: &str = "system.user.email.confirmation.token";
const DOMAIN: &str = "exchange.test";
const SUBJECT_EN: &str = "Email Confirmation";
const SUBJECT_RU: &str = "Подтверждение адреса электронной почты";

/// The server's settings: deliver to 127.0.0.1:`port`, links to a known domain and URL.
fn config(port: u16) -> String {
    format!(
        "{}\nconfirmation_url = \"https://{{domain}}/accounts/confirm?token={{token}}\"\n\
         [app]\ndomain = \"{DOMAIN}\"\n",
        smtp::mail_config(port)
    )
}

/// A token shaped like Barong's confirmation JWT, unique per call.
fn token() -> String {
    format!(
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjb25maXJtYXRpb24ifQ.{}-sig_{}",
        random_suffix(),
        random_suffix()
    )
}

/// Emits the confirmation event for `user` as the signup flow does; returns the queue row's id.
async fn emit_confirmation(env: &TestEnv, server: &Server, user: &TestUser, token: &str) -> i64 {
    let client = env.store.client().await.unwrap();
    let row = store::users::find_by_uid(&client, &user.uid)
        .await
        .unwrap()
        .unwrap();
    let body = json!({"record": {
        "user": portcullis::events::user_record(&row, None),
        "domain": server.app.settings.app.domain,
        "token": token,
    }});
    server
        .app
        .events
        .emit(&client, CONFIRMATION, &body)
        .await
        .unwrap();
    server.app.events.ring();
    client
        .query_one(
            "SELECT max(id) FROM mail_queue WHERE payload->'record'->'user'->>'email' = $1",
            &[&user.email],
        )
        .await
        .unwrap()
        .get(0)
}

/// (sent, attempts, last_error) of a queue row.
async fn queue_row(env: &TestEnv, id: i64) -> (bool, i32, Option<String>) {
    let client = env.store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT sent_at IS NOT NULL, attempts, last_error FROM mail_queue WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test]
async fn the_confirmation_email_reaches_the_user_with_the_link() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new().await;
    let server = env.start_with(&config(sink.port())).await;
    let user = env.user("member").await;
    let token = token();

    let id = emit_confirmation(&env, &server, &user, &token).await;

    let mail = sink.wait_for(&user.email, 1, WAIT).await.remove(0);
    assert_eq!(mail.rcpt_to, std::slice::from_ref(&user.email));
    assert_eq!(mail.mail_from, SENDER_EMAIL);
    assert_eq!(mail.subject(), SUBJECT_EN);
    assert_eq!(mail.from(), format!("\"{SENDER_NAME}\" <{SENDER_EMAIL}>"));
    assert_eq!(mail.header("To").as_deref(), Some(user.email.as_str()));
    let link = format!("https://{DOMAIN}/accounts/confirm?token={token}");
    assert_eq!(mail.first_link().as_deref(), Some(link.as_str()));
    let text = mail.text_body();
    assert!(text.contains(&user.email), "{text}");
    assert!(text.contains("Barong"), "app name in the text: {text}");
    let html = mail.html_body();
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(
        mail.raw_header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative"),
        "{}",
        mail.data
    );

    TestEnv::eventually(10_000, || async { queue_row(&env, id).await.0 }).await;
    assert_eq!(queue_row(&env, id).await, (true, 0, None));
    assert_eq!(sink.messages_for(&user.email).len(), 1, "sent once");
}

#[tokio::test]
async fn the_users_language_chooses_the_template_and_english_is_the_fallback() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new().await;
    let server = env.start_with(&config(sink.port())).await;
    let russian = env.user("member").await;
    let german = env.user("member").await;
    for (user, data) in [
        (&russian, r#"{"language":"ru"}"#),
        (&german, r#"{"language":"de"}"#),
    ] {
        env.sql(&format!(
            "UPDATE users SET data = '{data}' WHERE uid = '{}'",
            user.uid
        ))
        .await;
    }
    let (token_ru, token_de) = (token(), token());

    emit_confirmation(&env, &server, &russian, &token_ru).await;
    emit_confirmation(&env, &server, &german, &token_de).await;

    let mail = sink.wait_for(&russian.email, 1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), SUBJECT_RU);
    let text = mail.text_body();
    assert!(text.contains("Здравствуйте"), "{text}");
    assert_eq!(
        mail.first_link(),
        Some(format!(
            "https://{DOMAIN}/accounts/confirm?token={token_ru}"
        ))
    );
    // No de.toml: the default language (en).
    let mail = sink.wait_for(&german.email, 1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), SUBJECT_EN);
    assert_eq!(
        mail.first_link(),
        Some(format!(
            "https://{DOMAIN}/accounts/confirm?token={token_de}"
        ))
    );
}

#[tokio::test]
async fn a_relay_that_is_down_is_retried_until_it_is_up() {
    let port = crate::support::free_port();
    let env = TestEnv::new().await;
    let server = env.start_with(&config(port)).await;
    let user = env.user("member").await;
    let token = token();

    let id = emit_confirmation(&env, &server, &user, &token).await;

    // Two failed attempts: the row is kept, counted and explained.
    TestEnv::eventually(30_000, || async { queue_row(&env, id).await.1 >= 2 }).await;
    let (sent, attempts, error) = queue_row(&env, id).await;
    assert!(!sent);
    assert!(attempts >= 2);
    let error = error.expect("last_error is kept");
    assert!(error.starts_with("smtp: "), "{error}");
    assert!(!error.contains(&token), "{error}");

    let sink = SmtpSink::start_on(port).await;
    let mail = sink.wait_for(&user.email, 1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), SUBJECT_EN);
    assert_eq!(
        mail.first_link(),
        Some(format!("https://{DOMAIN}/accounts/confirm?token={token}"))
    );
    TestEnv::eventually(10_000, || async { queue_row(&env, id).await.0 }).await;
    let (_, attempts_after, _) = queue_row(&env, id).await;
    assert!(attempts_after >= attempts, "failures stay counted");
}
