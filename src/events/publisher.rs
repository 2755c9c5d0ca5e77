//! The outbox publisher: delivers `event_outbox` rows to RabbitMQ as Barong's EventAPI messages
//! (exchange and routing key from [`route`], body from [`seal`]) and marks them published once
//! the broker has confirmed them. It owns the RabbitMQ connection of a node, the exchange
//! declarations, and the retry policy.
//!
//! Delivery is at least once. A row is marked published only after the broker acked it, in the
//! same transaction that claimed it, so a crash, a lost connection or a database failure leaves
//! it pending and it is sent again. The one way a message reaches RabbitMQ twice is that its
//! confirm never arrived (connection lost after the broker took it, or the commit that records
//! the ack failed): consumers that must not act twice dedupe by `message_id`, which is the
//! outbox id and stays the same on every attempt (the payload's `jti` is drawn anew each time
//! the row is sealed).
//!
//! Every node runs a publisher; `FOR UPDATE SKIP LOCKED` lets them share the outbox without
//! sending a row twice at once. Order is kept within a node's batch, not across nodes.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind,
    ExchangeKind, PublisherConfirm,
};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep, timeout, timeout_at};

use super::queue::{self, Pace, Round, Worker};
use crate::config;
use crate::events::envelope::{route, seal};
use crate::jwt::Issuer;
use crate::store::outbox::{self, Pending};
use crate::store::{Store, StoreError};

/// Barong's exchanges. An event whose category is not one of these still goes to
/// `barong.events.<category>`, which must then exist on the broker.
pub const EXCHANGES: [&str; 2] = ["barong.events.system", "barong.events.model"];

/// How long an idle publisher sleeps when nobody rings: a safety net for a lost wake (a change
/// notice missed while the listener reconnected), not the normal path.
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a connection attempt (TCP, TLS, AMQP handshake, declarations) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a batch may wait for the broker to take and confirm its messages. A blocked
/// (memory alarm) or silently dead broker must not hold the claimed rows' locks for ever.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// The name a node's publisher connection shows in `rabbitmqctl list_connections` and the
/// management UI: the process id and the address of the node's [`Events`](super::Events), so
/// that several nodes in one process (as in the integration tests) and several nodes on one
/// host are told apart, and a reconnection keeps the same name.
pub fn connection_name(events: &super::Events) -> String {
    format!(
        "portcullis-publisher pid {} app {:x}",
        std::process::id(),
        Arc::as_ptr(&events.publisher_wake) as usize
    )
}

/// Declares Barong's exchanges on a channel of `connection`, as Barong does: direct,
/// non-durable, not auto-deleted.
///
/// Not durable, deliberately: Barong's publisher and its consumers (the event mailer, applogic)
/// declare these exchanges with Bunny's defaults, and RabbitMQ refuses a declaration whose
/// attributes differ from the existing exchange by closing the channel (406). Declaring them
/// durable would make every Barong consumer that starts after us fail. Each side redeclares on
/// reconnection, so an exchange lost with a broker restart comes back.
///
/// An exchange that already exists with other attributes (an operator declared it durable) is
/// used as it is: after a 406 it is checked passively on a fresh channel.
pub async fn declare_exchanges(connection: &Connection) -> lapin::Result<()> {
    let declare = ExchangeDeclareOptions {
        durable: false,
        auto_delete: false,
        ..ExchangeDeclareOptions::default()
    };
    for exchange in EXCHANGES {
        let channel = connection.create_channel().await?;
        let declared = channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Direct,
                declare,
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(()) => {
                let _ = channel.close(200, "OK".into()).await;
            }
            Err(err) if precondition_failed(&err) => {
                tracing::info!(
                    exchange,
                    "exchange exists with other attributes; using it as it is"
                );
                // The 406 closed that channel.
                let channel = connection.create_channel().await?;
                channel
                    .exchange_declare(
                        exchange.into(),
                        ExchangeKind::Direct,
                        ExchangeDeclareOptions {
                            passive: true,
                            ..ExchangeDeclareOptions::default()
                        },
                        FieldTable::default(),
                    )
                    .await?;
                let _ = channel.close(200, "OK".into()).await;
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

fn precondition_failed(err: &lapin::Error) -> bool {
    matches!(err.kind(), ErrorKind::ProtocolError(e)
        if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
}

/// Runs until the process ends: publishes the outbox of `store` with `issuer`'s signature,
/// as `settings` say, under connection `name` ([`connection_name`]); `wake` rings when the
/// outbox has work.
pub async fn run(
    store: Store,
    issuer: Arc<Issuer>,
    settings: config::Events,
    name: String,
    wake: Arc<Notify>,
) {
    // Parsed here, not by lapin, because lapin's parse error quotes the URL, password included.
    let uri: AMQPUri = match settings.rabbitmq_url.expose().parse() {
        Ok(uri) => uri,
        Err(_) => loop {
            tracing::error!(
                "events.rabbitmq_url is not an AMQP URL; events stay in the outbox until it is fixed"
            );
            metrics::counter!("portcullis_events_failed_total", "error" => "config").increment(1);
            sleep(MAX_BACKOFF).await;
        },
    };
    let pace = Pace {
        idle_wait: IDLE_WAIT,
        first_backoff: settings.retry.max(Duration::from_millis(1)),
        max_backoff: MAX_BACKOFF,
    };
    let publisher = Publisher {
        store,
        issuer,
        batch: settings.batch,
        uri,
        name,
        link: None,
    };
    queue::run(publisher, pace, wake).await;
}

/// The publisher's state between rounds: what it publishes with, and its connection.
struct Publisher {
    store: Store,
    issuer: Arc<Issuer>,
    batch: i64,
    uri: AMQPUri,
    name: String,
    link: Option<Link>,
}

impl Worker for Publisher {
    async fn round(&mut self) -> Round {
        // A connection the broker closed while we were idle is replaced before rows are
        // claimed, so that closing it costs no attempt.
        if !self.link.as_ref().is_some_and(Link::is_open) {
            self.link = None;
            match Link::open(&self.uri, &self.name).await {
                Ok(opened) => {
                    tracing::info!(connection = %self.name, "events publisher connected to RabbitMQ");
                    self.link = Some(opened);
                }
                Err(failure) => {
                    failure.record();
                    update_pending_gauge(&self.store).await;
                    return Round::Failed;
                }
            }
        }
        let Some(link) = &self.link else {
            return Round::Failed;
        };
        match publish_batch(&self.store, &self.issuer, self.batch, &link.channel).await {
            Ok(outcome) if outcome.claimed < self.batch => {
                update_pending_gauge(&self.store).await;
                Round::Drained
            }
            Ok(_) => Round::Full,
            Err(failure) => {
                failure.record();
                if failure.drops_connection() {
                    self.link = None;
                }
                update_pending_gauge(&self.store).await;
                Round::Failed
            }
        }
    }
}

/// A connection and its confirm-mode channel.
struct Link {
    connection: Connection,
    channel: Channel,
}

impl Link {
    async fn open(uri: &AMQPUri, name: &str) -> Result<Link, Failure> {
        let attempt = async {
            let properties = ConnectionProperties::default().with_connection_name(name.into());
            let connection = Connection::connect_uri(uri.clone(), properties)
                .await
                .map_err(|e| Failure::broker("connect", e))?;
            declare_exchanges(&connection)
                .await
                .map_err(|e| Failure::broker("declare", e))?;
            let channel = connection
                .create_channel()
                .await
                .map_err(|e| Failure::broker("channel", e))?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| Failure::broker("channel", e))?;
            Ok(Link {
                connection,
                channel,
            })
        };
        match timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Broker {
                kind: "connect",
                error: "timed out".into(),
            }),
        }
    }

    fn is_open(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

/// Why a round failed. Every variant leaves the rows it could not confirm pending.
#[derive(Debug)]
enum Failure {
    /// RabbitMQ failed (connect, declare, channel, publish, confirm): reconnect.
    Broker { kind: &'static str, error: String },
    /// The broker refused some messages (a nack: a queue at its length limit with
    /// `reject-publish`, or an internal broker error). The connection is fine; the rows are
    /// retried after the back-off.
    Nacked { count: usize },
    /// Postgres failed: nothing was marked; the connection to RabbitMQ is kept.
    Database(StoreError),
    /// A bug on our side (sealing panicked): nothing was sent; retried after the back-off.
    Internal(String),
}

impl Failure {
    fn broker(kind: &'static str, error: lapin::Error) -> Failure {
        // lapin's errors name the failure and the broker's reply text, never message bodies,
        // so they are safe to log (bodies carry tokens).
        Failure::Broker {
            kind,
            error: error.to_string(),
        }
    }

    fn drops_connection(&self) -> bool {
        matches!(self, Failure::Broker { .. })
    }

    fn record(&self) {
        let kind = match self {
            Failure::Broker { kind, error } => {
                tracing::warn!(kind, error = %error, "events publisher: RabbitMQ failed; rows stay pending, reconnecting");
                *kind
            }
            Failure::Nacked { count } => {
                tracing::warn!(
                    count,
                    "events publisher: RabbitMQ refused messages; they stay pending"
                );
                "nack"
            }
            Failure::Database(err) => {
                tracing::warn!(error = %err, "events publisher: database failed; rows stay pending");
                "database"
            }
            Failure::Internal(err) => {
                tracing::error!(error = %err, "events publisher: internal error; rows stay pending");
                "internal"
            }
        };
        metrics::counter!("portcullis_events_failed_total", "error" => kind).increment(1);
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Failure {
        Failure::Database(err)
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(err: tokio_postgres::Error) -> Failure {
        Failure::Database(err.into())
    }
}

struct Outcome {
    claimed: i64,
}

/// Claims a batch, publishes it, waits for the confirms, records what the broker took, commits.
/// Rows published and confirmed are recorded even when the round then fails.
async fn publish_batch(
    store: &Store,
    issuer: &Arc<Issuer>,
    batch: i64,
    channel: &Channel,
) -> Result<Outcome, Failure> {
    let mut client = store.client().await?;
    let tx = client.transaction().await?;
    let pending = outbox::claim(&tx, batch).await?;
    let claimed = pending.len() as i64;
    if pending.is_empty() {
        return Ok(Outcome { claimed });
    }

    // An RS256 signature costs about a millisecond; a full batch would hold a runtime worker
    // (and the requests queued on it) for a tenth of a second.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let sealer = issuer.clone();
    let sealed: Vec<(Pending, Option<Vec<u8>>)> = tokio::task::spawn_blocking(move || {
        pending
            .into_iter()
            .map(|row| {
                let body = route(&row.name).map(|_| {
                    serde_json::to_vec(&seal(&sealer, &row.name, &row.payload, now))
                        .expect("an envelope serializes")
                });
                (row, body)
            })
            .collect()
    })
    .await
    .map_err(|e| Failure::Internal(format!("sealing failed: {e}")))?;

    // Rows to mark published: acked by the broker, or undeliverable.
    let mut done: Vec<i64> = Vec::new();
    let mut acked = 0u64;
    let mut unconfirmed: Vec<i64> = Vec::new();
    let mut in_flight: Vec<(i64, PublisherConfirm)> = Vec::new();
    let mut broker_failure: Option<Failure> = None;
    let deadline = Instant::now() + CONFIRM_TIMEOUT;
    for (row, body) in &sealed {
        let (Some((exchange, routing_key)), Some(body)) = (route(&row.name), body) else {
            // No category, so no exchange: it can never be delivered; keeping it would block
            // nothing but would be retried for ever.
            tracing::warn!(id = row.id, name = %row.name, "event name has no category; dropped");
            metrics::counter!("portcullis_events_failed_total", "error" => "no_route").increment(1);
            done.push(row.id);
            continue;
        };
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(row.id.to_string().into())
            .with_timestamp(now as u64);
        let published = timeout_at(
            deadline,
            channel.basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            ),
        )
        .await;
        match published {
            Ok(Ok(confirm)) => in_flight.push((row.id, confirm)),
            Ok(Err(err)) => {
                unconfirmed.push(row.id);
                broker_failure = Some(Failure::broker("publish", err));
                break;
            }
            Err(_) => {
                unconfirmed.push(row.id);
                broker_failure = Some(Failure::Broker {
                    kind: "publish",
                    error: "timed out".into(),
                });
                break;
            }
        }
    }

    // Collect every confirm even after a failure: messages the broker acked before the
    // connection went are recorded, so that they are not sent again.
    let mut nacked = 0;
    for (id, confirm) in in_flight {
        match timeout_at(deadline, confirm).await {
            Ok(Ok(Confirmation::Ack(_))) => {
                acked += 1;
                done.push(id);
            }
            Ok(Ok(Confirmation::Nack(_))) => {
                nacked += 1;
                unconfirmed.push(id);
            }
            Ok(Ok(Confirmation::NotRequested)) => {
                // Confirm mode is set when the channel opens; without it an ack means nothing.
                unconfirmed.push(id);
                broker_failure.get_or_insert(Failure::Broker {
                    kind: "confirm",
                    error: "channel is not in confirm mode".into(),
                });
            }
            Ok(Err(err)) => {
                unconfirmed.push(id);
                broker_failure.get_or_insert(Failure::broker("confirm", err));
            }
            Err(_) => {
                unconfirmed.push(id);
                broker_failure.get_or_insert(Failure::Broker {
                    kind: "confirm",
                    error: "timed out".into(),
                });
            }
        }
    }

    // If this fails after the broker acked, the rows stay pending and are sent again: the
    // duplicate that `message_id` lets consumers drop.
    outbox::mark_published(&tx, &done).await?;
    outbox::count_attempt(&tx, &unconfirmed).await?;
    tx.commit().await?;
    metrics::counter!("portcullis_events_published_total").increment(acked);

    match broker_failure {
        Some(failure) => Err(failure),
        None if nacked > 0 => Err(Failure::Nacked { count: nacked }),
        None => Ok(Outcome { claimed }),
    }
}

/// Sets `portcullis_events_pending` (rows not yet published, on every node), so that a growing
/// outbox — a broker down for long — can be alerted on.
async fn update_pending_gauge(store: &Store) {
    let count = async { outbox::pending_count(&store.client().await?).await };
    if let Ok(count) = count.await {
        metrics::gauge!("portcullis_events_pending").set(count as f64);
    }
}
