//! Labels, and what private labels imply for a user (Barong §10): the level (the highest
//! level whose key:value the user holds, counting from 1 without gaps) and the state (pending,
//! active once the activation labels are held, or whatever a trigger label says). Leaving
//! `active` deactivates the user's API keys and those of its service accounts.

use std::collections::HashSet;

use super::users::{self, UserRow};
use super::{Db, StoreError, execute, query};
use crate::config::Users;
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

/// Creates or updates the label (user, key, scope) and recomputes level and state.
pub async fn set<C: Db>(
    c: &C,
    settings: &Users,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
) -> Result<LabelChange, StoreError> {
    let user_before = users::find_by_id(c, user_id)
        .await?
        .ok_or_else(|| StoreError::Other(format!("user {user_id} vanished")))?;
    let existing = super::query_opt(
        c,
        "SELECT value FROM labels WHERE user_id = $1 AND key = $2 AND scope = $3 FOR UPDATE",
        &[&user_id, &key, &scope],
    )
    .await?
    .map(|r| r.get::<_, String>(0));
    let row = super::query_one(
        c,
        "INSERT INTO labels (user_id, key, value, scope) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, key, scope) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
         RETURNING id, description",
        &[&user_id, &key, &value, &scope],
    )
    .await?;
    let user = recompute(c, settings, user_id).await?;
    Ok(LabelChange {
        label: Label {
            id: row.get(0),
            key: key.to_string(),
            value: value.to_string(),
            scope: scope.to_string(),
            description: row.get(1),
        },
        created: existing.is_none(),
        previous_value: existing,
        user_before,
        user,
    })
}

/// Recomputes the level and the state from the labels; writes them when they changed.
pub async fn recompute<C: Db>(
    c: &C,
    settings: &Users,
    user_id: i64,
) -> Result<UserRow, StoreError> {
    let labels = query(
        c,
        "SELECT key, value, scope FROM labels WHERE user_id = $1",
        &[&user_id],
    )
    .await?;
    let private: HashSet<(String, String)> = labels
        .iter()
        .filter(|r| r.get::<_, String>(2) == "private")
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let keys: HashSet<String> = labels.iter().map(|r| r.get(0)).collect();

    let levels = query(c, "SELECT id, key, value FROM levels ORDER BY id", &[]).await?;
    let mut level = 0;
    for row in &levels {
        if !private.contains(&(row.get(1), row.get(2))) {
            break;
        }
        level = row.get(0);
    }

    let mut new_state = if settings
        .activation_requirements
        .iter()
        .all(|(k, v)| private.contains(&(k.clone(), v.clone())))
    {
        state::ACTIVE
    } else {
        state::PENDING
    }
    .to_string();
    for trigger in &settings.state_triggers {
        if trigger.labels.iter().any(|label| keys.contains(label)) {
            new_state = trigger.state.clone();
        }
    }

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
    }
    users::find_by_id(c, user_id)
        .await?
        .ok_or_else(|| StoreError::Other(format!("user {user_id} vanished")))
}

/// Every key of the user and of its service accounts becomes inactive (Barong §3.1).
pub async fn deactivate_api_keys<C: Db>(c: &C, user_id: i64) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE api_keys SET state = 'inactive', updated_at = now()
         WHERE state = 'active' AND (
               (key_holder_account_type = 'User' AND key_holder_account_id = $1)
            OR (key_holder_account_type = 'ServiceAccount' AND key_holder_account_id IN
                   (SELECT id FROM service_accounts WHERE owner_id = $1)))",
        &[&user_id],
    )
    .await?;
    Ok(())
}
