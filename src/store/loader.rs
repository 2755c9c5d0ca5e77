//! The gate's loader port ([`SubjectLoader`]) on Postgres: what the per-node subject and key
//! caches read on a miss.

use futures_util::future::BoxFuture;

use super::{Store, StoreError};
use crate::domain::loader::{ApiKeyRecord, LoadError, SubjectLoader};
use crate::domain::subject::{SubjectKind, SubjectRecord};

impl From<StoreError> for LoadError {
    fn from(err: StoreError) -> LoadError {
        LoadError::new(err)
    }
}

impl SubjectLoader for Store {
    fn subject<'a>(
        &'a self,
        kind: SubjectKind,
        uid: &'a str,
    ) -> BoxFuture<'a, Result<Option<SubjectRecord>, LoadError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let record = match kind {
                SubjectKind::User => super::users::find_by_uid(&client, uid)
                    .await?
                    .map(|u| u.subject()),
                SubjectKind::ServiceAccount => {
                    super::service_accounts::subject_by_uid(&client, uid).await?
                }
            };
            Ok(record)
        })
    }

    fn api_key<'a>(
        &'a self,
        kid: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, LoadError>> {
        Box::pin(async move {
            let client = self.client().await?;
            Ok(super::api_keys::find_for_auth(&client, kid).await?)
        })
    }
}
