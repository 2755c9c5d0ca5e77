//! A document's file, found by the document: for its owner (the resource API) or for anyone
//! allowed to see every document (the admin API). The caller decides who may ask; this finds
//! the row and opens the stored object.

use crate::domain::documents::{FileKind, extension_of};
use crate::store::documents::{self, DocumentRow};
use crate::store::{Store, StoreError};
use crate::uploads::{Object, UploadError, Uploads};

/// A document and its file, ready to stream.
pub struct DocumentFile {
    pub document: DocumentRow,
    pub kind: FileKind,
    pub object: Object,
}

#[derive(Debug)]
pub enum FileError {
    Store(StoreError),
    Upload(UploadError),
}

impl From<StoreError> for FileError {
    fn from(err: StoreError) -> FileError {
        FileError::Store(err)
    }
}

impl From<UploadError> for FileError {
    fn from(err: UploadError) -> FileError {
        FileError::Upload(err)
    }
}

/// The file of document `id`; with `owner`, only when the document is that user's. `None`
/// when there is no such document or its file is gone.
pub async fn file(
    store: &Store,
    uploads: &Uploads,
    id: i64,
    owner: Option<i64>,
) -> Result<Option<DocumentFile>, FileError> {
    let client = store.client().await?;
    let document = match owner {
        Some(user_id) => documents::find_of_user(&client, user_id, id).await?,
        None => documents::find(&client, id).await?,
    };
    drop(client);
    let Some(document) = document else {
        return Ok(None);
    };
    // The key's extension is one of ours (`Uploads::new_key`), so it names the type the
    // content was checked against at upload.
    let Some(kind) = extension_of(&document.upload)
        .as_deref()
        .and_then(FileKind::from_extension)
    else {
        return Ok(None);
    };
    Ok(uploads
        .get(&document.upload)
        .await?
        .map(|object| DocumentFile {
            document,
            kind,
            object,
        }))
}
