//! `/resource`: what an identified user does with their own account (Barong §8). Every route
//! sits behind the subject guard (`api::guard::subject`): a Bearer token we minted, or the
//! gate's own decision on a session (with CSRF) or an API key.

pub mod api_keys;
pub mod data_storage;
pub mod documents;
pub mod labels;
pub mod otp;
pub mod phones;
pub mod profiles;
pub mod service_accounts;
pub mod users;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;

use super::error::ApiError;
use super::guard::Authenticated;
use crate::authn::api_keys::ApiKeyCache;
use crate::authn::passwords::Hasher;
use crate::authn::phones::PhoneProvider;
use crate::authn::rate_limit::RateLimiter;
use crate::authn::sessions::Sessions;
use crate::config::Settings;
use crate::crypto::SecretBox;
use crate::domain::subject::SubjectKind;
use crate::events::Events;
use crate::gate::subjects::Subjects;
use crate::kv::Kv;
use crate::routes::Endpoint;
use crate::store::Store;
use crate::store::users::{UserRow, find_by_uid};

/// What the resource handlers use. Cheap to clone.
#[derive(Clone)]
pub struct ResourceState(Arc<Resource>);

pub struct Resource {
    pub settings: Arc<Settings>,
    pub store: Store,
    /// Where TOTP steps already used are remembered (`authn::totp::verify_and_burn`).
    pub kv: Kv,
    pub sessions: Sessions,
    pub hasher: Hasher,
    pub events: Arc<Events>,
    pub secrets: Arc<SecretBox>,
    /// This node's caches of what the gate decides on: dropped at once after a write here
    /// (other nodes drop theirs on the change notice).
    pub subjects: Arc<Subjects>,
    pub api_keys: Arc<ApiKeyCache>,
    /// Where documents' files live.
    pub uploads: crate::uploads::Uploads,
    /// Shared limits on phone codes sent and tried (`[rate_limits] phone_*`).
    pub rate_limiter: RateLimiter,
    pub phones: Arc<PhoneProvider>,
}

impl Resource {
    /// After a commit that changed the user `uid` or what hangs on it: wake this node's
    /// workers, and forget the cached subject, so that the next decision here reads the user
    /// as committed rather than waiting for the change notice.
    pub fn committed(&self, uid: &str) {
        self.events.ring();
        self.subjects.invalidate(SubjectKind::User, uid);
    }
}

impl ResourceState {
    pub fn new(resource: Resource) -> ResourceState {
        ResourceState(Arc::new(resource))
    }
}

impl std::ops::Deref for ResourceState {
    type Target = Resource;
    fn deref(&self) -> &Resource {
        &self.0
    }
}

/// The user the request is for, as stored now. A token naming nobody (a service account's, or
/// a deleted user's) is Barong's 404 `record.not_found`.
pub struct CurrentUser(pub UserRow);

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    ResourceState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<CurrentUser, ApiError> {
        let Authenticated { uid } = parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("jwt.decode_and_verify"))?;
        let resource = ResourceState::from_ref(state);
        let client = resource.store.client().await?;
        find_by_uid(&client, &uid)
            .await
            .map_err(ApiError::from)?
            .map(CurrentUser)
            .ok_or_else(|| ApiError::not_found("record.not_found"))
    }
}

/// A resource route's documentation: under the mount, tagged `resource`.
pub const fn doc(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    params: &'static [crate::routes::Param],
    responses: &'static [crate::routes::Reply],
) -> crate::routes::Doc {
    crate::routes::Doc {
        method,
        base: crate::routes::Base::Mount,
        path,
        tag: "resource",
        summary,
        params,
        responses,
    }
}

/// Every resource route, for any router state the resource state comes from.
pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
    crate::api::identity::IdentityState: FromRef<S>,
{
    let mut all = users::endpoints();
    all.extend(labels::endpoints());
    all.extend(data_storage::endpoints());
    all.extend(service_accounts::endpoints());
    all.extend(otp::endpoints());
    all.extend(api_keys::endpoints());
    all.extend(profiles::endpoints());
    all.extend(documents::endpoints());
    all.extend(phones::endpoints());
    all
}
