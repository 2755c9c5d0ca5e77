//! Events, in Barong's EventAPI shapes, so that Barong's mailer and applogic consumers keep
//! working: written to the outbox in the transaction of the change they describe
//! ([`Events::emit`]), delivered to RabbitMQ by the publisher with Barong's exchanges, routing
//! keys and signed JWS envelope, and — for the events that send an email — queued for the
//! built-in mailer.

pub mod envelope;
pub mod mailer;
pub mod publisher;
pub mod queue;
pub mod templates;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::domain::time::iso;
use crate::store::labels::LabelChange;
use crate::store::users::UserRow;
use crate::store::{Db, StoreError};

/// The email of a Back Office 2FA code: queued with [`Events::mail_only`], never published.
pub const BACKOFFICE_2FA_CODE: &str = "system.backoffice.2fa.code";
/// Emails sent without an event (they carry a secret); each needs a template.
pub const MAIL_ONLY: &[&str] = &[BACKOFFICE_2FA_CODE];

/// The outbox side of events: what `emit` needs, and the bells that wake the workers.
pub struct Events {
    mail_events: HashSet<String>,
    /// Whether the built-in mailer sends anything (`mail.delivery` is not `none`).
    mails: bool,
    /// Rung when the outbox has work (by the change notice, or by `emit` on this node).
    pub publisher_wake: Arc<Notify>,
    /// Rung when the mail queue has work.
    pub mailer_wake: Arc<Notify>,
    /// Rung when `kyc_jobs` has work.
    pub kyc_wake: Arc<Notify>,
}

impl Events {
    pub fn new(settings: &crate::config::Settings) -> Events {
        Events {
            mail_events: match settings.mail.delivery {
                crate::config::MailDelivery::None => HashSet::new(),
                _ => settings.mail.events.iter().cloned().collect(),
            },
            mails: settings.mail.delivery != crate::config::MailDelivery::None,
            publisher_wake: Arc::new(Notify::new()),
            mailer_wake: Arc::new(Notify::new()),
            kyc_wake: Arc::new(Notify::new()),
        }
    }

    /// Records event `name` (e.g. `system.user.email.confirmation.token`) with its body
    /// (`{"record": {...}}`, plus `"changes"` for model updates), in the caller's transaction.
    /// Events that send an email are queued for the mailer too.
    pub async fn emit<C: Db>(&self, c: &C, name: &str, body: &Value) -> Result<(), StoreError> {
        crate::store::outbox::insert(c, name, body).await?;
        if self.mail_events.contains(name) {
            crate::store::mail_queue::insert(c, name, body).await?;
        }
        Ok(())
    }

    /// Queues the email of `name` for the mailer without publishing an event, for messages
    /// that carry a secret (a one-time code) no event consumer should see. False when the
    /// mailer is off (`mail.delivery = "none"`): nothing can be sent.
    pub async fn mail_only<C: Db>(
        &self,
        c: &C,
        name: &str,
        body: &Value,
    ) -> Result<bool, StoreError> {
        if !self.mails {
            return Ok(false);
        }
        crate::store::mail_queue::insert(c, name, body).await?;
        Ok(true)
    }

    /// `model.user.created`.
    pub async fn user_created<C: Db>(&self, c: &C, user: &UserRow) -> Result<(), StoreError> {
        let record = without_nulls(user_record_of(c, user).await?);
        self.emit(c, "model.user.created", &json!({ "record": record }))
            .await
    }

    /// `model.user.updated` with the previous values of what changed, when anything visible did.
    pub async fn user_updated<C: Db>(
        &self,
        c: &C,
        before: &UserRow,
        after: &UserRow,
    ) -> Result<(), StoreError> {
        self.user_changed(c, before, after, false).await
    }

    /// `model.user.updated` after a change to the user's `data`, which the event's record does
    /// not show: Barong publishes it all the same, with empty `changes`, and consumers that
    /// re-read the user on it expect it.
    pub async fn user_data_updated<C: Db>(
        &self,
        c: &C,
        before: &UserRow,
        after: &UserRow,
    ) -> Result<(), StoreError> {
        self.user_changed(c, before, after, true).await
    }

    async fn user_changed<C: Db>(
        &self,
        c: &C,
        before: &UserRow,
        after: &UserRow,
        even_unchanged: bool,
    ) -> Result<(), StoreError> {
        let old = user_record_of(c, before).await?;
        let new = user_record_of(c, after).await?;
        // Changes list previous values, nil included; the record itself leaves nils out.
        let mut changes = serde_json::Map::new();
        for (key, value) in old.as_object().into_iter().flatten() {
            if key != "updated_at" && new.get(key) != Some(value) {
                changes.insert(key.clone(), value.clone());
            }
        }
        if changes.is_empty() && !even_unchanged {
            return Ok(());
        }
        self.emit(
            c,
            "model.user.updated",
            &json!({ "record": without_nulls(new), "changes": changes }),
        )
        .await
    }

    /// `model.label.created` or `model.label.updated`, and `model.user.updated` when the label
    /// moved the user's level or state. A private `document` or `profile` label that becomes
    /// `verified` or `rejected` also emits `system.<key>.<value>` (Barong's
    /// `system.document.*`; `system.profile.*` is Portcullis's), whoever set it (the KYC
    /// worker, an admin): every label write comes through here.
    pub async fn label_changed<C: Db>(
        &self,
        c: &C,
        change: &LabelChange,
    ) -> Result<(), StoreError> {
        let mut record = json!({
            "id": change.label.id,
            "key": change.label.key,
            "value": change.label.value,
            "user": user_record_of(c, &change.user).await?,
        });
        if let Some(description) = &change.label.description {
            record["description"] = json!(description);
        }
        let value_changed =
            change.created || change.previous_value.as_deref() != Some(change.label.value.as_str());
        if let Some(name) = decision_event(change).filter(|_| value_changed) {
            let mut record = record.clone();
            record["description"] = json!(change.label.description);
            self.emit(c, &name, &json!({ "record": record })).await?;
        }
        if change.created {
            self.emit(c, "model.label.created", &json!({ "record": record }))
                .await?;
        } else if value_changed {
            let changes = json!({ "value": change.previous_value });
            self.emit(
                c,
                "model.label.updated",
                &json!({ "record": record, "changes": changes }),
            )
            .await?;
        }
        self.user_updated(c, &change.user_before, &change.user)
            .await
    }

    /// Wakes the workers on this node (the change notice wakes the others).
    pub fn ring(&self) {
        self.publisher_wake.notify_one();
        self.mailer_wake.notify_one();
        self.kyc_wake.notify_one();
    }
}

/// The system event a KYC decision label emits: `system.document.verified`,
/// `system.profile.rejected`, ...; `None` for any other label.
fn decision_event(change: &LabelChange) -> Option<String> {
    let label = &change.label;
    let decided = ["verified", "rejected"].contains(&label.value.as_str());
    let watched = ["document", "profile"].contains(&label.key.as_str());
    (decided && watched && label.scope == "private")
        .then(|| format!("system.{}.{}", label.key, label.value))
}

/// [`user_record`], with the referrer's uid looked up.
pub async fn user_record_of<C: Db>(c: &C, user: &UserRow) -> Result<Value, StoreError> {
    let referral = match user.referral_id {
        Some(id) => crate::store::users::uid_by_id(c, id).await?,
        None => None,
    };
    Ok(user_record(user, referral.as_deref()))
}

/// The `user` record of system events, as Barong's `as_json_for_event_api` builds it: `{uid,
/// username, email, role, level, otp, state, referral_uid, created_at, updated_at}`, every key
/// present (`username` and `referral_uid` are null when the user has none), so consumers that
/// read a key find it.
pub fn user_record(user: &UserRow, referral_uid: Option<&str>) -> Value {
    json!({
        "uid": user.uid,
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "level": user.level,
        "otp": user.otp,
        "state": user.state,
        "referral_uid": referral_uid,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    })
}

/// A model event's record: the model's view with nil values removed (Barong §11.2).
fn without_nulls(mut record: Value) -> Value {
    if let Some(map) = record.as_object_mut() {
        map.retain(|_, value| !value.is_null());
    }
    record
}
