//! The `permissions` table: (role, verb, path prefix) → ACCEPT | DROP | AUDIT.

use tokio_postgres::Row;

use super::{Db, StoreError, execute, query, query_one, query_opt};
pub use crate::domain::policy::PermissionRow;

const COLUMNS: &str = "id, action, role, verb, path, topic, created_at, updated_at";

fn from_row(row: &Row) -> PermissionRow {
    PermissionRow {
        id: row.get(0),
        action: row.get(1),
        role: row.get(2),
        verb: row.get(3),
        path: row.get(4),
        topic: row.get(5),
        created_at: row.get(6),
        updated_at: row.get(7),
    }
}

pub async fn all<C: Db>(c: &C) -> Result<Vec<PermissionRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM permissions ORDER BY id");
    Ok(query(c, &sql, &[]).await?.iter().map(from_row).collect())
}

/// The rows with these ids, by id.
pub async fn find_many<C: Db>(c: &C, ids: &[i64]) -> Result<Vec<PermissionRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM permissions WHERE id = ANY($1) ORDER BY id");
    Ok(query(c, &sql, &[&ids])
        .await?
        .iter()
        .map(from_row)
        .collect())
}

pub async fn find<C: Db>(c: &C, id: i64) -> Result<Option<PermissionRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM permissions WHERE id = $1");
    Ok(query_opt(c, &sql, &[&id]).await?.as_ref().map(from_row))
}

/// One page of the table, by id, and the number of rows in all.
pub async fn page<C: Db>(
    c: &C,
    limit: i64,
    offset: i64,
) -> Result<(Vec<PermissionRow>, i64), StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM permissions ORDER BY id LIMIT $1 OFFSET $2");
    let rows = query(c, &sql, &[&limit, &offset]).await?;
    Ok((rows.iter().map(from_row).collect(), count(c).await?))
}

pub async fn count<C: Db>(c: &C) -> Result<i64, StoreError> {
    Ok(query_one(c, "SELECT count(*) FROM permissions", &[])
        .await?
        .get(0))
}

pub async fn role_exists<C: Db>(c: &C, role: &str) -> Result<bool, StoreError> {
    Ok(query_one(
        c,
        "SELECT EXISTS (SELECT 1 FROM permissions WHERE role = $1)",
        &[&role],
    )
    .await?
    .get(0))
}

pub struct NewPermission<'a> {
    pub action: &'a str,
    pub role: &'a str,
    pub verb: &'a str,
    pub path: &'a str,
    pub topic: Option<&'a str>,
}

/// Inserts a row; `action` and `verb` are stored upper-cased as Barong does.
pub async fn insert<C: Db>(c: &C, new: &NewPermission<'_>) -> Result<PermissionRow, StoreError> {
    let sql = format!(
        "INSERT INTO permissions (action, role, verb, path, topic)
         VALUES (upper($1), $2, upper($3), $4, $5) RETURNING {COLUMNS}"
    );
    let row = query_one(
        c,
        &sql,
        &[&new.action, &new.role, &new.verb, &new.path, &new.topic],
    )
    .await?;
    Ok(from_row(&row))
}

/// Inserts unless an identical (role, verb, path, action) row exists; true when inserted.
pub async fn insert_if_missing<C: Db>(c: &C, new: &NewPermission<'_>) -> Result<bool, StoreError> {
    let n = execute(
        c,
        "INSERT INTO permissions (action, role, verb, path, topic)
         SELECT upper($1::varchar), $2::varchar, upper($3::varchar), $4::varchar, $5::varchar
         WHERE NOT EXISTS (SELECT 1 FROM permissions
                           WHERE role = $2::varchar AND verb = upper($3::varchar)
                             AND path = $4::varchar AND action = upper($1::varchar))",
        &[&new.action, &new.role, &new.verb, &new.path, &new.topic],
    )
    .await?;
    Ok(n == 1)
}

/// Replaces every column but the id (`action` and `verb` upper-cased); returns the row as
/// stored, or `None` when there is no such row.
pub async fn update<C: Db>(
    c: &C,
    id: i64,
    new: &NewPermission<'_>,
) -> Result<Option<PermissionRow>, StoreError> {
    let sql = format!(
        "UPDATE permissions SET action = upper($2), role = $3, verb = upper($4), path = $5,
                                topic = $6, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    Ok(query_opt(
        c,
        &sql,
        &[
            &id,
            &new.action,
            &new.role,
            &new.verb,
            &new.path,
            &new.topic,
        ],
    )
    .await?
    .as_ref()
    .map(from_row))
}

/// Deletes the row; returns it as it was, or `None` when there was none.
pub async fn delete<C: Db>(c: &C, id: i64) -> Result<Option<PermissionRow>, StoreError> {
    let sql = format!("DELETE FROM permissions WHERE id = $1 RETURNING {COLUMNS}");
    Ok(query_opt(c, &sql, &[&id]).await?.as_ref().map(from_row))
}
