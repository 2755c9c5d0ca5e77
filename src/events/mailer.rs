//! The built-in mailer, which replaces Barong's separate `EventMailer` process: it owns the mail
//! templates (one TOML file per language in `mail.templates_dir`, loaded once at start), their
//! rendering, and the worker that drains the `mail_queue` table — claim, render, deliver by SMTP
//! (or, in development, to `var/mail/<id>.eml`), mark sent or count the failure.
//!
//! Templates are `events::templates`; here `{{link}}` is the confirmation or reset URL with
//! `{domain}` and `{token}` filled, and `{{app_name}}` is `app.name`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use tokio::sync::Notify;

use super::templates::{Templates, render};
use crate::app::App;
use crate::config::{self, MailDelivery, SmtpTls};
use crate::store::{StoreError, execute, query};

/// A row is given up after this many failed attempts (it stays in the table for inspection).
pub const MAX_ATTEMPTS: i32 = 10;
const BATCH: i64 = 20;
/// Idle wait when nothing is pending: the wake bell usually comes first; this bounds how long a
/// row left by a crashed node (its lock released) or a missed notice waits.
const IDLE_WAIT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Per SMTP connection and command; lettre's default (60 s) would hold the claimed batch (and its
/// pooled database connection) too long when a relay hangs.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);
/// Where `delivery = "log"` writes messages, relative to the working directory like the other
/// development files under `var/`.
const LOG_DIR: &str = "var/mail";

/// Event names whose record carries a token, and which link template it goes into.
const CONFIRMATION_EVENT: &str = "system.user.email.confirmation.token";
const RESET_EVENT: &str = "system.user.password.reset.token";

/// Characters kept as they are in a token placed into a URL: RFC 3986 unreserved ones. A JWT
/// passes unchanged; anything else cannot break out of the query parameter.
const TOKEN_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Runs until the process ends.
pub async fn run(app: App, wake: Arc<Notify>) {
    let mailer = Mailer::new(&app.settings);
    if matches!(mailer.delivery, Delivery::Disabled) {
        return;
    }
    let sent = metrics::counter!("portcullis_mail_sent_total");
    let failed = metrics::counter!("portcullis_mail_failed_total");
    let mut backoff = BACKOFF_MIN;
    loop {
        match process_batch(&app, &mailer).await {
            Ok(outcome) => {
                sent.increment(outcome.sent);
                failed.increment(outcome.failed);
                if outcome.relay_down {
                    // The wake bell is not listened to here: a relay that is down must not be
                    // hammered because mail keeps arriving. (A message the relay refuses waits
                    // on its own `next_attempt_at` instead.)
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
                backoff = BACKOFF_MIN;
                if outcome.claimed < BATCH as usize {
                    let _ = tokio::time::timeout(IDLE_WAIT, wake.notified()).await;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "mail queue unavailable; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[derive(Debug, Default)]
struct BatchOutcome {
    claimed: usize,
    sent: u64,
    failed: u64,
    relay_down: bool,
}

/// Claims up to [`BATCH`] pending rows and delivers them. The rows stay locked (`FOR UPDATE
/// SKIP LOCKED`) until the transaction ends, so other nodes running the mailer take other rows.
/// Delivery is at least once: a node that dies between sending and committing leaves the rows
/// pending, and they are sent again.
async fn process_batch(app: &App, mailer: &Mailer) -> Result<BatchOutcome, StoreError> {
    let mut client = app.store.client().await?;
    let tx = client.transaction().await?;
    let rows = query(
        &tx,
        "SELECT id, event_name, payload FROM mail_queue
         WHERE sent_at IS NULL AND attempts < $1 AND next_attempt_at <= now()
         ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
        &[&MAX_ATTEMPTS, &BATCH],
    )
    .await?;
    let mut outcome = BatchOutcome {
        claimed: rows.len(),
        ..BatchOutcome::default()
    };
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(outcome);
    }
    let payloads: Vec<(i64, String, Value)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let languages = user_languages(&tx, &payloads).await?;
    for (id, event, payload) in &payloads {
        let language = payload
            .pointer("/record/user/uid")
            .and_then(Value::as_str)
            .and_then(|uid| languages.get(uid))
            .map(String::as_str);
        match mailer.send(*id, event, payload, language).await {
            Ok(()) => {
                execute(
                    &tx,
                    "UPDATE mail_queue SET sent_at = now(), last_error = NULL WHERE id = $1",
                    &[id],
                )
                .await?;
                outcome.sent += 1;
            }
            Err(failure) => {
                tracing::warn!(id, event = %event, error = %failure.reason, "mail not sent");
                let reason: String = failure.reason.chars().take(1000).collect();
                // Per message: 2^attempts seconds (1 s, 2 s, 4 s, …), at most an hour.
                execute(
                    &tx,
                    "UPDATE mail_queue SET attempts = attempts + 1, last_error = $2,
                            next_attempt_at = now() + least(power(2, attempts), 3600) * interval '1 second'
                     WHERE id = $1",
                    &[id, &reason],
                )
                .await?;
                outcome.failed += 1;
                if failure.relay_down {
                    outcome.relay_down = true;
                    // The rest of the batch would fail the same way; leave their attempts alone.
                    break;
                }
            }
        }
    }
    tx.commit().await?;
    Ok(outcome)
}

/// The `language` member of each recipient's `data` JSON, by uid (users without one are left out).
async fn user_languages<C: crate::store::Db>(
    c: &C,
    payloads: &[(i64, String, Value)],
) -> Result<HashMap<String, String>, StoreError> {
    let uids: Vec<String> = payloads
        .iter()
        .filter_map(|(_, _, p)| p.pointer("/record/user/uid").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let rows = query(
        c,
        "SELECT uid, data FROM users WHERE uid = ANY($1) AND data IS NOT NULL",
        &[&uids],
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let data: String = r.get(1);
            language_of(&data).map(|language| (r.get(0), language))
        })
        .collect())
}

/// The language a user asked for in their `data` (Barong's `data.language`), normalised.
fn language_of(data: &str) -> Option<String> {
    let data: Value = serde_json::from_str(data).ok()?;
    let language = data.get("language")?.as_str()?.trim().to_ascii_lowercase();
    (!language.is_empty()).then_some(language)
}

/// Why one message was not delivered.
#[derive(Debug)]
struct Failure {
    /// Stored in `last_error` and logged: never a token, a link or a password.
    reason: String,
    /// The relay could not be reached or talked to, as opposed to refusing this one message.
    relay_down: bool,
}

impl Failure {
    fn message(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            relay_down: false,
        }
    }
}

enum Delivery {
    Smtp(Result<AsyncSmtpTransport<Tokio1Executor>, String>),
    Log(PathBuf),
    Disabled,
}

struct Mailer {
    settings: config::Mail,
    app_name: String,
    domain: String,
    templates: Templates,
    from: Result<Mailbox, String>,
    delivery: Delivery,
}

impl Mailer {
    fn new(settings: &config::Settings) -> Mailer {
        let mail = &settings.mail;
        let delivery = match mail.delivery {
            MailDelivery::Smtp => {
                let transport = smtp_transport(mail);
                if let Err(err) = &transport {
                    tracing::error!(error = %err, "mail: SMTP transport cannot be built; every message will fail");
                }
                Delivery::Smtp(transport)
            }
            MailDelivery::Log => Delivery::Log(PathBuf::from(LOG_DIR)),
            MailDelivery::None => Delivery::Disabled,
        };
        Mailer::with_delivery(settings, delivery)
    }

    fn with_delivery(settings: &config::Settings, delivery: Delivery) -> Mailer {
        let mail = &settings.mail;
        let templates = Templates::load(&mail.templates_dir);
        templates.check(&mail.events, &mail.default_language);
        let from = sender(mail);
        if let Err(err) = &from {
            tracing::error!(error = %err, "mail: every message will fail");
        }
        Mailer {
            settings: mail.clone(),
            app_name: settings.app.name.clone(),
            domain: settings.app.domain.clone(),
            templates,
            from,
            delivery,
        }
    }

    /// Renders and delivers one queued message.
    async fn send(
        &self,
        id: i64,
        event: &str,
        payload: &Value,
        language: Option<&str>,
    ) -> Result<(), Failure> {
        let readable = matches!(self.delivery, Delivery::Log(_));
        let composed = self.compose(event, payload, language, readable)?;
        match &self.delivery {
            Delivery::Smtp(Ok(transport)) => {
                transport
                    .send(composed.message)
                    .await
                    .map_err(|err| Failure {
                        reason: format!("smtp: {err}"),
                        // A reply code about this message (a refused recipient, a full mailbox)
                        // concerns this message only; anything else is the relay's state.
                        relay_down: !(err.is_permanent() || err.is_transient()),
                    })?;
                tracing::info!(id, event, to = %composed.to, language = %composed.language, "mail sent");
                Ok(())
            }
            Delivery::Smtp(Err(err)) => Err(Failure {
                reason: format!("smtp transport: {err}"),
                relay_down: true,
            }),
            Delivery::Log(dir) => {
                write_eml(dir, id, event, &composed).await?;
                Ok(())
            }
            Delivery::Disabled => Err(Failure::message("mail delivery is disabled")),
        }
    }

    /// The message for one queued event: template chosen by language, rendered, built.
    /// `readable` keeps the text as it is (8bit) so that a developer reading the `.eml` file can
    /// copy the link; for a relay, lettre picks 7bit, quoted-printable or base64 as the
    /// standards ask (lines under 78 characters, no 8-bit data without 8BITMIME).
    fn compose(
        &self,
        event: &str,
        payload: &Value,
        language: Option<&str>,
        readable: bool,
    ) -> Result<Composed, Failure> {
        let record = payload
            .get("record")
            .and_then(Value::as_object)
            .ok_or_else(|| Failure::message("payload has no record"))?;
        let email = record
            .get("user")
            .and_then(|u| u.get("email"))
            .and_then(Value::as_str)
            .ok_or_else(|| Failure::message("record has no user.email"))?;
        let (chosen, template) = self
            .templates
            .find(event, language, &self.settings.default_language)
            .ok_or_else(|| Failure::message(format!("no template for {event}")))?;

        let token = record.get("token").and_then(Value::as_str);
        let link = match link_template(&self.settings, event) {
            Some(url) => {
                let token = token
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| Failure::message("record has no token"))?;
                let domain = record
                    .get("domain")
                    .and_then(Value::as_str)
                    .unwrap_or(&self.domain);
                Some(fill_link(url, domain, token))
            }
            None => None,
        };
        let mut context = record.clone();
        if let Some(link) = &link {
            context.insert("link".into(), Value::String(link.clone()));
        }
        context.insert("app_name".into(), Value::String(self.app_name.clone()));
        let context = Value::Object(context);

        // A subject is one header line whatever a template or a value contains.
        let subject = render(&template.subject, &context, false)
            .replace(['\r', '\n'], " ")
            .trim()
            .to_string();
        let text = render(&template.text, &context, false);
        let html = render(&template.html, &context, true);

        let to: Address = email
            .parse()
            .map_err(|_| Failure::message("user.email is not a valid address"))?;
        let from = self.from.clone().map_err(Failure::message)?;
        let message = Message::builder()
            .from(from)
            .to(Mailbox::new(None, to))
            .subject(subject.clone())
            .message_id(None)
            .multipart(
                MultiPart::alternative()
                    .singlepart(part(ContentType::TEXT_PLAIN, text, readable))
                    .singlepart(part(ContentType::TEXT_HTML, html, readable)),
            )
            .map_err(|err| Failure::message(format!("message cannot be built: {err}")))?;
        let mut secrets = Vec::new();
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            secrets.push(token.to_string());
            secrets.push(utf8_percent_encode(token, TOKEN_SET).to_string());
        }
        Ok(Composed {
            message,
            subject,
            to: email.to_string(),
            language: chosen.to_string(),
            secrets,
        })
    }
}

/// One body part; 8bit when `readable` and no line passes RFC 5322's 998-octet limit.
fn part(content_type: ContentType, body: String, readable: bool) -> SinglePart {
    let builder = SinglePart::builder().header(content_type);
    if readable {
        let body = body.replace("\r\n", "\n").replace('\n', "\r\n");
        if !body.contains('\0') && body.split("\r\n").all(|line| line.len() <= 998) {
            return builder.body(Body::dangerous_pre_encoded(
                body.into_bytes(),
                ContentTransferEncoding::EightBit,
            ));
        }
        return builder.body(body);
    }
    builder.body(body)
}

struct Composed {
    message: Message,
    subject: String,
    to: String,
    language: String,
    /// The forms of the token this message carries, kept out of every log line.
    secrets: Vec<String>,
}

/// `delivery = "log"`: the whole message goes to `<dir>/<id>.eml` (a developer opens it to follow
/// the link); the log line says where, and carries neither the link nor the token.
async fn write_eml(dir: &Path, id: i64, event: &str, composed: &Composed) -> Result<(), Failure> {
    let path = dir.join(format!("{id}.eml"));
    let io = |err: std::io::Error| Failure::message(format!("{}: {err}", path.display()));
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    // Owner-only: the file holds a live token.
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .await
        .map_err(io)?;
    // tokio finishes a write in the background; flush so the file is complete once logged.
    let bytes = composed.message.formatted();
    tokio::io::AsyncWriteExt::write_all(&mut file, &bytes)
        .await
        .map_err(io)?;
    tokio::io::AsyncWriteExt::flush(&mut file)
        .await
        .map_err(io)?;
    tracing::info!(
        id,
        event,
        to = %composed.to,
        subject = %redact(&composed.subject, &composed.secrets),
        language = %composed.language,
        path = %path.display(),
        "mail written (delivery = log)"
    );
    Ok(())
}

/// `text` with every secret replaced (a template may put the token into the subject).
fn redact(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret.as_str(), "[redacted]");
    }
    text
}

fn smtp_transport(mail: &config::Mail) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let builder = match mail.smtp_tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&mail.smtp_host),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&mail.smtp_host)
            .map_err(|e| format!("smtp_host {}: {e}", mail.smtp_host))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&mail.smtp_host)
            .map_err(|e| format!("smtp_host {}: {e}", mail.smtp_host))?,
    };
    // relay/starttls_relay pick the standard ports (465/587); the configured one wins.
    let mut builder = builder.port(mail.smtp_port).timeout(Some(SMTP_TIMEOUT));
    if let Some(user) = &mail.smtp_user {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            mail.smtp_password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

fn sender(mail: &config::Mail) -> Result<Mailbox, String> {
    let address: Address = mail.sender_email.parse().map_err(|_| {
        format!(
            "mail.sender_email {:?} is not an address",
            mail.sender_email
        )
    })?;
    let name = mail.sender_name.trim();
    Ok(Mailbox::new(
        (!name.is_empty()).then(|| name.to_string()),
        address,
    ))
}

/// The configured URL whose `{{link}}` the event's email carries, if it carries one.
fn link_template<'a>(mail: &'a config::Mail, event: &str) -> Option<&'a str> {
    match event {
        CONFIRMATION_EVENT => Some(&mail.confirmation_url),
        RESET_EVENT => Some(&mail.reset_url),
        _ => None,
    }
}

/// `url` with `{token}` (percent-encoded) and `{domain}` filled. The token goes first: once
/// encoded it has no braces, so it cannot smuggle a `{domain}` in.
fn fill_link(url: &str, domain: &str, token: &str) -> String {
    url.replace(
        "{token}",
        &utf8_percent_encode(token, TOKEN_SET).to_string(),
    )
    .replace("{domain}", domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(extra: &str) -> config::Settings {
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mail");
        config::Settings::from_toml(&format!(
            "[mail]\ntemplates_dir = {:?}\n{extra}",
            templates.display().to_string()
        ))
        .unwrap()
    }

    fn confirmation(token: &str) -> Value {
        json!({"record": {
            "user": {"uid": "ID0000000001", "email": "alice@example.com", "role": "member",
                     "level": 0, "otp": false, "state": "pending"},
            "domain": "exchange.example",
            "token": token,
        }})
    }

    fn text_part(message: &Message) -> String {
        String::from_utf8(message.formatted()).unwrap()
    }

    #[test]
    fn links_carry_the_token_percent_encoded() {
        let url = "https://{domain}/accounts/confirmation?confirmation_token={token}";
        assert_eq!(
            fill_link(url, "x.example", "eyJh.bGc-i_O~"),
            "https://x.example/accounts/confirmation?confirmation_token=eyJh.bGc-i_O~"
        );
        assert_eq!(
            fill_link(url, "x.example", "a+b/c=&d={domain}"),
            "https://x.example/accounts/confirmation?confirmation_token=a%2Bb%2Fc%3D%26d%3D%7Bdomain%7D"
        );
    }

    #[test]
    fn shipped_templates_cover_every_configured_event_in_every_language() {
        let settings = settings("");
        let templates = Templates::load(&settings.mail.templates_dir);
        for language in ["en", "ru"] {
            for event in &settings.mail.events {
                let (found, template) = templates
                    .find(event, Some(language), language)
                    .unwrap_or_else(|| panic!("{language} lacks {event}"));
                assert_eq!(found, language, "{event} falls back from {language}");
                assert!(!template.subject.trim().is_empty());
                let wants_link = link_template(&settings.mail, event).is_some();
                for body in [&template.text, &template.html] {
                    assert_eq!(
                        body.contains("{{link}}"),
                        wants_link,
                        "{language} {event}: a link exactly where there is a token"
                    );
                }
            }
        }
    }

    #[test]
    fn the_users_language_is_read_from_its_data() {
        assert_eq!(language_of(r#"{"language":" RU "}"#).as_deref(), Some("ru"));
        assert_eq!(language_of(r#"{"language":""}"#), None);
        assert_eq!(language_of(r#"{"language":7}"#), None);
        assert_eq!(language_of("not json"), None);
    }

    #[test]
    fn compose_fills_the_template_of_the_users_language() {
        let mailer = Mailer::with_delivery(
            &settings("sender_email = \"noreply@x.example\"\nsender_name = \"X Exchange\"\n"),
            Delivery::Disabled,
        );
        let composed = mailer
            .compose(
                CONFIRMATION_EVENT,
                &confirmation("tok.en-1"),
                Some("ru"),
                false,
            )
            .unwrap();
        assert_eq!(composed.language, "ru");
        assert_eq!(composed.to, "alice@example.com");
        let raw = text_part(&composed.message);
        assert!(
            raw.contains("From: \"X Exchange\" <noreply@x.example>"),
            "{raw}"
        );
        assert!(raw.contains("To: alice@example.com"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");

        // A record without the token its link needs, and one without a recipient, fail.
        let mut no_token = confirmation("x");
        no_token["record"].as_object_mut().unwrap().remove("token");
        let err = mailer
            .compose(CONFIRMATION_EVENT, &no_token, None, false)
            .err()
            .unwrap();
        assert_eq!(err.reason, "record has no token");
        let err = mailer
            .compose(
                "system.user.password.change",
                &json!({"record": {"user": {}}}),
                None,
                false,
            )
            .err()
            .unwrap();
        assert_eq!(err.reason, "record has no user.email");
        let err = mailer
            .compose("system.unknown", &confirmation("x"), None, false)
            .err()
            .unwrap();
        assert_eq!(err.reason, "no template for system.unknown");
    }

    /// A `MakeWriter` that keeps what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn log_delivery_writes_the_message_to_a_file_and_keeps_the_token_out_of_the_log() {
        let dir =
            std::env::temp_dir().join(format!("pc-mail-{}", crate::crypto::random_hex::<6>()));
        let token = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl";
        // A template that (unwisely) puts the token into the subject too.
        let templates = dir.join("templates");
        std::fs::create_dir_all(&templates).unwrap();
        std::fs::write(
            templates.join("en.toml"),
            format!(
                "[{CONFIRMATION_EVENT:?}]\nsubject = \"Confirm {{{{token}}}}\"\ntext = \"Open {{{{link}}}}\"\nhtml = \"<a href='{{{{link}}}}'>x</a>\"\n"
            ),
        )
        .unwrap();
        let settings = config::Settings::from_toml(&format!(
            "[mail]\ntemplates_dir = {:?}\n",
            templates.display().to_string()
        ))
        .unwrap();
        let out = dir.join("out");
        let mailer = Mailer::with_delivery(&settings, Delivery::Log(out.clone()));

        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        mailer
            .send(42, CONFIRMATION_EVENT, &confirmation(token), None)
            .await
            .unwrap();
        drop(guard);

        let eml = std::fs::read_to_string(out.join("42.eml")).unwrap();
        assert!(eml.contains("Content-Transfer-Encoding: 8bit"), "{eml}");
        assert!(
            eml.contains(&format!(
                "https://exchange.example/accounts/confirmation?confirmation_token={token}"
            )),
            "{eml}"
        );
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("mail written"), "{log}");
        assert!(log.contains("alice@example.com"), "{log}");
        assert!(log.contains("42.eml"), "{log}");
        assert!(log.contains("Confirm [redacted]"), "{log}");
        assert!(!log.contains(token), "{log}");
        assert!(!log.contains("c2VjcmV0"), "{log}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
