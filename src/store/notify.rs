//! Change notices from Postgres (`LISTEN`), fed by the triggers of the schema.
//!
//! One dedicated connection per node. When it drops, the listener reconnects and reports
//! [`Notice::Resync`]: notices may have been missed, so every cache must be rebuilt.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::tls::Connector;

pub const POLICY_CHANNEL: &str = "portcullis_policy";
pub const SUBJECT_CHANNEL: &str = "portcullis_subject";
pub const QUEUE_CHANNEL: &str = "portcullis_queue";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Permissions, restrictions or pass/block rules changed.
    Policy,
    /// A user (`users:<uid>`), service account (`service_accounts:<uid>`) or API key
    /// (`api_keys:<kid>`) changed.
    Subject { table: String, key: String },
    /// Work arrived in a queue table (`event_outbox`, `mail_queue` or `kyc_jobs`).
    Queue { table: String },
    /// The listener (re)connected; anything cached may be stale.
    Resync,
}

/// Runs forever: connects, listens, forwards notices; reconnects with backoff.
pub async fn listen(
    config: tokio_postgres::Config,
    connector: Connector,
    notices: mpsc::UnboundedSender<Notice>,
) {
    // A connect attempt a second to a database that is down costs nothing, and notices (a
    // ban) resume within a second of its return.
    const MAX_BACKOFF: Duration = Duration::from_secs(1);
    let schedule = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(MAX_BACKOFF)
        .without_max_times();
    let mut backoff = schedule.build();
    loop {
        match listen_once(&config, &connector, &notices).await {
            Ok(()) => backoff = schedule.build(),
            Err(err) => {
                tracing::warn!(error = %err, "change listener lost its connection; retrying");
            }
        }
        if notices.is_closed() {
            return;
        }
        tokio::time::sleep(backoff.next().unwrap_or(MAX_BACKOFF)).await;
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    connector: &Connector,
    notices: &mpsc::UnboundedSender<Notice>,
) -> Result<(), tokio_postgres::Error> {
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel();
    let (client, driver) = match connector {
        Connector::Plain => {
            let (client, connection) = config.connect(NoTls).await?;
            (client, drive(connection, msg_tx))
        }
        Connector::Tls(tls) => {
            let (client, connection) = config.connect(tls.clone()).await?;
            (client, drive(connection, msg_tx))
        }
    };
    client
        .batch_execute(&format!(
            "LISTEN {POLICY_CHANNEL}; LISTEN {SUBJECT_CHANNEL}; LISTEN {QUEUE_CHANNEL}"
        ))
        .await?;
    // Listening from here on: whatever changed before is picked up by a full resync.
    if notices.send(Notice::Resync).is_err() {
        return Ok(());
    }
    let mut heartbeat = tokio::time::interval(Duration::from_secs(15));
    heartbeat.tick().await;
    loop {
        tokio::select! {
            message = msg_rx.recv() => {
                let Some(message) = message else { break };
                if let AsyncMessage::Notification(n) = message {
                    let notice = match n.channel() {
                        POLICY_CHANNEL => Notice::Policy,
                        QUEUE_CHANNEL => Notice::Queue {
                            table: n.payload().to_string(),
                        },
                        _ => match n.payload().split_once(':') {
                            Some((table, key)) => Notice::Subject { table: table.into(), key: key.into() },
                            None => continue,
                        },
                    };
                    if notices.send(notice).is_err() {
                        break;
                    }
                }
            }
            _ = heartbeat.tick() => {
                // A half-open TCP connection would otherwise go unnoticed forever.
                if tokio::time::timeout(Duration::from_secs(5), client.simple_query("SELECT 1")).await.map_or(true, |r| r.is_err()) {
                    break;
                }
            }
        }
    }
    driver.abort();
    Ok(())
}

/// Drives `connection` on its own task, handing its asynchronous messages (the notices) on.
fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    messages_tx: mpsc::UnboundedSender<AsyncMessage>,
) -> tokio::task::JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(m) => {
                    if messages_tx.send(m).is_err() {
                        break;
                    }
                }
                Err(err) => {
                    tracing::debug!(error = %err, "change listener connection ended");
                    break;
                }
            }
        }
    })
}
