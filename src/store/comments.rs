//! `comments`: what staff note about a user (Barong's admin comments), each with its author.

use time::OffsetDateTime;
use tokio_postgres::Row;

use super::{Db, StoreError, query, query_opt};

#[derive(Debug, Clone)]
pub struct CommentRow {
    pub id: i64,
    pub user_id: i64,
    pub author_uid: String,
    pub title: String,
    pub data: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, user_id, author_uid, title, data, created_at, updated_at";

fn from_row(r: &Row) -> CommentRow {
    CommentRow {
        id: r.get(0),
        user_id: r.get(1),
        author_uid: r.get(2),
        title: r.get(3),
        data: r.get(4),
        created_at: r.get(5),
        updated_at: r.get(6),
    }
}

/// The user's comments, oldest first.
pub async fn of_user<C: Db>(c: &C, user_id: i64) -> Result<Vec<CommentRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM comments WHERE user_id = $1 ORDER BY id");
    Ok(query(c, &sql, &[&user_id])
        .await?
        .iter()
        .map(from_row)
        .collect())
}

/// The comment `id`, locked for the rest of the transaction.
pub async fn find_for_update<C: Db>(c: &C, id: i64) -> Result<Option<CommentRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM comments WHERE id = $1 FOR UPDATE");
    Ok(query_opt(c, &sql, &[&id]).await?.as_ref().map(from_row))
}

pub async fn insert<C: Db>(
    c: &C,
    user_id: i64,
    author_uid: &str,
    title: &str,
    data: &str,
) -> Result<CommentRow, StoreError> {
    let sql = format!(
        "INSERT INTO comments (user_id, author_uid, title, data) VALUES ($1, $2, $3, $4)
         RETURNING {COLUMNS}"
    );
    let row = super::query_one(c, &sql, &[&user_id, &author_uid, &title, &data]).await?;
    Ok(from_row(&row))
}

/// Replaces the given fields of comment `id`; the others stay.
pub async fn update<C: Db>(
    c: &C,
    id: i64,
    title: Option<&str>,
    data: Option<&str>,
) -> Result<Option<CommentRow>, StoreError> {
    let sql = format!(
        "UPDATE comments SET title = COALESCE($2, title), data = COALESCE($3, data),
             updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    Ok(query_opt(c, &sql, &[&id, &title, &data])
        .await?
        .as_ref()
        .map(from_row))
}

pub async fn delete<C: Db>(c: &C, id: i64) -> Result<Option<CommentRow>, StoreError> {
    let sql = format!("DELETE FROM comments WHERE id = $1 RETURNING {COLUMNS}");
    Ok(query_opt(c, &sql, &[&id]).await?.as_ref().map(from_row))
}
