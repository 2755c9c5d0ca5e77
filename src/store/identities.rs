//! The `user_identities` table: which subject at an outside identity provider (Auth0) an
//! account is bound to. A subject belongs to one account and an account has at most one subject
//! per provider; both rules are unique constraints, so concurrent first logins cannot break them.

use super::{Db, StoreError, execute, query_opt};

/// The width of `subject`, in characters (what VARCHAR(n) counts). A longer subject is refused
/// by the caller, never cut: a cut subject would be another identity.
pub const SUBJECT_WIDTH: usize = 255;

/// The account bound to `subject` at `provider`.
pub async fn user_of<C: Db>(
    c: &C,
    provider: &str,
    subject: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(query_opt(
        c,
        "SELECT user_id FROM user_identities WHERE provider = $1 AND subject = $2",
        &[&provider, &subject],
    )
    .await?
    .map(|row| row.get(0)))
}

/// The subject at `provider` the account is bound to.
pub async fn subject_of<C: Db>(
    c: &C,
    user_id: i64,
    provider: &str,
) -> Result<Option<String>, StoreError> {
    Ok(query_opt(
        c,
        "SELECT subject FROM user_identities WHERE user_id = $1 AND provider = $2",
        &[&user_id, &provider],
    )
    .await?
    .map(|row| row.get(0)))
}

/// Binds the account to `subject` at `provider`. True when the account is bound to that
/// subject afterwards, by this call or by a concurrent login of the same identity; false when
/// the subject or the account was bound elsewhere first.
///
/// The insert does nothing on a conflict instead of failing, so the caller's transaction stays
/// usable; under READ COMMITTED the insert waits for a concurrent binder, and the read after it
/// sees what that one committed.
pub async fn bind<C: Db>(
    c: &C,
    user_id: i64,
    provider: &str,
    subject: &str,
) -> Result<bool, StoreError> {
    let inserted = execute(
        c,
        "INSERT INTO user_identities (user_id, provider, subject) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &[&user_id, &provider, &subject],
    )
    .await?;
    Ok(inserted == 1 || user_of(c, provider, subject).await? == Some(user_id))
}
