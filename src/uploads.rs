//! Uploaded files (KYC documents) on object storage: a directory by default, any S3-compatible
//! service in production, so that every node sees the same files (`uploads` settings). This
//! module owns the storage and nothing else: `put`, `get`, `delete` by key, and the keys new
//! files get. Which key belongs to which document is the `documents` table's business
//! (`store::documents`); who may read a file is the caller's.
//!
//! It sits beside `store` in the layering (I/O, no HTTP handlers), so the API, the admin API
//! and the KYC worker can all reach it.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::config::{StorageKind, Uploads as Settings};

/// The storage could not do what was asked (down, refused, timed out). Callers answer 503:
/// the request may be retried, nothing was half-written.
#[derive(Debug)]
pub struct UploadError(String);

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "object storage: {}", self.0)
    }
}

impl std::error::Error for UploadError {}

impl From<object_store::Error> for UploadError {
    fn from(err: object_store::Error) -> UploadError {
        // object_store's messages name the path and the service's answer, never credentials.
        UploadError(err.to_string())
    }
}

/// A stored file, as a stream of chunks.
pub struct Object {
    pub size: u64,
    pub chunks: BoxStream<'static, Result<Bytes, UploadError>>,
}

/// The uploads storage. Cheap to clone.
#[derive(Clone)]
pub struct Uploads {
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uploads({})", self.store)
    }
}

impl Uploads {
    /// The storage `settings` name; a local directory is created if missing.
    pub fn new(settings: &Settings) -> anyhow::Result<Uploads> {
        let store: Arc<dyn ObjectStore> = match settings.storage {
            StorageKind::Local => {
                std::fs::create_dir_all(&settings.local_dir).map_err(|e| {
                    anyhow::anyhow!("uploads.local_dir {}: {e}", settings.local_dir.display())
                })?;
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(
                    &settings.local_dir,
                )?)
            }
            StorageKind::Aws => {
                use object_store::aws::AmazonS3Builder;
                use object_store::{BackoffConfig, ClientOptions, RetryConfig};
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&settings.bucket)
                    .with_region(&settings.region)
                    .with_allow_http(settings.allow_http)
                    .with_virtual_hosted_style_request(!settings.path_style)
                    .with_client_options(
                        ClientOptions::new()
                            .with_allow_http(settings.allow_http)
                            .with_timeout(settings.timeout)
                            .with_connect_timeout(std::time::Duration::from_secs(5)),
                    )
                    // A request waits on this: a couple of quick retries, then 503, rather
                    // than object_store's default of ten over three minutes.
                    .with_retry(RetryConfig {
                        backoff: BackoffConfig::default(),
                        max_retries: 2,
                        retry_timeout: settings.timeout,
                    });
                if !settings.endpoint.is_empty() {
                    builder = builder.with_endpoint(&settings.endpoint);
                }
                if !settings.access_key_id.is_empty() {
                    builder = builder.with_access_key_id(&settings.access_key_id);
                }
                if let Some(secret) = &settings.secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose());
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(Uploads { store })
    }

    /// A fresh key for a file of the user `uid`: `documents/<uid>/<32 random hex>.<ext>`.
    /// Nothing the client chose goes in (the extension is one of ours), and the random part
    /// makes it unguessable even to someone who knows the uid.
    pub fn new_key(uid: &str, extension: &'static str) -> String {
        let uid: String = uid.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        format!(
            "documents/{uid}/{}.{extension}",
            crate::crypto::random_hex::<16>()
        )
    }

    fn path(key: &str) -> Result<Path, UploadError> {
        Path::parse(key).map_err(|e| UploadError(e.to_string()))
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), UploadError> {
        self.store
            .put(&Self::path(key)?, PutPayload::from_bytes(bytes))
            .await?;
        Ok(())
    }

    /// The file under `key`; `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Object>, UploadError> {
        match self.store.get(&Self::path(key)?).await {
            Ok(result) => Ok(Some(Object {
                size: result.meta.size,
                chunks: result.into_stream().map_err(UploadError::from).boxed(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The whole file under `key` (the KYC worker sends files whole); `None` when there is
    /// none.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>, UploadError> {
        match self.store.get(&Self::path(key)?).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Deletes the file under `key`; deleting a missing one is no error.
    pub async fn delete(&self, key: &str) -> Result<(), UploadError> {
        match self.store.delete(&Self::path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Deletes each of `keys`, logging (not returning) failures: the clean-up after a write
    /// that did not complete, where an orphan file is a cost, not an error to the client.
    pub async fn delete_quietly(&self, keys: &[String]) {
        for key in keys {
            if let Err(err) = self.delete(key).await {
                tracing::warn!(error = %err, "an orphaned upload could not be deleted");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_no_client_input_and_are_unguessable() {
        let a = Uploads::new_key("ID1234/../x", "png");
        let b = Uploads::new_key("ID1234/../x", "png");
        assert!(
            a.starts_with("documents/ID1234x/") && a.ends_with(".png"),
            "{a}"
        );
        assert_ne!(a, b);
        assert_eq!(a.len(), "documents/ID1234x/".len() + 32 + 4);
        assert!(Uploads::path(&a).is_ok());
    }
}
