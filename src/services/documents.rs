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

/// The KYC worker's view of the uploads (`services::kyc::DocumentFiles`): a batch's rows with
/// their numbers opened and their files read from the storage.
pub struct StoredDocumentFiles {
    pub store: Store,
    pub uploads: Uploads,
    pub secrets: std::sync::Arc<crate::crypto::SecretBox>,
}

impl crate::services::kyc::DocumentFiles for StoredDocumentFiles {
    async fn batch(
        &self,
        user_id: i64,
        identificator: &str,
    ) -> Result<Vec<crate::services::kyc::DocumentFile>, String> {
        let rows = {
            let client = self.store.client().await.map_err(|e| e.to_string())?;
            documents::batch(&client, user_id, identificator)
                .await
                .map_err(|e| e.to_string())?
        };
        let mut files = Vec::with_capacity(rows.len());
        for row in rows {
            let kind = extension_of(&row.upload)
                .as_deref()
                .and_then(FileKind::from_extension)
                .ok_or_else(|| format!("document {} has no known file type", row.id))?;
            // A file missing from the storage is an error, not an empty batch: the job waits
            // (a storage being restored) rather than send KYCAID half a batch.
            let bytes = self
                .uploads
                .get_bytes(&row.upload)
                .await
                .map_err(|e| format!("document {}: {e:?}", row.id))?
                .ok_or_else(|| format!("document {}: file missing from storage", row.id))?;
            let doc_number = row.doc_number_encrypted.as_deref().and_then(|sealed| {
                self.secrets
                    .open_string(crate::domain::profile::contexts::DOC_NUMBER, sealed)
                    .ok()
            });
            // Sealed by `POST /addresses` as `{country, address, city, postcode}`.
            let address = row.address_encrypted.as_deref().and_then(|sealed| {
                let opened = self
                    .secrets
                    .open(crate::domain::profile::contexts::DOC_ADDRESS, sealed)
                    .ok()?;
                serde_json::from_slice(&opened).ok()
            });
            files.push(crate::services::kyc::DocumentFile {
                doc_type: row.doc_type.clone(),
                doc_number,
                doc_expire: row.doc_expire.map(|d| d.to_string()),
                doc_category: row.doc_category.clone(),
                file_name: format!("{}.{}", row.id, kind.extension()),
                content_type: kind.content_type().to_string(),
                bytes: bytes.to_vec(),
                address,
            });
        }
        Ok(files)
    }
}
