//! The `api_keys` table. Secrets are stored sealed (see `crypto::SecretBox`), bound to their kid.

use time::OffsetDateTime;
use tokio_postgres::Row;

use super::{Db, StoreError, execute, query, query_one, query_opt};
pub use crate::domain::loader::secret_context;
use crate::domain::loader::{ApiKeyRecord, KeyState};
use crate::domain::subject::SubjectKind;

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: i64,
    pub holder_kind: SubjectKind,
    pub holder_id: i64,
    pub kid: String,
    pub algorithm: String,
    /// JSON array of scope strings.
    pub scope: Vec<String>,
    pub secret_encrypted: String,
    pub state: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, key_holder_account_type, key_holder_account_id, kid, algorithm, scope, \
                       secret_encrypted, state, created_at, updated_at";

fn from_row(row: &Row) -> Result<ApiKeyRow, StoreError> {
    let holder_type: String = row.get(1);
    let holder_kind = SubjectKind::from_holder_type(&holder_type)
        .ok_or_else(|| StoreError::Other(format!("unknown key holder type {holder_type:?}")))?;
    let scope: String = row.get(5);
    Ok(ApiKeyRow {
        id: row.get(0),
        holder_kind,
        holder_id: row.get(2),
        kid: row.get(3),
        algorithm: row.get(4),
        scope: serde_json::from_str(&scope).unwrap_or_default(),
        secret_encrypted: row.get(6),
        state: row.get(7),
        created_at: row.get(8),
        updated_at: row.get(9),
    })
}

pub struct NewApiKey<'a> {
    pub holder_kind: SubjectKind,
    pub holder_id: i64,
    pub kid: &'a str,
    pub algorithm: &'a str,
    pub scope: &'a [String],
    pub secret_encrypted: &'a str,
}

pub async fn insert<C: Db>(c: &C, new: &NewApiKey<'_>) -> Result<ApiKeyRow, StoreError> {
    let sql = format!(
        "INSERT INTO api_keys (key_holder_account_type, key_holder_account_id, kid, algorithm, scope, secret_encrypted)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    );
    let scope = serde_json::to_string(new.scope).expect("strings serialize");
    let row = query_one(
        c,
        &sql,
        &[
            &new.holder_kind.holder_type(),
            &new.holder_id,
            &new.kid,
            &new.algorithm,
            &scope,
            &new.secret_encrypted,
        ],
    )
    .await?;
    from_row(&row)
}

/// A key with its holder's uid, for authentication (what the gate's key cache loads).
pub async fn find_for_auth<C: Db>(c: &C, kid: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
    let row = query_opt(
        c,
        "SELECT k.kid, k.algorithm, k.secret_encrypted, k.state, k.key_holder_account_type,
                COALESCE(u.uid, s.uid)
         FROM api_keys k
         LEFT JOIN users u ON k.key_holder_account_type = 'User' AND u.id = k.key_holder_account_id
         LEFT JOIN service_accounts s
                ON k.key_holder_account_type = 'ServiceAccount' AND s.id = k.key_holder_account_id
         WHERE k.kid = $1",
        &[&kid],
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    let holder_type: String = row.get(4);
    let holder_uid: Option<String> = row.get(5);
    // A key whose holder is gone authenticates nobody.
    let (Some(holder_kind), Some(holder_uid)) =
        (SubjectKind::from_holder_type(&holder_type), holder_uid)
    else {
        return Ok(None);
    };
    Ok(Some(ApiKeyRecord {
        kid: row.get(0),
        algorithm: row.get(1),
        secret_encrypted: row.get(2),
        state: KeyState::parse(row.get(3)),
        holder_kind,
        holder_uid,
    }))
}

/// Barong's `APIKey.new.attributes.keys`: the columns a holder's list may be ordered by. The
/// `ORDER BY` is built from this list only, never from the request.
pub const ORDERABLE: &[&str] = &[
    "id",
    "key_holder_account_id",
    "key_holder_account_type",
    "kid",
    "algorithm",
    "scope",
    "secret_encrypted",
    "state",
    "created_at",
    "updated_at",
];

/// One page of a holder's keys, ordered by `order_by` (one of [`ORDERABLE`], then by id so
/// that pages do not overlap), with the holder's total count.
pub async fn page_for_holder<C: Db>(
    c: &C,
    holder_kind: SubjectKind,
    holder_id: i64,
    order_by: &str,
    descending: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ApiKeyRow>, i64), StoreError> {
    let column = ORDERABLE
        .iter()
        .find(|c| **c == order_by)
        .ok_or_else(|| StoreError::Other(format!("api_keys cannot be ordered by {order_by:?}")))?;
    let direction = if descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys
         WHERE key_holder_account_type = $1 AND key_holder_account_id = $2
         ORDER BY {column} {direction}, id {direction} LIMIT $3 OFFSET $4"
    );
    let holder_type = holder_kind.holder_type();
    let rows = query(c, &sql, &[&holder_type, &holder_id, &limit, &offset]).await?;
    let total: i64 = query_one(
        c,
        "SELECT count(*) FROM api_keys WHERE key_holder_account_type = $1 AND key_holder_account_id = $2",
        &[&holder_type, &holder_id],
    )
    .await?
    .get(0);
    let rows = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    Ok((rows, total))
}

/// The holder's key `kid`; another holder's key is as absent as an unknown one.
pub async fn find_for_holder<C: Db>(
    c: &C,
    holder_kind: SubjectKind,
    holder_id: i64,
    kid: &str,
) -> Result<Option<ApiKeyRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys
         WHERE key_holder_account_type = $1 AND key_holder_account_id = $2 AND kid = $3"
    );
    let row = query_opt(c, &sql, &[&holder_kind.holder_type(), &holder_id, &kid]).await?;
    row.as_ref().map(from_row).transpose()
}

/// Sets the scope and/or the state of key `id` (`None` keeps the stored value). The row's
/// trigger tells every node to drop the cached key.
pub async fn update<C: Db>(
    c: &C,
    id: i64,
    scope: Option<&[String]>,
    state: Option<&str>,
) -> Result<ApiKeyRow, StoreError> {
    let sql = format!(
        "UPDATE api_keys SET scope = COALESCE($2, scope), state = COALESCE($3, state),
                updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let scope = scope.map(|s| serde_json::to_string(s).expect("strings serialize"));
    let row = query_one(c, &sql, &[&id, &scope, &state]).await?;
    from_row(&row)
}

/// Deletes key `id`; the row's trigger tells every node to drop the cached key.
pub async fn delete<C: Db>(c: &C, id: i64) -> Result<(), StoreError> {
    execute(c, "DELETE FROM api_keys WHERE id = $1", &[&id]).await?;
    Ok(())
}
