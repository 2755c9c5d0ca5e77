//! Events published to RabbitMQ by the outbox publisher: Barong's exchange, routing key and
//! signed envelope; delivery that survives a connection closed by the broker with nothing lost
//! and nothing repeated; rows the broker refuses (nack) kept until it takes them; and rows
//! written by a node that does not publish, delivered by one that does.
//!
//! Runs against the real broker at 127.0.0.1:5672 (guest/guest), which other tests publish to
//! at the same time: each test reads only its own queue and keeps only messages carrying its
//! own data (a user's uid, or a routing key with a random marker).

use std::time::{Duration, Instant};

use base64::Engine;
use lapin::message::Delivery;
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use portcullis::events::publisher;
use serde_json::{Value, json};

use crate::support::{Client, Server, TestEnv, UA, random_suffix};

/// A queue of the test's own, bound to `barong.events.system` before anything is triggered.
struct Tap {
    _connection: Connection,
    channel: Channel,
    queue: String,
}

impl Tap {
    async fn bind(server: &Server, routing_key: &str) -> Tap {
        Self::bind_with(server, routing_key, FieldTable::default()).await
    }

    /// Like `bind`, with queue arguments (a length limit, say).
    async fn bind_with(server: &Server, routing_key: &str, arguments: FieldTable) -> Tap {
        let connection = Connection::connect(
            server.app.settings.events.rabbitmq_url.expose(),
            ConnectionProperties::default().with_connection_name("portcullis-tests tap".into()),
        )
        .await
        .expect("RabbitMQ answers at the configured URL");
        // The same declaration as the publisher's, so that binding does not depend on which
        // side comes first.
        publisher::declare_exchanges(&connection).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                arguments,
            )
            .await
            .unwrap()
            .name()
            .as_str()
            .to_string();
        channel
            .queue_bind(
                queue.as_str().into(),
                "barong.events.system".into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Tap {
            _connection: connection,
            channel,
            queue,
        }
    }

    /// Takes every message in the queue now.
    async fn drain(&self) -> Vec<Delivery> {
        let mut messages = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            messages.push(message.delivery);
        }
        messages
    }

    /// Collects messages that `keep` selects until `done` holds for them, failing after
    /// `timeout_ms`.
    async fn collect(
        &self,
        timeout_ms: u64,
        keep: impl Fn(&Delivery) -> bool,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let mut kept = Vec::new();
        loop {
            kept.extend(self.drain().await.into_iter().filter(|d| keep(d)));
            if done(&kept) {
                return kept;
            }
            assert!(
                Instant::now() < deadline,
                "{} message(s) after {timeout_ms} ms, expected more",
                kept.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn b64url_json(text: &str) -> Value {
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .expect("base64url"),
    )
    .expect("JSON")
}

/// The message body (the JWS envelope) as JSON.
fn envelope(delivery: &Delivery) -> Value {
    serde_json::from_slice(&delivery.data).expect("the body is JSON")
}

/// The envelope's payload, decoded (not verified).
fn payload(delivery: &Delivery) -> Value {
    b64url_json(envelope(delivery)["payload"].as_str().expect("payload"))
}

fn message_id(delivery: &Delivery) -> String {
    delivery
        .properties
        .message_id()
        .as_ref()
        .expect("message_id set")
        .as_str()
        .to_string()
}

/// Verifies an envelope as a consumer would: reassembled as a compact JWS, with jsonwebtoken
/// and the keys the server publishes. Events carry no `aud` and no `sub`.
async fn verify_envelope(server: &Server, envelope: &Value) -> Value {
    let signature = &envelope["signatures"][0];
    let compact = format!(
        "{}.{}.{}",
        signature["protected"].as_str().unwrap(),
        envelope["payload"].as_str().unwrap(),
        signature["signature"].as_str().unwrap()
    );
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(
        Client::new()
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .json(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&["barong"]);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iss"]);
    // The envelope's header names no key (Barong's `kid` is in the unprotected header and says
    // "barong"): try each published key.
    let mut errors = Vec::new();
    for jwk in &jwks.keys {
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        match jsonwebtoken::decode::<Value>(&compact, &key, &validation) {
            Ok(data) => return data.claims,
            Err(e) => errors.push(e.to_string()),
        }
    }
    panic!("no published key verifies the event: {errors:?}");
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Runs `rabbitmqctl` off the runtime (it takes most of a second).
async fn rabbitmqctl(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("rabbitmqctl")
            .args(&args)
            .output()
            .expect("rabbitmqctl runs (RabbitMQ's command line, on the test machine)")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "rabbitmqctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The broker's pids of the connections whose client properties carry `name`, in the form
/// `close_connection` takes (`<rabbit@host.1.2.0>`; the JSON formatter writes Elixir's form).
async fn connections_named(name: &str) -> Vec<String> {
    let out = rabbitmqctl(&[
        "-q",
        "list_connections",
        "--no-table-headers",
        "pid",
        "client_properties",
    ])
    .await;
    out.lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, properties)| properties.contains(name))
        .map(|(pid, _)| pid.to_string())
        .collect()
}

/// Waits until exactly one connection carries `name`, and returns its pid.
async fn the_connection_named(name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pids = connections_named(name).await;
        if pids.len() == 1 {
            return pids[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "expected one connection named {name:?}, found {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn pending_rows(env: &TestEnv, name: &str) -> i64 {
    let client = env.store.client().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM event_outbox WHERE name = $1 AND published_at IS NULL",
            &[&name],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn login_publishes_barongs_signed_session_create_event() {
    let env = TestEnv::new().await;
    let server = env.start_with("[events]\npublish = true").await;
    let user = env.user("member").await;
    let tap = Tap::bind(&server, "session.create").await;

    let before = now();
    server.login(&user).await;

    let uid = user.uid.clone();
    let mine = move |d: &Delivery| payload(d)["event"]["record"]["user"]["uid"] == uid.as_str();
    let messages = tap.collect(15_000, &mine, |kept| !kept.is_empty()).await;
    let message = &messages[0];

    assert_eq!(message.exchange.as_str(), "barong.events.system");
    assert_eq!(message.routing_key.as_str(), "session.create");
    let properties = &message.properties;
    assert_eq!(
        properties.content_type().as_ref().map(|c| c.as_str()),
        Some("application/json")
    );
    assert_eq!(*properties.delivery_mode(), Some(2), "persistent");

    let client = env.store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT id, published_at IS NOT NULL FROM event_outbox \
             WHERE name = 'system.session.create' AND payload->'record'->'user'->>'uid' = $1",
            &[&user.uid],
        )
        .await
        .unwrap();
    let id: i64 = row.get(0);
    assert_eq!(message_id(message), id.to_string());

    // The envelope, as Barong's JWT::Multisig writes it.
    let envelope = envelope(message);
    assert_eq!(
        envelope.as_object().unwrap().len(),
        2,
        "payload and signatures only: {envelope}"
    );
    let signatures = envelope["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), 1);
    assert_eq!(
        b64url_json(signatures[0]["protected"].as_str().unwrap()),
        json!({"alg": "RS256"})
    );
    assert_eq!(signatures[0]["header"], json!({"kid": "barong"}));

    let claims = verify_envelope(&server, &envelope).await;
    assert_eq!(
        claims,
        payload(message),
        "the verified payload is the sent one"
    );
    let mut keys: Vec<&String> = claims.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["event", "exp", "iat", "iss", "jti"]);
    assert_eq!(claims["iss"], "barong");
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 36, "{jti}");
    assert_eq!(&jti[14..15], "4", "a version 4 UUID: {jti}");
    let iat = claims["iat"].as_i64().unwrap();
    assert!(iat >= before - 5 && iat <= now() + 5, "iat {iat}");
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 3600);
    assert_eq!(*properties.timestamp(), Some(iat as u64));

    let event = &claims["event"];
    assert_eq!(event["name"], "system.session.create");
    let record = &event["record"];
    assert_eq!(record["user"]["uid"], user.uid.as_str());
    assert_eq!(record["user"]["email"], user.email.as_str());
    assert_eq!(record["user"]["role"], "member");
    // Every key of Barong's user hash is there, nil ones as null (§11.2).
    let mut user_keys: Vec<&String> = record["user"].as_object().unwrap().keys().collect();
    user_keys.sort();
    assert_eq!(
        user_keys,
        [
            "created_at",
            "email",
            "level",
            "otp",
            "referral_uid",
            "role",
            "state",
            "uid",
            "updated_at",
            "username"
        ]
    );
    assert!(record["user"]["referral_uid"].is_null());
    assert_eq!(record["user_ip"], "127.0.0.1");
    assert_eq!(record["user_agent"], UA);

    // Marked published once the broker took it (the mark may trail the delivery by the commit).
    TestEnv::eventually(5_000, || async {
        pending_rows(&env, "system.session.create").await == 0
    })
    .await;
    // And sent once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again: Vec<Delivery> = tap.drain().await.into_iter().filter(&mine).collect();
    assert!(again.is_empty(), "sent twice: {:?}", again.len());
}

/// Emits `system.<routing_key>` events numbered `range`, carrying `marker`, as one
/// transaction each, and rings the publisher.
async fn emit(
    env: &TestEnv,
    server: &Server,
    name: &str,
    marker: &str,
    range: std::ops::Range<i64>,
) {
    let client = env.store.client().await.unwrap();
    for seq in range {
        let body = json!({"record": {"marker": marker, "seq": seq}});
        server.app.events.emit(&client, name, &body).await.unwrap();
    }
    server.app.events.ring();
}

/// Checks that the messages are events `0..count` with `marker`, each exactly once, with the
/// outbox id as `message_id`.
fn assert_exactly_once(messages: &[Delivery], marker: &str, count: i64) {
    let mut seqs: Vec<i64> = messages
        .iter()
        .map(|m| {
            let record = &payload(m)["event"]["record"];
            assert_eq!(record["marker"], marker);
            record["seq"].as_i64().unwrap()
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..count).collect::<Vec<_>>(),
        "each event exactly once"
    );
    let mut ids: Vec<String> = messages.iter().map(message_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as i64, count, "one message per outbox row");
}

#[tokio::test]
async fn a_connection_closed_by_the_broker_loses_and_repeats_nothing() {
    let env = TestEnv::new().await;
    let server = env
        .start_with("[events]\npublish = true\nretry_ms = 100")
        .await;
    let marker = random_suffix();
    let routing_key = format!("test.publisher.{marker}");
    let name = format!("system.{routing_key}");
    let tap = Tap::bind(&server, &routing_key).await;
    let ours = |m: &Delivery| payload(m)["event"]["record"]["marker"] == marker.as_str();

    emit(&env, &server, &name, &marker, 0..5).await;
    let first = tap.collect(15_000, ours, |kept| kept.len() >= 5).await;
    TestEnv::eventually(5_000, || async { pending_rows(&env, &name).await == 0 }).await;

    // The broker closes the publisher's connection (only this server's: the name carries the
    // App), as an operator or a broker restart would.
    let connection = publisher::connection_name(&server.app.events);
    let pid = the_connection_named(&connection).await;
    rabbitmqctl(&["-q", "close_connection", &pid, "closed by the events test"]).await;
    TestEnv::eventually(20_000, || async {
        !connections_named(&connection).await.contains(&pid)
    })
    .await;

    // Events written while the publisher has no connection wait in the outbox.
    emit(&env, &server, &name, &marker, 5..12).await;
    let second = tap
        .collect(20_000, ours, |kept| first.len() + kept.len() >= 12)
        .await;
    TestEnv::eventually(5_000, || async { pending_rows(&env, &name).await == 0 }).await;

    // It reconnected under the same name: the close was real and was survived.
    let new_pid = the_connection_named(&connection).await;
    assert_ne!(new_pid, pid);

    // Everything the broker confirmed is in the queue by now; anything sent twice would be too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late: Vec<Delivery> = tap.drain().await.into_iter().filter(ours).collect();
    let all: Vec<Delivery> = first.into_iter().chain(second).chain(late).collect();
    assert_exactly_once(&all, &marker, 12);
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM event_outbox WHERE name = '{name}' AND published_at IS NOT NULL"
        ))
        .await,
        12
    );
}

#[tokio::test]
async fn events_written_by_a_node_that_does_not_publish_are_delivered_by_one_that_does() {
    let env = TestEnv::new().await;
    let quiet = env.start_with("[events]\npublish = false").await;
    let marker = random_suffix();
    let routing_key = format!("test.publisher.{marker}");
    let name = format!("system.{routing_key}");
    let tap = Tap::bind(&quiet, &routing_key).await;
    let ours = |m: &Delivery| payload(m)["event"]["record"]["marker"] == marker.as_str();

    emit(&env, &quiet, &name, &marker, 0..3).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(pending_rows(&env, &name).await, 3, "nobody publishes");
    assert!(
        connections_named(&publisher::connection_name(&quiet.app.events))
            .await
            .is_empty(),
        "a node with events.publish = false opens no publisher connection"
    );
    assert!(tap.drain().await.into_iter().filter(ours).count() == 0);

    let publishing = env.start_with("[events]\npublish = true").await;
    let messages = tap.collect(15_000, ours, |kept| kept.len() >= 3).await;
    TestEnv::eventually(5_000, || async { pending_rows(&env, &name).await == 0 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late: Vec<Delivery> = tap.drain().await.into_iter().filter(ours).collect();
    let all: Vec<Delivery> = messages.into_iter().chain(late).collect();
    assert_exactly_once(&all, &marker, 3);
    drop(publishing);
}

#[tokio::test]
async fn events_the_broker_refuses_stay_pending_until_it_takes_them() {
    let env = TestEnv::new().await;
    let server = env
        .start_with("[events]\npublish = true\nretry_ms = 100")
        .await;
    let marker = random_suffix();
    let routing_key = format!("test.publisher.{marker}");
    let name = format!("system.{routing_key}");
    // A queue that holds three messages and makes the broker nack the rest.
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(3));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    let tap = Tap::bind_with(&server, &routing_key, arguments).await;
    let ours = |m: &Delivery| payload(m)["event"]["record"]["marker"] == marker.as_str();

    emit(&env, &server, &name, &marker, 0..6).await;
    // Three are taken; three are refused, counted as attempts and left pending.
    let refused = format!(
        "SELECT count(*) FROM event_outbox WHERE name = '{name}' \
         AND published_at IS NULL AND attempts > 0"
    );
    TestEnv::eventually(15_000, || async { env.count(&refused).await == 3 }).await;
    assert_eq!(pending_rows(&env, &name).await, 3);

    // Room in the queue: the publisher's next try delivers them.
    let messages = tap.collect(20_000, ours, |kept| kept.len() >= 6).await;
    TestEnv::eventually(5_000, || async { pending_rows(&env, &name).await == 0 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late: Vec<Delivery> = tap.drain().await.into_iter().filter(ours).collect();
    let all: Vec<Delivery> = messages.into_iter().chain(late).collect();
    assert_exactly_once(&all, &marker, 6);
}

#[tokio::test]
async fn events_written_under_load_survive_a_broker_restart_once_each() {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    let broker = crate::support::rabbit::PrivateBroker::start().await;
    let marker = random_suffix();
    let routing_key = format!("test.restart.{marker}");
    let name = format!("system.{routing_key}");
    let queue = format!("portcullis-restart-{marker}");
    // A durable exchange and queue: they, and the persistent messages in the queue, outlive
    // the restart, so what reaches the queue is what reached the broker.
    {
        let connection = Connection::connect(&broker.url(), ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                "barong.events.system".into(),
                lapin::ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                "barong.events.system".into(),
                routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    let env = TestEnv::new().await;
    let server = env
        .start_with(&format!(
            "[events]\npublish = true\nretry_ms = 100\nrabbitmq_url = \"{}\"",
            broker.url()
        ))
        .await;

    emit(&env, &server, &name, &marker, 0..5).await;
    TestEnv::eventually(20_000, || async { pending_rows(&env, &name).await == 0 }).await;

    // Decisions run all along: the broker is no store of theirs, so none may even fail closed.
    let (user, leaving) = (env.user("member").await, env.user("member").await);
    let valid = server.login(&user).await;
    let ended = server.login(&leaving).await;
    let logout = crate::support::Client::new()
        .delete(server.identity("sessions"))
        .session(&ended)
        .send()
        .await;
    assert_eq!(logout.status, 200);
    let load = crate::support::load::Load::start(&server, &valid, &[ended], 2);

    // Events keep coming while the broker stops, stays down and starts again.
    let restarted = std::sync::atomic::AtomicBool::new(false);
    let emitting = async {
        let mut next = 5;
        while !restarted.load(std::sync::atomic::Ordering::Relaxed) {
            emit(&env, &server, &name, &marker, next..next + 1).await;
            next += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        next
    };
    let outage = async {
        broker.stop().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            pending_rows(&env, &name).await > 0,
            "written while the broker is down: they wait"
        );
        broker.restart().await;
        restarted.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let (emitted, ()) = tokio::join!(emitting, outage);
    TestEnv::eventually(40_000, || async { pending_rows(&env, &name).await == 0 }).await;
    let tally = load.finish().await;
    assert!(tally.allowed > 0 && tally.refused > 0, "{tally:?}");
    assert_eq!(
        (
            tally.wrong_allows,
            tally.failed_closed,
            tally.unexpected.len()
        ),
        (0, 0, 0),
        "{tally:?}"
    );

    let connection = Connection::connect(&broker.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut messages = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        messages.push(message.delivery);
    }
    assert_exactly_once(&messages, &marker, emitted);
}
