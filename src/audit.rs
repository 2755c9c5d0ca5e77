//! The audit trail of decisions: admin-category activities for permission denials and AUDIT
//! rows, written asynchronously in batches (decisions.md #3) so that a denial storm neither
//! slows decisions nor floods the database with single-row inserts.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::gate::geoip::GeoIp;
use crate::net::form::form_pairs;
use crate::store::activities::{self, NewActivity};
use crate::store::{Store, StoreError};

const QUEUE: usize = 10_000;
const BATCH: usize = 500;

#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<NewActivity>,
}

impl AuditSink {
    /// The sink and the receiving end for [`run_writer`].
    pub fn new() -> (AuditSink, mpsc::Receiver<NewActivity>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (AuditSink { tx }, rx)
    }

    /// Queues an activity; when the queue is full the record is dropped and counted rather
    /// than making the request wait.
    pub fn record(&self, activity: NewActivity) {
        if self.tx.try_send(activity).is_err() {
            metrics::counter!("portcullis_audit_dropped_total").increment(1);
        }
    }
}

/// Writes queued activities in batches until every sender is gone.
pub async fn run_writer(
    store: Store,
    mut rx: mpsc::Receiver<NewActivity>,
    geoip: Option<Arc<GeoIp>>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        for activity in batch.iter_mut() {
            if activity.user_ip_country.is_none()
                && let (Some(geo), Ok(ip)) = (&geoip, activity.user_ip.parse::<IpAddr>())
            {
                activity.user_ip_country = geo
                    .locate(ip)
                    .map(|l| l.country_display)
                    .filter(|c| !c.is_empty());
            }
        }
        write_batch(&store, &batch).await;
        batch.clear();
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
