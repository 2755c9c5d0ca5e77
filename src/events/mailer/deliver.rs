//! Delivering a composed email: by SMTP to the configured relay, or (in development) to
//! `var/mail/<id>.eml`, with the token kept out of every log line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::Failure;
use super::compose::Composed;
use crate::config::{self, MailDelivery, SmtpTls};

/// Per SMTP connection and command; lettre's default (60 s) would hold the claimed batch (and its
/// pooled database connection) too long when a relay hangs.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);
/// Where `delivery = "log"` writes messages, relative to the working directory like the other
/// development files under `var/`.
const LOG_DIR: &str = "var/mail";

pub(super) enum Delivery {
    Smtp(Result<AsyncSmtpTransport<Tokio1Executor>, String>),
    Log(PathBuf),
    Disabled,
}

impl Delivery {
    /// The delivery `mail.delivery` asks for; an SMTP transport that cannot be built is logged
    /// once here, and every message then fails as if the relay were down.
    pub(super) fn new(mail: &config::Mail) -> Delivery {
        match mail.delivery {
            MailDelivery::Smtp => {
                let transport = smtp_transport(mail);
                if let Err(err) = &transport {
                    tracing::error!(error = %err, "mail: SMTP transport cannot be built; every message will fail");
                }
                Delivery::Smtp(transport)
            }
            MailDelivery::Log => Delivery::Log(PathBuf::from(LOG_DIR)),
            MailDelivery::None => Delivery::Disabled,
        }
    }

    /// Whether messages are read by people as they are (the `.eml` files): their text is then
    /// kept 8bit so that a developer can copy the link.
    pub(super) fn readable(&self) -> bool {
        matches!(self, Delivery::Log(_))
    }

    /// Delivers message `id` of `event`.
    pub(super) async fn deliver(
        &self,
        id: i64,
        event: &str,
        composed: Composed,
    ) -> Result<(), Failure> {
        match self {
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
            Delivery::Log(dir) => write_eml(dir, id, event, &composed).await,
            Delivery::Disabled => Err(Failure::message("mail delivery is disabled")),
        }
    }
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
