//! `GET /admin/abilities`: the caller role's abilities (Barong §9.3), with no ability check of
//! its own, so that an admin front end can show what its user may do.

use axum::extract::FromRef;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{AdminState, Staff, doc};
use crate::api::error::ApiResult;
use crate::routes::{Endpoint, Guard, reply};

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
{
    vec![Endpoint {
        doc: doc(
            "GET",
            "admin/abilities",
            "Get the abilities of the caller's role",
            &[],
            const {
                &[
                    reply(
                        200,
                        "{\"read\":[models],\"manage\":[models]}, {} for a role without abilities",
                    ),
                    reply(401, "jwt.decode_and_verify, authz.*"),
                ]
            },
        ),
        guard: Guard::Subject,
        handler: get(abilities),
    }]
}

async fn abilities(staff: Staff) -> ApiResult<Response> {
    Ok(axum::Json(staff.abilities).into_response())
}
