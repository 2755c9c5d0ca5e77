//! `levels`: the ladder of key:value labels that raises an account's level (Barong §10).

use super::{Db, StoreError, execute, query};

/// Every level as (id, key, value), ordered by id.
pub async fn all<C: Db>(c: &C) -> Result<Vec<(i32, String, String)>, StoreError> {
    let rows = query(c, "SELECT id, key, value FROM levels ORDER BY id", &[]).await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// The key:value labels of levels 1..=`level`, in order: what an account created at `level`
/// holds.
pub async fn up_to<C: Db>(c: &C, level: i32) -> Result<Vec<(String, String)>, StoreError> {
    let rows = query(
        c,
        "SELECT key, value FROM levels WHERE id <= $1 ORDER BY id",
        &[&level],
    )
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Inserts level `id` unless it exists (an existing level is left as it is); true when
/// inserted.
pub async fn insert_if_missing<C: Db>(
    c: &C,
    id: i32,
    key: &str,
    value: &str,
    description: Option<&str>,
) -> Result<bool, StoreError> {
    let inserted = execute(
        c,
        "INSERT INTO levels (id, key, value, description) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING",
        &[&id, &key, &value, &description],
    )
    .await?;
    Ok(inserted > 0)
}
