//! What the gate asks to be recorded when a permission check meets an AUDIT row or denies a
//! user, and the queue it goes into. Turning an event into an activity row (topic, action,
//! target, country) is `crate::audit`'s job, off the request path.

use std::net::IpAddr;

use tokio::sync::mpsc;

use super::Facts;

const QUEUE: usize = 10_000;

/// How the permission check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditResult {
    /// Allowed, and an AUDIT row asked for a record.
    Succeed,
    /// Refused with `authz.invalid_permission`.
    Denied,
}

impl AuditResult {
    /// The `activities.result` value Barong writes.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Succeed => "succeed",
            AuditResult::Denied => "denied",
        }
    }
}

/// A user's request that the permission check wants on the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// The user's database id.
    pub user_id: i64,
    pub verb: String,
    /// The public path, as rules see it.
    pub path: String,
    pub query: Option<String>,
    pub ip: IpAddr,
    pub user_agent: String,
    /// The first matching AUDIT row's topic, if any.
    pub topic: Option<String>,
    pub result: AuditResult,
}

impl AuditEvent {
    pub fn new(
        user_id: i64,
        facts: &Facts<'_>,
        topic: Option<String>,
        result: AuditResult,
    ) -> AuditEvent {
        AuditEvent {
            user_id,
            verb: facts.verb.to_string(),
            path: facts.path.to_string(),
            query: facts.query.map(str::to_string),
            ip: facts.ip,
            user_agent: facts.user_agent.to_string(),
            topic,
            result,
        }
    }
}

/// The sending end of the audit queue. Cheap to clone.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<AuditEvent>,
}

impl AuditSink {
    /// The sink and the receiving end (for `audit::run_writer`, or a test).
    pub fn new() -> (AuditSink, mpsc::Receiver<AuditEvent>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (AuditSink { tx }, rx)
    }

    /// Queues an event; when the queue is full the event is dropped and counted rather than
    /// making the request wait.
    pub fn record(&self, event: AuditEvent) {
        if self.tx.try_send(event).is_err() {
            metrics::counter!("portcullis_audit_dropped_total").increment(1);
        }
    }
}
