//! `/admin`: what staff do to other accounts and to the rules (Barong §9). Each request passes
//! two checks, as in Barong: the gate's permissions table on the path (the subject guard, as
//! for `/resource`), then the caller role's abilities (`policies/abilities.toml`, loaded into
//! `admin_abilities`) for the endpoint's model and action: 401 `admin.ability.not_permitted`.
//! The [`Staff`] extractor makes the first check too, for requests with a Bearer token, which
//! the subject guard takes as proof of identity only.

pub mod abilities;
pub mod activities;
pub mod api_keys;
pub mod explain;
pub mod levels;
pub mod metrics;
pub mod permissions;
pub mod profiles;
pub mod restrictions;
pub mod rule_params;
pub mod users;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;

use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::guard::Authenticated;
use super::identity::common::Caller;
use crate::audit::ActivitySink;
use crate::authn::api_keys::ApiKeyCache;
use crate::authn::sessions::Sessions;
use crate::config::Settings;
use crate::crypto::SecretBox;
use crate::domain::abilities::{Abilities, Action};
use crate::domain::subject::SubjectKind;
use crate::events::Events;
use crate::gate::Gate;
use crate::gate::permissions::Verdict;
use crate::gate::subjects::Subjects;
use crate::net::path::public_path;
use crate::routes::Endpoint;
use crate::store::Store;
use crate::store::activities::NewActivity;
use crate::store::users::{UserRow, find_by_uid};

/// What the admin handlers use. Cheap to clone.
#[derive(Clone)]
pub struct AdminState(Arc<Admin>);

pub struct Admin {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub sessions: Sessions,
    pub events: Arc<Events>,
    pub secrets: Arc<SecretBox>,
    /// This node's caches of what the gate decides on, dropped at once after a write here
    /// (other nodes drop theirs on the change notice).
    pub subjects: Arc<Subjects>,
    pub api_keys: Arc<ApiKeyCache>,
    /// Where documents' files live (admins read them back).
    pub uploads: crate::uploads::Uploads,
    /// The admin activity log, written in batches off the request path.
    pub activities: ActivitySink,
    /// The gate: its rules for the permissions check of requests that carry a token, and
    /// its steps for `explain`.
    pub gate: Arc<Gate>,
}

/// A change made through the admin API, as the admin activity log keeps it.
pub struct Change<'a> {
    /// The model changed, Barong's topic (`users`, `permissions`, `restrictions` …).
    pub topic: &'a str,
    /// `create`, `update` or `delete`.
    pub action: &'a str,
    /// The user the change is about, when it is about one.
    pub target_uid: Option<&'a str>,
    /// The row as it was (`null` for a creation) and as it is (`null` for a deletion).
    pub before: Value,
    pub after: Value,
}

impl<'a> Change<'a> {
    /// A row created: nothing before.
    pub fn created(topic: &'a str, target_uid: Option<&'a str>, after: Value) -> Change<'a> {
        Change {
            topic,
            action: "create",
            target_uid,
            before: Value::Null,
            after,
        }
    }

    /// A row changed from `before` to `after`.
    pub fn updated(
        topic: &'a str,
        target_uid: Option<&'a str>,
        before: Value,
        after: Value,
    ) -> Change<'a> {
        Change {
            topic,
            action: "update",
            target_uid,
            before,
            after,
        }
    }

    /// A row deleted: nothing after.
    pub fn deleted(topic: &'a str, target_uid: Option<&'a str>, before: Value) -> Change<'a> {
        Change {
            topic,
            action: "delete",
            target_uid,
            before,
            after: Value::Null,
        }
    }
}

impl Admin {
    /// After a commit that changed the user `uid`: wake this node's workers (events, mail) and
    /// forget the cached subject, so the next decision here reads the user as committed.
    pub fn committed(&self, uid: &str) {
        self.events.ring();
        self.subjects.invalidate(SubjectKind::User, uid);
    }

    /// Queues the admin activity of a committed change: who (the staff member, from where),
    /// what, and the row before and after.
    pub fn record(&self, staff: &Staff, caller: &Caller, change: Change<'_>) {
        self.activities.record(NewActivity {
            user_id: Some(staff.user.id),
            target_uid: change.target_uid.map(str::to_string),
            category: "admin",
            user_ip: caller.ip.to_string(),
            user_ip_country: caller.country.clone(),
            user_agent: caller.user_agent.clone(),
            topic: change.topic.to_string(),
            action: change.action.to_string(),
            result: "succeed",
            data: Some(json!({ "before": change.before, "after": change.after }).to_string()),
        });
    }
}

impl AdminState {
    pub fn new(admin: Admin) -> AdminState {
        AdminState(Arc::new(admin))
    }
}

impl std::ops::Deref for AdminState {
    type Target = Admin;
    fn deref(&self) -> &Admin {
        &self.0
    }
}

/// The staff member calling, as stored now, with their role's abilities.
pub struct Staff {
    pub user: UserRow,
    pub abilities: Abilities,
}

impl Staff {
    /// Barong's CanCan check: 401 `admin.ability.not_permitted` unless the role may.
    pub fn may(&self, action: Action, model: &str) -> ApiResult<()> {
        if self.abilities.can(action, model) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("admin.ability.not_permitted"))
        }
    }

    pub fn is_superadmin(&self) -> bool {
        self.user.role == "superadmin"
    }
}

impl<S> FromRequestParts<S> for Staff
where
    S: Send + Sync,
    AdminState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Staff, ApiError> {
        let Authenticated { uid } = parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("jwt.decode_and_verify"))?;
        let admin = AdminState::from_ref(state);
        let client = admin.store.client().await?;
        let user = find_by_uid(&client, &uid)
            .await?
            .ok_or_else(|| ApiError::not_found("record.not_found"))?;
        // The first check, again here: a Bearer token proves who the caller is, but it may
        // have been minted for another path (Envoy decides per request), so the role's rows
        // for this path decide as they would at the gate. Same rows, same snapshot, no I/O.
        let path = public_path(
            &admin.settings.api.mount,
            &admin.settings.api.public_prefix,
            parts.uri.path(),
        );
        let verdict =
            admin
                .gate
                .policy
                .current()
                .permissions
                .check(&user.role, parts.method.as_str(), &path);
        if verdict == Verdict::Deny {
            return Err(ApiError::unauthorized("authz.invalid_permission"));
        }
        let abilities = crate::store::admin_abilities::for_role(&client, &user.role).await?;
        Ok(Staff { user, abilities })
    }
}

/// An admin route's documentation: under the mount, tagged `admin`.
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
        tag: "admin",
        summary,
        params,
        responses,
    }
}

/// Every admin route, for any router state the admin and identity states come from (the
/// latter for [`Caller`], who made a change).
pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
    super::identity::IdentityState: FromRef<S>,
{
    let mut all = abilities::endpoints();
    all.extend(activities::endpoints());
    all.extend(api_keys::endpoints());
    all.extend(explain::endpoints());
    all.extend(levels::endpoints());
    all.extend(metrics::endpoints());
    all.extend(profiles::endpoints());
    all.extend(permissions::endpoints());
    all.extend(restrictions::endpoints());
    all.extend(users::endpoints());
    all
}
