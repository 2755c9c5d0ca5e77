//! `GET /admin/users/documents/{id}/upload`: a reviewer downloads a user's document file.
//! Barong hands reviewers a signed storage URL; Portcullis serves the file itself, as it does
//! to the owner (`/resource/documents/{id}/upload`), so storage stays private. Reading
//! documents is the `Document` ability (compliance reads them, support does not).

use axum::extract::{FromRef, Path, State};
use axum::response::Response;
use axum::routing::get;

use super::{AdminState, Staff};
use crate::api::admin::doc;
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::resource::documents::file_response;
use crate::domain::abilities::{Action, models};
use crate::routes::{Endpoint, Guard, In, described, param, reply};

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    vec![Endpoint {
        doc: doc(
            "GET",
            "admin/users/documents/{id}/upload",
            "Returns the file of a user's document",
            const { &[param("id", In::Path, true, "Document id").integer()] },
            const {
                &[
                    described(
                        200,
                        "The file (image/jpeg, image/png or application/pdf), as an attachment",
                    ),
                    reply(
                        401,
                        "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                    ),
                    reply(404, "record.not_found"),
                ]
            },
        ),
        guard: Guard::Subject,
        handler: get(download),
    }]
}

/// The admin path a document's file is served at, under the API's `mount` (what
/// `UserWithKYC` names as `upload`).
pub fn upload_path(mount: &str, id: i64) -> String {
    format!(
        "{}/admin/users/documents/{id}/upload",
        mount.trim_end_matches('/')
    )
}

async fn download(
    State(app): State<AdminState>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    staff.may(Action::Read, models::DOCUMENT)?;
    let not_found = || ApiError::not_found("record.not_found");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let file = crate::services::documents::file(&app.store, &app.uploads, id, None)
        .await?
        .ok_or_else(not_found)?;
    Ok(file_response(file))
}
