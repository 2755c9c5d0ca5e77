//! Events: what the outbox records about users and sessions, in Barong's EventAPI shapes,
//! so that Barong's mailer and applogic consumers keep working.

use serde_json::{Value, json};

use crate::api::entities::iso;
use crate::store::users::UserRow;

/// The `user` record of system events: `{uid, username, email, role, level, otp, state,
/// referral_uid, created_at, updated_at}` with nil values left out.
pub fn user_record(user: &UserRow, referral_uid: Option<&str>) -> Value {
    let mut record = json!({
        "uid": user.uid,
        "email": user.email,
        "role": user.role,
        "level": user.level,
        "otp": user.otp,
        "state": user.state,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    });
    let map = record.as_object_mut().expect("object");
    if let Some(username) = &user.username {
        map.insert("username".into(), json!(username));
    }
    if let Some(referral) = referral_uid {
        map.insert("referral_uid".into(), json!(referral));
    }
    record
}
