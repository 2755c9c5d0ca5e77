//! The `restrictions` table: whitelist, maintenance, blacklist, blocklogin by scope.

use tokio_postgres::Row;

use time::OffsetDateTime;

use super::{Db, StoreError, execute, query, query_one, query_opt};
use crate::domain::policy::Draft;
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

impl<'a> From<&Draft<'a>> for NewRestriction<'a> {
    /// A checked draft as stored: its value trimmed and its code resolved.
    fn from(draft: &Draft<'a>) -> NewRestriction<'a> {
        NewRestriction {
            category: draft.category,
            scope: draft.scope,
            value: draft.value.trim(),
            code: draft.stored_code(),
            state: draft.state,
        }
    }
}

/// Which restrictions a listing shows (Barong's admin filters; `None` is no filter).
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub category: Option<&'a str>,
    pub scope: Option<&'a str>,
    /// Compare `updated_at` instead of `created_at`.
    pub by_update: bool,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// One page of the rows `filter` selects, by id, and how many it selects in all.
pub async fn page<C: Db>(
    c: &C,
    filter: &Filter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<RestrictionRow>, i64), StoreError> {
    // The column name is one of two literals, never input.
    let at = if filter.by_update {
        "updated_at"
    } else {
        "created_at"
    };
    let conditions = format!(
        "($1::varchar IS NULL OR category = $1) AND ($2::varchar IS NULL OR scope = $2)
         AND ($3::timestamptz IS NULL OR {at} >= $3) AND ($4::timestamptz IS NULL OR {at} <= $4)"
    );
    let args: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
        [&filter.category, &filter.scope, &filter.from, &filter.to];
    let total: i64 = query_one(
        c,
        &format!("SELECT count(*) FROM restrictions WHERE {conditions}"),
        &args,
    )
    .await?
    .get(0);
    let sql = format!(
        "SELECT {COLUMNS} FROM restrictions WHERE {conditions} ORDER BY id LIMIT $5 OFFSET $6"
    );
    let rows = query(
        c,
        &sql,
        &[args[0], args[1], args[2], args[3], &limit, &offset],
    )
    .await?;
    Ok((rows.iter().map(from_row).collect(), total))
}

pub async fn insert<C: Db>(c: &C, new: &NewRestriction<'_>) -> Result<RestrictionRow, StoreError> {
    let sql = format!(
        "INSERT INTO restrictions (category, scope, value, code, state)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    );
    let row = query_one(
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

/// Deletes the row; returns it as it was, or `None` when there was none.
pub async fn delete<C: Db>(c: &C, id: i64) -> Result<Option<RestrictionRow>, StoreError> {
    let sql = format!("DELETE FROM restrictions WHERE id = $1 RETURNING {COLUMNS}");
    Ok(query_opt(c, &sql, &[&id]).await?.as_ref().map(from_row))
}
