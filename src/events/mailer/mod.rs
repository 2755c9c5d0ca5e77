//! The built-in mailer, which replaces Barong's separate `EventMailer` process: the worker that
//! drains the `mail_queue` table (claim, compose, deliver, mark sent or count the failure),
//! on the queue skeleton it shares with the publisher ([`super::queue`]).
//!
//! - `compose`: templates (one TOML file per language in `mail.templates_dir`, loaded once
//!   at start, see `events::templates`), links and the message;
//! - `deliver`: SMTP, or `var/mail/<id>.eml` in development.

mod compose;
mod deliver;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use self::compose::Composer;
use self::deliver::Delivery;
use super::queue::{self, Pace, Round, Worker};
use crate::config;
use crate::store::{Store, StoreError, mail_queue, users};

const BATCH: i64 = 20;
/// Idle wait when nothing is pending: the wake bell usually comes first; this bounds how long a
/// row left by a crashed node (its lock released) or a missed notice waits.
const IDLE_WAIT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Runs until the process ends: sends the mail queue of `store` as `mail` says, for the site
/// `site` (its name and domain fill the templates and links); `wake` rings when the queue
/// has work.
pub async fn run(store: Store, mail: config::Mail, site: config::App, wake: Arc<Notify>) {
    let mailer = Mailer::new(&mail, &site);
    if matches!(mailer.delivery, Delivery::Disabled) {
        return;
    }
    let pace = Pace {
        idle_wait: IDLE_WAIT,
        first_backoff: BACKOFF_MIN,
        max_backoff: BACKOFF_MAX,
    };
    let worker = MailWorker {
        store,
        mailer,
        sent: metrics::counter!("portcullis_mail_sent_total"),
        failed: metrics::counter!("portcullis_mail_failed_total"),
    };
    queue::run(worker, pace, wake).await;
}

struct MailWorker {
    store: Store,
    mailer: Mailer,
    sent: metrics::Counter,
    failed: metrics::Counter,
}

impl Worker for MailWorker {
    async fn round(&mut self) -> Round {
        match process_batch(&self.store, &self.mailer).await {
            Ok(outcome) => {
                self.sent.increment(outcome.sent);
                self.failed.increment(outcome.failed);
                if outcome.relay_down {
                    // A message the relay refuses waits on its own `next_attempt_at`
                    // instead; a relay that is down stops the worker for a back-off.
                    Round::Failed
                } else if outcome.claimed < BATCH as usize {
                    Round::Drained
                } else {
                    Round::Full
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "mail queue unavailable; retrying");
                Round::Failed
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
async fn process_batch(store: &Store, mailer: &Mailer) -> Result<BatchOutcome, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await?;
    let queued = mail_queue::claim(&tx, BATCH).await?;
    let mut outcome = BatchOutcome {
        claimed: queued.len(),
        ..BatchOutcome::default()
    };
    if queued.is_empty() {
        tx.commit().await?;
        return Ok(outcome);
    }
    let languages = user_languages(&tx, &queued).await?;
    for row in &queued {
        let language = recipient_uid(&row.payload)
            .and_then(|uid| languages.get(uid))
            .map(String::as_str);
        match mailer
            .send(row.id, &row.event, &row.payload, language)
            .await
        {
            Ok(()) => {
                mail_queue::mark_sent(&tx, row.id).await?;
                outcome.sent += 1;
            }
            Err(failure) => {
                tracing::warn!(id = row.id, event = %row.event, error = %failure.reason, "mail not sent");
                let reason: String = failure.reason.chars().take(1000).collect();
                mail_queue::mark_failed(&tx, row.id, &reason).await?;
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

/// The uid of the user an event's email goes to.
fn recipient_uid(payload: &Value) -> Option<&str> {
    payload.pointer("/record/user/uid").and_then(Value::as_str)
}

/// The `language` member of each recipient's `data` JSON, by uid (users without one are left out).
async fn user_languages<C: crate::store::Db>(
    c: &C,
    queued: &[mail_queue::Queued],
) -> Result<HashMap<String, String>, StoreError> {
    let uids: Vec<String> = queued
        .iter()
        .filter_map(|row| recipient_uid(&row.payload))
        .map(str::to_string)
        .collect();
    Ok(users::data_by_uid(c, &uids)
        .await?
        .into_iter()
        .filter_map(|(uid, data)| language_of(&data).map(|language| (uid, language)))
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
pub(super) struct Failure {
    /// Stored in `last_error` and logged: never a token, a link or a password.
    pub reason: String,
    /// The relay could not be reached or talked to, as opposed to refusing this one message.
    pub relay_down: bool,
}

impl Failure {
    pub(super) fn message(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            relay_down: false,
        }
    }
}

/// Composes and delivers one queued message.
struct Mailer {
    composer: Composer,
    delivery: Delivery,
}

impl Mailer {
    fn new(mail: &config::Mail, site: &config::App) -> Mailer {
        Mailer::with_delivery(mail, site, Delivery::new(mail))
    }

    fn with_delivery(mail: &config::Mail, site: &config::App, delivery: Delivery) -> Mailer {
        Mailer {
            composer: Composer::new(mail, site),
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
        let composed = self
            .composer
            .compose(event, payload, language, self.delivery.readable())?;
        self.delivery.deliver(id, event, composed).await
    }
}

#[cfg(test)]
mod tests {
    use super::compose::CONFIRMATION_EVENT;
    use super::compose::tests::confirmation;
    use super::*;

    #[test]
    fn the_users_language_is_read_from_its_data() {
        assert_eq!(language_of(r#"{"language":" RU "}"#).as_deref(), Some("ru"));
        assert_eq!(language_of(r#"{"language":""}"#), None);
        assert_eq!(language_of(r#"{"language":7}"#), None);
        assert_eq!(language_of("not json"), None);
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
        let mailer =
            Mailer::with_delivery(&settings.mail, &settings.app, Delivery::Log(out.clone()));

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
