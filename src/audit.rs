//! The audit trail of decisions: the gate's [`AuditEvent`]s (permission denials and AUDIT
//! rows) turned into admin-category activities, and written asynchronously in batches
//! (decisions.md #3) so that a denial storm neither slows decisions nor floods the database
//! with single-row inserts. The queue itself is the gate's (`gate::AuditSink`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::gate::AuditEvent;
use crate::net::form::form_pairs;
use crate::net::geoip::GeoIp;
use crate::store::activities::{self, NewActivity};
use crate::store::{Store, StoreError};

const BATCH: usize = 500;

/// The admin API's own records (who changed what, before and after), queued for the same
/// batch writer as the gate's events, so that an admin write never waits on its audit row.
#[derive(Clone)]
pub struct ActivitySink {
    tx: mpsc::Sender<NewActivity>,
}

impl ActivitySink {
    /// The sink and the receiving end (for [`run_writer`], or a test).
    pub fn new() -> (ActivitySink, mpsc::Receiver<NewActivity>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (ActivitySink { tx }, rx)
    }

    /// Queues a record; when the queue is full it is dropped and counted rather than making
    /// the request wait.
    pub fn record(&self, activity: NewActivity) {
        if self.tx.try_send(activity).is_err() {
            metrics::counter!("portcullis_audit_dropped_total").increment(1);
        }
    }
}

/// The admin sink's queue: as deep as the gate's.
const QUEUE: usize = 10_000;

/// Writes the gate's queued events and the admin API's records in batches until every sender
/// of both is gone.
pub async fn run_writer(
    store: Store,
    mut gate: mpsc::Receiver<AuditEvent>,
    mut admin: mpsc::Receiver<NewActivity>,
    geoip: Option<Arc<GeoIp>>,
) {
    let mut events = Vec::with_capacity(BATCH);
    let mut batch = Vec::with_capacity(BATCH);
    let (mut gate_open, mut admin_open) = (true, true);
    loop {
        tokio::select! {
            received = gate.recv_many(&mut events, BATCH), if gate_open => {
                if received == 0 {
                    gate_open = false;
                    continue;
                }
                batch.extend(events.drain(..).map(|event| {
                    let country = geoip
                        .as_ref()
                        .and_then(|geo| geo.locate(event.ip))
                        .map(|l| l.country_display)
                        .filter(|c| !c.is_empty());
                    activity(event, country)
                }));
            }
            received = admin.recv_many(&mut batch, BATCH), if admin_open => {
                if received == 0 {
                    admin_open = false;
                    continue;
                }
            }
            else => return,
        }
        write_batch(&store, &batch).await;
        batch.clear();
    }
}

/// The activity Barong writes for a gate event: category `admin`, the action of the verb, the
/// topic of the AUDIT row or of the path, the target uid and the request as data.
pub fn activity(event: AuditEvent, country: Option<String>) -> NewActivity {
    NewActivity {
        user_id: Some(event.user_id),
        target_uid: target_uid(event.query.as_deref()),
        category: "admin",
        user_ip: event.ip.to_string(),
        user_ip_country: country,
        topic: topic_for(&event.path, event.topic.as_deref()),
        action: action_for_verb(&event.verb).to_string(),
        result: event.result.as_str(),
        data: Some(request_data(&event.path, event.query.as_deref())),
        user_agent: event.user_agent,
    }
}

/// Writes a batch in one statement. If the database refuses it (rather than being away), the
/// rows are written one by one, so one bad record costs only itself: nobody can wipe other
/// records, an admin's audited writes among them, by sending one that Postgres refuses.
async fn write_batch(store: &Store, batch: &[NewActivity]) {
    let mut attempt = 0;
    loop {
        let result = match store.client().await {
            Ok(client) => activities::insert_many(&client, batch).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                metrics::counter!("portcullis_audit_written_total").increment(batch.len() as u64);
                return;
            }
            Err(StoreError::Unavailable(err)) if attempt < 3 => {
                attempt += 1;
                tracing::warn!(error = %err, attempt, "audit batch not written yet; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(StoreError::Unavailable(err)) => {
                tracing::error!(error = %err, records = batch.len(), "audit batch dropped: the database is unavailable");
                metrics::counter!("portcullis_audit_dropped_total").increment(batch.len() as u64);
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, records = batch.len(), "audit batch refused; writing its records one by one");
                write_one_by_one(store, batch).await;
                return;
            }
        }
    }
}

async fn write_one_by_one(store: &Store, batch: &[NewActivity]) {
    let Ok(client) = store.client().await else {
        metrics::counter!("portcullis_audit_dropped_total").increment(batch.len() as u64);
        return;
    };
    for activity in batch {
        match activities::insert(&client, activity).await {
            Ok(()) => metrics::counter!("portcullis_audit_written_total").increment(1),
            Err(err) => {
                // The record's values may be hostile: log what it is about, not what it says.
                tracing::error!(error = %err, topic = %activities::fit(&activity.topic, 64), user_id = ?activity.user_id, "audit record refused by the database; dropped");
                metrics::counter!("portcullis_audit_dropped_total").increment(1);
            }
        }
    }
}

/// Barong's action for a verb: POST→create, PUT/PATCH→update, GET→read, DELETE→delete, else system.
pub fn action_for_verb(verb: &str) -> &'static str {
    match verb {
        "POST" => "create",
        "PUT" | "PATCH" => "update",
        "GET" => "read",
        "DELETE" => "delete",
        _ => "system",
    }
}

/// Barong's topic: the AUDIT row's topic, else the path segment after `admin/`, else `general`.
pub fn topic_for(path: &str, audit_topic: Option<&str>) -> String {
    if let Some(topic) = audit_topic.filter(|t| !t.is_empty()) {
        return topic.to_string();
    }
    path.split_once("admin/")
        .and_then(|(_, rest)| rest.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("general")
        .to_string()
}

/// `uid` or `user_uid` from the query string, the activity's target, when it looks like a
/// uid (letters and digits, at most 32); anything else stays in the record's data only.
pub fn target_uid(query: Option<&str>) -> Option<String> {
    let query = query?;
    form_pairs(query)
        .find(|(k, _)| k == "uid" || k == "user_uid")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 32 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The activity's data: the request's query parameters and its path, as JSON.
pub fn request_data(path: &str, query: Option<&str>) -> String {
    let mut map = serde_json::Map::new();
    for (k, v) in query.map(form_pairs).into_iter().flatten() {
        map.insert(k, serde_json::Value::String(v));
    }
    map.insert("path".into(), serde_json::Value::String(path.to_string()));
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_actions_follow_barong() {
        assert_eq!(topic_for("api/v2/admin/markets/1", None), "markets");
        assert_eq!(topic_for("api/v2/barong/admin/users", None), "users");
        assert_eq!(topic_for("api/v2/peatio/account", None), "general");
        assert_eq!(
            topic_for("api/v2/admin/markets", Some("trading")),
            "trading"
        );
        assert_eq!(action_for_verb("POST"), "create");
        assert_eq!(action_for_verb("PATCH"), "update");
        assert_eq!(action_for_verb("HEAD"), "system");
    }

    #[test]
    fn a_gate_event_becomes_an_admin_activity() {
        let event = AuditEvent {
            user_id: 7,
            verb: "POST".into(),
            path: "api/v2/admin/markets/1".into(),
            query: Some("uid=ID1".into()),
            ip: "10.0.0.1".parse().unwrap(),
            user_agent: "UA".into(),
            topic: None,
            result: crate::gate::AuditResult::Denied,
        };
        let a = activity(event, Some("Ukraine".into()));
        assert_eq!(a.user_id, Some(7));
        assert_eq!(a.category, "admin");
        assert_eq!(a.action, "create");
        assert_eq!(a.topic, "markets");
        assert_eq!(a.result, "denied");
        assert_eq!(a.target_uid.as_deref(), Some("ID1"));
        assert_eq!(a.user_ip, "10.0.0.1");
        assert_eq!(a.user_ip_country.as_deref(), Some("Ukraine"));
        assert_eq!(a.user_agent, "UA");
        assert!(
            a.data
                .unwrap()
                .contains("\"path\":\"api/v2/admin/markets/1\"")
        );
    }

    #[test]
    fn target_and_data_come_from_the_query() {
        assert_eq!(target_uid(Some("a=1&user_uid=ID123")), Some("ID123".into()));
        assert_eq!(target_uid(Some("uid=")), None);
        assert_eq!(target_uid(Some(&format!("uid={}", "A".repeat(40)))), None);
        assert_eq!(target_uid(Some("uid=ID1%27--")), None);
        assert_eq!(target_uid(None), None);
        let data: serde_json::Value =
            serde_json::from_str(&request_data("api/v2/x", Some("uid=ID1&note=a+b"))).unwrap();
        assert_eq!(data["uid"], "ID1");
        assert_eq!(data["note"], "a b");
        assert_eq!(data["path"], "api/v2/x");
    }
}
