//! Labels, and writing what they imply for a user (Barong §10): the level and the state, which
//! `domain::labels` derives from the labels and the `users` settings. Leaving `active`
//! deactivates the user's API keys and those of its service accounts.

use super::users::{self, UserRow};
use super::{Db, StoreError, execute, query};
use crate::config::Users;
use crate::domain::labels::{self as derive, Label as HeldLabel, Level, StateRules, Trigger};
use crate::domain::state;

/// A label as events describe it.
#[derive(Debug, Clone)]
pub struct Label {
    pub id: i64,
    pub key: String,
    pub value: String,
    pub scope: String,
    pub description: Option<String>,
}

/// What setting a label changed: the label, whether it is new (else its previous value), and
/// the user before and after the level and state were recomputed.
#[derive(Debug, Clone)]
pub struct LabelChange {
    pub label: Label,
    pub created: bool,
    pub previous_value: Option<String>,
    pub user_before: UserRow,
    pub user: UserRow,
}

impl Label {
    /// The label an INSERT or UPSERT wrote, from its `RETURNING id, description`.
    fn written(row: &tokio_postgres::Row, key: &str, value: &str, scope: &str) -> Label {
        Label {
            id: row.get(0),
            key: key.to_string(),
            value: value.to_string(),
            scope: scope.to_string(),
            description: row.get(1),
        }
    }
}

impl LabelChange {
    /// A change to `label`: new when there was no `previous_value`.
    fn new(
        label: Label,
        previous_value: Option<String>,
        user_before: UserRow,
        user: UserRow,
    ) -> LabelChange {
        LabelChange {
            label,
            created: previous_value.is_none(),
            previous_value,
            user_before,
            user,
        }
    }
}

/// The user a label is written for, as it is before the write.
async fn holder<C: Db>(c: &C, user_id: i64) -> Result<UserRow, StoreError> {
    users::find_by_id(c, user_id)
        .await?
        .ok_or_else(|| StoreError::Other(format!("user {user_id} vanished")))
}

/// Creates or updates the label (user, key, scope) and recomputes level and state.
pub async fn set<C: Db>(
    c: &C,
    settings: &Users,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
) -> Result<LabelChange, StoreError> {
    set_described(c, settings, user_id, key, value, scope, None).await
}

/// [`set`], with a description (admins describe the labels they set); `None` keeps the
/// label's description as it is.
pub async fn set_described<C: Db>(
    c: &C,
    settings: &Users,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
    description: Option<&str>,
) -> Result<LabelChange, StoreError> {
    let user_before = holder(c, user_id).await?;
    let existing = super::query_opt(
        c,
        "SELECT value FROM labels WHERE user_id = $1 AND key = $2 AND scope = $3 FOR UPDATE",
        &[&user_id, &key, &scope],
    )
    .await?
    .map(|r| r.get::<_, String>(0));
    let row = super::query_one(
        c,
        "INSERT INTO labels (user_id, key, value, scope, description) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, key, scope) DO UPDATE SET value = EXCLUDED.value,
             description = COALESCE($5, labels.description), updated_at = now()
         RETURNING id, description",
        &[&user_id, &key, &value, &scope, &description],
    )
    .await?;
    let user = recompute(c, settings, user_id).await?;
    let label = Label::written(&row, key, value, scope);
    Ok(LabelChange::new(label, existing, user_before, user))
}

/// Recomputes the level and the state from the labels (`domain::labels`); writes them when
/// they changed, and deactivates the user's API keys when the user leaves `active`.
pub async fn recompute<C: Db>(
    c: &C,
    settings: &Users,
    user_id: i64,
) -> Result<UserRow, StoreError> {
    let label_rows = query(
        c,
        "SELECT key, value, scope FROM labels WHERE user_id = $1",
        &[&user_id],
    )
    .await?;
    let held: Vec<(String, String, String)> = label_rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let labels: Vec<HeldLabel<'_>> = held
        .iter()
        .map(|(key, value, scope)| HeldLabel { key, value, scope })
        .collect();
    let defined = super::levels::all(c).await?;
    let levels: Vec<Level<'_>> = defined
        .iter()
        .map(|(id, key, value)| Level {
            id: *id,
            key,
            value,
        })
        .collect();
    let level = derive::level(&labels, &levels);
    let new_state = derive::state(&labels, &state_rules(settings));

    let before = users::find_by_id(c, user_id)
        .await?
        .ok_or_else(|| StoreError::Other(format!("user {user_id} vanished")))?;
    if before.level == level && before.state == new_state {
        return Ok(before);
    }
    execute(
        c,
        "UPDATE users SET level = $2, state = $3, updated_at = now() WHERE id = $1",
        &[&user_id, &level, &new_state],
    )
    .await?;
    if before.state == state::ACTIVE && new_state != state::ACTIVE {
        deactivate_api_keys(c, user_id).await?;
        disable_service_accounts(c, user_id).await?;
    }
    users::find_by_id(c, user_id)
        .await?
        .ok_or_else(|| StoreError::Other(format!("user {user_id} vanished")))
}

/// The `users` settings as the rules `domain::labels` applies.
fn state_rules(settings: &Users) -> StateRules<'_> {
    StateRules {
        activation: settings
            .activation_requirements
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect(),
        triggers: settings
            .state_triggers
            .iter()
            .map(|t| Trigger {
                state: &t.state,
                labels: &t.labels,
            })
            .collect(),
    }
}

/// Every key of the user and of its service accounts becomes inactive (Barong §3.1). Answers
/// the kids it turned off, so the writing node can drop them from its key cache at commit
/// rather than wait for the change notice.
pub async fn deactivate_api_keys<C: Db>(c: &C, user_id: i64) -> Result<Vec<String>, StoreError> {
    let rows = query(
        c,
        "UPDATE api_keys SET state = 'inactive', updated_at = now()
         WHERE state = 'active' AND (
               (key_holder_account_type = 'User' AND key_holder_account_id = $1)
            OR (key_holder_account_type = 'ServiceAccount' AND key_holder_account_id IN
                   (SELECT id FROM service_accounts WHERE owner_id = $1)))
         RETURNING kid",
        &[&user_id],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The user's active service accounts become `disabled` (Barong §10.2: leaving `active`
/// cascades to them). They stay so when the owner comes back: like the keys, an operator
/// re-enables them on purpose. The row trigger tells every node's gate at once.
pub async fn disable_service_accounts<C: Db>(c: &C, owner_id: i64) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE service_accounts SET state = 'disabled', updated_at = now()
         WHERE owner_id = $1 AND state = 'active'",
        &[&owner_id],
    )
    .await?;
    Ok(())
}

/// Deletes the label (user, key, scope) and recomputes level and state; `None` when there was
/// no such label.
pub async fn remove<C: Db>(
    c: &C,
    settings: &Users,
    user_id: i64,
    key: &str,
    scope: &str,
) -> Result<Option<UserRow>, StoreError> {
    let deleted = execute(
        c,
        "DELETE FROM labels WHERE user_id = $1 AND key = $2 AND scope = $3",
        &[&user_id, &key, &scope],
    )
    .await?;
    if deleted == 0 {
        return Ok(None);
    }
    recompute(c, settings, user_id).await.map(Some)
}

/// Inserts a new label (user, key, scope); `Conflict` when that key is taken in the scope.
pub async fn insert<C: Db>(
    c: &C,
    settings: &Users,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
) -> Result<LabelChange, StoreError> {
    insert_described(c, settings, user_id, key, value, scope, None).await
}

/// [`insert`], with a description.
pub async fn insert_described<C: Db>(
    c: &C,
    settings: &Users,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
    description: Option<&str>,
) -> Result<LabelChange, StoreError> {
    let user_before = holder(c, user_id).await?;
    let row = super::query_one(
        c,
        "INSERT INTO labels (user_id, key, value, scope, description) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, description",
        &[&user_id, &key, &value, &scope, &description],
    )
    .await?;
    let user = recompute(c, settings, user_id).await?;
    let label = Label::written(&row, key, value, scope);
    Ok(LabelChange::new(label, None, user_before, user))
}

/// The label (user, key, scope), as the API shows it.
pub async fn find<C: Db>(
    c: &C,
    user_id: i64,
    key: &str,
    scope: &str,
) -> Result<Option<users::LabelRow>, StoreError> {
    Ok(super::query_opt(
        c,
        "SELECT key, value, scope, description, created_at, updated_at FROM labels
         WHERE user_id = $1 AND key = $2 AND scope = $3",
        &[&user_id, &key, &scope],
    )
    .await?
    .map(|r| users::LabelRow {
        key: r.get(0),
        value: r.get(1),
        scope: r.get(2),
        description: r.get(3),
        created_at: r.get(4),
        updated_at: r.get(5),
    }))
}

/// How many users hold each private (key, value), by key then value (the admin's overview
/// of where accounts stand).
pub async fn private_counts<C: Db>(c: &C) -> Result<Vec<(String, String, i64)>, StoreError> {
    let rows = query(
        c,
        "SELECT key, value, count(*) FROM labels WHERE scope = 'private'
         GROUP BY key, value ORDER BY key, value",
        &[],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Sets the user's state as an admin decides it (any word: Barong does not check it).
/// Leaving `active` deactivates the user's API keys and disables its service accounts, as a
/// state the labels derive does; answers the user as written and the kids turned off.
pub async fn set_state<C: Db>(
    c: &C,
    id: i64,
    new_state: &str,
) -> Result<(UserRow, Vec<String>), StoreError> {
    let before: String = super::query_one(
        c,
        "SELECT state FROM users WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .await?
    .get(0);
    let sql = format!(
        "UPDATE users SET state = $2, updated_at = now() WHERE id = $1 RETURNING {}",
        users::COLUMNS
    );
    let user = UserRow::from_row(&super::query_one(c, &sql, &[&id, &new_state]).await?);
    let mut turned_off = Vec::new();
    if before == state::ACTIVE && user.state != state::ACTIVE {
        turned_off = deactivate_api_keys(c, id).await?;
        disable_service_accounts(c, id).await?;
    }
    Ok((user, turned_off))
}

/// How many users hold the label `key: value` in `scope` (the admin metrics' pending
/// applications).
pub async fn holders<C: Db>(c: &C, key: &str, value: &str, scope: &str) -> Result<i64, StoreError> {
    Ok(super::query_one(
        c,
        "SELECT count(*) FROM labels WHERE key = $1 AND value = $2 AND scope = $3",
        &[&key, &value, &scope],
    )
    .await?
    .get(0))
}
