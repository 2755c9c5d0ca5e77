//! `GET /resource/service_accounts`: the machine identities a user owns (Barong §8.8). Their
//! keys are managed with the owner's TOTP (the `service_accounts/api_keys` routes come with the
//! user's own key management).

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;

use super::{CurrentUser, ResourceState};
use crate::api::entities::ServiceAccount;
use crate::api::error::ApiResult;
use crate::routes::{Base, Doc, Endpoint, Guard, reply, returns_list};
use crate::store::service_accounts;

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
{
    vec![Endpoint {
        doc: Doc {
            method: "GET",
            base: Base::Mount,
            path: "resource/service_accounts",
            tag: "resource",
            summary: "List service accounts of the current user",
            params: &[],
            responses: const {
                &[
                    returns_list::<ServiceAccount>(200, "Oldest first"),
                    reply(401, "jwt.decode_and_verify, authz.*"),
                ]
            },
        },
        guard: Guard::Subject,
        handler: get(list),
    }]
}

async fn list(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Response> {
    let client = app.store.client().await?;
    let rows = service_accounts::owned_by(&client, user.id).await?;
    let body: Vec<ServiceAccount> = rows.iter().map(ServiceAccount::from).collect();
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}
