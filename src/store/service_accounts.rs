//! The `service_accounts` table: machine identities owned by users, authenticated by API keys.

use super::{Db, StoreError, query_one, query_opt};
use crate::domain::subject::{SubjectKind, SubjectRecord};

const COLUMNS: &str = "id, uid, email, role, level, state";

fn subject(row: &tokio_postgres::Row) -> SubjectRecord {
    SubjectRecord {
        kind: SubjectKind::ServiceAccount,
        id: row.get(0),
        uid: row.get(1),
        username: None,
        email: row.get(2),
        role: row.get(3),
        level: row.get(4),
        state: row.get(5),
        referral_id: None,
        otp: false,
    }
}

pub async fn subject_by_uid<C: Db>(c: &C, uid: &str) -> Result<Option<SubjectRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM service_accounts WHERE uid = $1");
    Ok(query_opt(c, &sql, &[&uid]).await?.as_ref().map(subject))
}

/// The service account `uid` when `owner_id` owns it; another owner's is as absent as an
/// unknown one.
pub async fn owned_subject<C: Db>(
    c: &C,
    owner_id: i64,
    uid: &str,
) -> Result<Option<SubjectRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM service_accounts WHERE uid = $1 AND owner_id = $2");
    Ok(query_opt(c, &sql, &[&uid, &owner_id])
        .await?
        .as_ref()
        .map(subject))
}

pub struct NewServiceAccount<'a> {
    pub uid: &'a str,
    pub owner_id: Option<i64>,
    pub email: &'a str,
    pub role: &'a str,
    pub level: i32,
    pub state: &'a str,
}

pub async fn insert<C: Db>(
    c: &C,
    new: &NewServiceAccount<'_>,
) -> Result<SubjectRecord, StoreError> {
    let sql = format!(
        "INSERT INTO service_accounts (uid, owner_id, email, role, level, state)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    );
    let row = query_one(
        c,
        &sql,
        &[
            &new.uid,
            &new.owner_id,
            &new.email,
            &new.role,
            &new.level,
            &new.state,
        ],
    )
    .await?;
    Ok(subject(&row))
}

/// A service account as its owner sees it.
#[derive(Debug, Clone)]
pub struct ServiceAccountRow {
    pub uid: String,
    pub email: String,
    pub role: String,
    pub level: i32,
    pub state: String,
    pub created_at: time::OffsetDateTime,
    pub updated_at: time::OffsetDateTime,
}

/// The service accounts `owner_id` owns, oldest first.
pub async fn owned_by<C: Db>(c: &C, owner_id: i64) -> Result<Vec<ServiceAccountRow>, StoreError> {
    let rows = super::query(
        c,
        "SELECT uid, email, role, level, state, created_at, updated_at FROM service_accounts
         WHERE owner_id = $1 ORDER BY id",
        &[&owner_id],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| ServiceAccountRow {
            uid: r.get(0),
            email: r.get(1),
            role: r.get(2),
            level: r.get(3),
            state: r.get(4),
            created_at: r.get(5),
            updated_at: r.get(6),
        })
        .collect())
}
