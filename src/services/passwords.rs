//! Replacing a user's password, the one way a reset link and a signed-in change both end:
//! the new digest, the user's `password` activity and the system event (`system.user.password
//! .reset` or `.change`, which the mailer turns into its email), in the caller's transaction.

use serde_json::json;

use crate::events::{Events, user_record_of};
use crate::store::activities::{self, NewActivity};
use crate::store::users::{self, UserRow};
use crate::store::{Db, StoreError};

/// What replaced the password, with the activity and the event it writes.
pub struct Replacement<'a> {
    /// The argon2id digest of the new password.
    pub digest: &'a str,
    /// The succeeded `password` activity of the caller.
    pub activity: &'a NewActivity,
    /// `system.user.password.reset` or `system.user.password.change`.
    pub event: &'static str,
    /// `app.domain`, which the email's links use.
    pub domain: &'a str,
}

/// Writes the digest, the activity and the event in `c` (a transaction the caller commits,
/// then rings the workers and ends the sessions it must).
pub async fn replace<C: Db>(
    c: &C,
    events: &Events,
    user: &UserRow,
    replacement: &Replacement<'_>,
) -> Result<(), StoreError> {
    users::set_password_digest(c, user.id, replacement.digest).await?;
    activities::insert(c, replacement.activity).await?;
    let record = json!({ "record": {
        "user": user_record_of(c, user).await?,
        "domain": replacement.domain,
    }});
    events.emit(c, replacement.event, &record).await
}
