//! Finding users for the admin API: Barong's `UserFilter` (uid, email, role, the country of
//! any profile, level, state, a created/updated time range), the users waiting for a document
//! review, and the users holding a label; one page at a time, with the total.
//!
//! The SQL is assembled from fixed fragments: values always travel as parameters, and the
//! column to order by is one of [`ORDER_COLUMNS`], never the caller's text.

use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use super::users::{COLUMNS, UserRow};
use super::{Db, StoreError};

/// The columns a list may be ordered by: Barong's `users` attributes (its `order_by`
/// accepts any of them). The sealed TOTP secret is not among them.
pub const ORDER_COLUMNS: &[&str] = &[
    "id",
    "uid",
    "username",
    "email",
    "password_digest",
    "role",
    "data",
    "level",
    "otp",
    "state",
    "referral_id",
    "created_at",
    "updated_at",
];

/// Which timestamp `from` and `to` bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    #[default]
    Created,
    Updated,
}

/// Every filter is optional; those given must all hold.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub uid: Option<String>,
    pub email: Option<String>,
    pub role: Option<String>,
    /// Any of the user's profiles is in this country.
    pub country: Option<String>,
    pub level: Option<i32>,
    pub state: Option<String>,
    pub range: Range,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// Which users a search starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Among {
    All,
    /// Users whose private `document` label is `pending` or `replaced`, the longest waiting
    /// first (Barong orders them by the label's `updated_at`).
    PendingDocuments,
}

/// The order of a list: a column of [`ORDER_COLUMNS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    column: &'static str,
    descending: bool,
}

impl Order {
    /// `None` when `column` is not one of [`ORDER_COLUMNS`].
    pub fn by(column: &str, descending: bool) -> Option<Order> {
        ORDER_COLUMNS
            .iter()
            .find(|c| **c == column)
            .map(|column| Order { column, descending })
    }
}

impl Default for Order {
    fn default() -> Order {
        Order {
            column: "id",
            descending: false,
        }
    }
}

/// One page of users matching `filter` among `among`, in `order`, and how many match in all.
pub async fn search<C: Db>(
    c: &C,
    filter: &UserFilter,
    among: Among,
    order: Order,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<UserRow>), StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut bind = |condition: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        conditions.push(condition.replace('?', &format!("${}", params.len())));
    };
    if let Some(uid) = &filter.uid {
        bind("uid = ?", Box::new(uid.clone()));
    }
    if let Some(email) = &filter.email {
        bind("lower(email) = lower(?)", Box::new(email.clone()));
    }
    if let Some(role) = &filter.role {
        bind("role = ?", Box::new(role.clone()));
    }
    // A user with several profiles in the country is listed once: EXISTS, not a join.
    if let Some(country) = &filter.country {
        bind(
            "EXISTS (SELECT 1 FROM profiles p WHERE p.user_id = users.id AND p.country = ?)",
            Box::new(country.clone()),
        );
    }
    if let Some(level) = filter.level {
        bind("level = ?", Box::new(level));
    }
    if let Some(state) = &filter.state {
        bind("state = ?", Box::new(state.clone()));
    }
    let stamp = match filter.range {
        Range::Created => "created_at",
        Range::Updated => "updated_at",
    };
    if let Some(from) = filter.from {
        bind(&format!("{stamp} >= ?"), Box::new(from));
    }
    if let Some(to) = filter.to {
        bind(&format!("{stamp} < ?"), Box::new(to));
    }
    const PENDING: &str = "l.user_id = users.id AND l.key = 'document' AND l.scope = 'private'
         AND l.value IN ('pending', 'replaced')";
    if among == Among::PendingDocuments {
        conditions.push(format!("EXISTS (SELECT 1 FROM labels l WHERE {PENDING})"));
    }
    let condition = if conditions.is_empty() {
        "TRUE".to_string()
    } else {
        conditions.join(" AND ")
    };
    let direction = if order.descending { "DESC" } else { "ASC" };
    let order_by = match among {
        Among::All => format!("{} {direction}, id {direction}", order.column),
        Among::PendingDocuments => {
            format!("(SELECT l.updated_at FROM labels l WHERE {PENDING}) ASC, id ASC")
        }
    };
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let total: i64 = c
        .query_one(
            &*format!("SELECT count(*) FROM users WHERE {condition}"),
            &refs,
        )
        .await?
        .get(0);
    let mut page_refs = refs.clone();
    page_refs.push(&limit);
    page_refs.push(&offset);
    let n = refs.len();
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE {condition} ORDER BY {order_by} LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let rows = c.query(&sql, &page_refs).await?;
    Ok((total, rows.iter().map(UserRow::from_row).collect()))
}

/// One page of the users holding the label (key, value) in any scope, by id, and their number.
pub async fn with_label<C: Db>(
    c: &C,
    key: &str,
    value: &str,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<UserRow>), StoreError> {
    const HOLDS: &str = "id IN (SELECT user_id FROM labels WHERE key = $1 AND value = $2)";
    let total: i64 = super::query_one(
        c,
        &format!("SELECT count(*) FROM users WHERE {HOLDS}"),
        &[&key, &value],
    )
    .await?
    .get(0);
    let sql = format!("SELECT {COLUMNS} FROM users WHERE {HOLDS} ORDER BY id LIMIT $3 OFFSET $4");
    let rows = super::query(c, &sql, &[&key, &value, &limit, &offset]).await?;
    Ok((total, rows.iter().map(UserRow::from_row).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_users_columns_order_a_list() {
        assert_eq!(Order::by("email", true).unwrap().column, "email");
        assert!(Order::by("otp_secret_encrypted", false).is_none());
        assert!(Order::by("id; DROP TABLE users", false).is_none());
        assert!(Order::by("ID", false).is_none());
    }
}
