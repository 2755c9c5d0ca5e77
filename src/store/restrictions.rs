//! The `restrictions` table: whitelist, maintenance, blacklist, blocklogin by scope.

use tokio_postgres::Row;

use super::{Db, StoreError, execute, query, query_opt};
pub use crate::domain::policy::RestrictionRow;

const COLUMNS: &str = "id, category, scope, value, code, state, created_at, updated_at";

fn from_row(row: &Row) -> RestrictionRow {
    RestrictionRow {
        id: row.get(0),
        category: row.get(1),
        scope: row.get(2),
        value: row.get(3),
        code: row.get(4),
        state: row.get(5),
        created_at: row.get(6),
        updated_at: row.get(7),
    }
}

pub async fn all<C: Db>(c: &C) -> Result<Vec<RestrictionRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM restrictions ORDER BY id");
    Ok(query(c, &sql, &[]).await?.iter().map(from_row).collect())
}

pub async fn find<C: Db>(c: &C, id: i64) -> Result<Option<RestrictionRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM restrictions WHERE id = $1");
    Ok(query_opt(c, &sql, &[&id]).await?.as_ref().map(from_row))
}

pub struct NewRestriction<'a> {
    pub category: &'a str,
    pub scope: &'a str,
    pub value: &'a str,
    pub code: i32,
    pub state: &'a str,
}

pub async fn insert<C: Db>(c: &C, new: &NewRestriction<'_>) -> Result<RestrictionRow, StoreError> {
    let sql = format!(
        "INSERT INTO restrictions (category, scope, value, code, state)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    );
    let row = super::query_one(
        c,
        &sql,
        &[&new.category, &new.scope, &new.value, &new.code, &new.state],
    )
    .await?;
    Ok(from_row(&row))
}

/// Inserts unless a row with the same (category, scope, value) exists; true when inserted.
pub async fn insert_if_missing<C: Db>(c: &C, new: &NewRestriction<'_>) -> Result<bool, StoreError> {
    let n = execute(
        c,
        "INSERT INTO restrictions (category, scope, value, code, state) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (category, scope, value) DO NOTHING",
        &[&new.category, &new.scope, &new.value, &new.code, &new.state],
    )
    .await?;
    Ok(n == 1)
}

/// Replaces every column but the id; returns the row as stored.
pub async fn update<C: Db>(
    c: &C,
    id: i64,
    new: &NewRestriction<'_>,
) -> Result<Option<RestrictionRow>, StoreError> {
    let sql = format!(
        "UPDATE restrictions SET category = $2, scope = $3, value = $4, code = $5, state = $6,
                                 updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    Ok(query_opt(
        c,
        &sql,
        &[
            &id,
            &new.category,
            &new.scope,
            &new.value,
            &new.code,
            &new.state,
        ],
    )
    .await?
    .as_ref()
    .map(from_row))
}

pub async fn delete<C: Db>(c: &C, id: i64) -> Result<bool, StoreError> {
    Ok(execute(c, "DELETE FROM restrictions WHERE id = $1", &[&id]).await? == 1)
}
