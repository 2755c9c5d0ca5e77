//! `documents`: a user's KYC documents, one row per uploaded file. `upload` holds the key of
//! the file on object storage (`crate::uploads`); the number is sealed with its keyed index
//! beside it, and a proof of address keeps its address sealed. Read here by the resource API
//! (the owner's own rows), the admin API and the KYC worker (any row, by id or batch).

use time::{Date, OffsetDateTime};
use tokio_postgres::Row;

use super::{Db, StoreError, query, query_one, query_opt};

#[derive(Debug, Clone)]
pub struct DocumentRow {
    pub id: i64,
    pub user_id: i64,
    /// The object's key on the uploads storage.
    pub upload: String,
    pub doc_type: String,
    pub doc_number_encrypted: Option<String>,
    pub doc_expire: Option<Date>,
    pub doc_category: Option<String>,
    pub identificator: Option<String>,
    pub metadata: Option<String>,
    /// The sealed JSON `{country, address, city, postcode}` of a proof of address.
    pub address_encrypted: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A row to write; `upload` is already stored.
#[derive(Debug, Clone)]
pub struct DocumentWrite<'a> {
    pub upload: &'a str,
    pub doc_type: &'a str,
    pub doc_number_encrypted: Option<&'a str>,
    pub doc_number_index: Option<&'a str>,
    pub doc_expire: Option<Date>,
    pub doc_category: Option<&'a str>,
    pub identificator: &'a str,
    pub metadata: Option<&'a str>,
    pub address_encrypted: Option<&'a str>,
}

const COLUMNS: &str = "id, user_id, upload, doc_type, doc_number_encrypted, doc_expire, \
                       doc_category, identificator, metadata, address_encrypted, created_at, \
                       updated_at";

fn from_row(r: &Row) -> DocumentRow {
    DocumentRow {
        id: r.get(0),
        user_id: r.get(1),
        upload: r.get::<_, Option<String>>(2).unwrap_or_default(),
        doc_type: r.get::<_, Option<String>>(3).unwrap_or_default(),
        doc_number_encrypted: r.get(4),
        doc_expire: r.get(5),
        doc_category: r.get(6),
        identificator: r.get(7),
        metadata: r.get(8),
        address_encrypted: r.get(9),
        created_at: r.get(10),
        updated_at: r.get(11),
    }
}

pub async fn insert<C: Db>(
    c: &C,
    user_id: i64,
    doc: &DocumentWrite<'_>,
) -> Result<DocumentRow, StoreError> {
    let sql = format!(
        "INSERT INTO documents (user_id, upload, doc_type, doc_number_encrypted, \
         doc_number_index, doc_expire, doc_category, identificator, metadata, address_encrypted) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
    );
    let row = query_one(
        c,
        &sql,
        &[
            &user_id,
            &doc.upload,
            &doc.doc_type,
            &doc.doc_number_encrypted,
            &doc.doc_number_index,
            &doc.doc_expire,
            &doc.doc_category,
            &doc.identificator,
            &doc.metadata,
            &doc.address_encrypted,
        ],
    )
    .await?;
    Ok(from_row(&row))
}

/// How many documents the user has (Barong's `doc_num_limit` counts them all).
pub async fn count<C: Db>(c: &C, user_id: i64) -> Result<i64, StoreError> {
    let row = query_one(
        c,
        "SELECT count(*) FROM documents WHERE user_id = $1",
        &[&user_id],
    )
    .await?;
    Ok(row.get(0))
}

/// How many files of the type `doc_type` the user's batch `identificator` holds.
pub async fn count_in_batch<C: Db>(
    c: &C,
    user_id: i64,
    identificator: &str,
    doc_type: &str,
) -> Result<i64, StoreError> {
    let row = query_one(
        c,
        "SELECT count(*) FROM documents \
         WHERE user_id = $1 AND identificator = $2 AND doc_type = $3",
        &[&user_id, &identificator, &doc_type],
    )
    .await?;
    Ok(row.get(0))
}

/// The user's documents, oldest first.
pub async fn of_user<C: Db>(c: &C, user_id: i64) -> Result<Vec<DocumentRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE user_id = $1 ORDER BY id");
    Ok(query(c, &sql, &[&user_id])
        .await?
        .iter()
        .map(from_row)
        .collect())
}

/// The document `id` when it is the user's: another user's is as absent as a missing one.
pub async fn find_of_user<C: Db>(
    c: &C,
    user_id: i64,
    id: i64,
) -> Result<Option<DocumentRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE id = $1 AND user_id = $2");
    Ok(query_opt(c, &sql, &[&id, &user_id])
        .await?
        .as_ref()
        .map(from_row))
}

/// Any document by id (the admin API).
pub async fn find<C: Db>(c: &C, id: i64) -> Result<Option<DocumentRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE id = $1");
    Ok(query_opt(c, &sql, &[&id]).await?.as_ref().map(from_row))
}

/// The files of a user's batch, in upload order (the KYC worker sends them).
pub async fn batch<C: Db>(
    c: &C,
    user_id: i64,
    identificator: &str,
) -> Result<Vec<DocumentRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM documents WHERE user_id = $1 AND identificator = $2 ORDER BY id"
    );
    Ok(query(c, &sql, &[&user_id, &identificator])
        .await?
        .iter()
        .map(from_row)
        .collect())
}
