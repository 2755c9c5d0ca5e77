//! `GET /admin/levels`: the ladder of labels that raises an account's level (Barong §9.3).

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{AdminState, Staff, doc};
use crate::api::error::ApiResult;
use crate::domain::abilities::{Action, models};
use crate::routes::{Endpoint, Guard, reply};
use crate::store::levels;

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
{
    vec![Endpoint {
        doc: doc(
            "GET",
            "admin/levels",
            "Get every level",
            &[],
            const {
                &[
                    reply(
                        200,
                        "[{\"id\":1,\"key\":\"email\",\"value\":\"verified\"}, …]",
                    ),
                    reply(
                        401,
                        "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                    ),
                ]
            },
        ),
        guard: Guard::Subject,
        handler: get(list),
    }]
}

async fn list(State(app): State<AdminState>, staff: Staff) -> ApiResult<Response> {
    staff.may(Action::Read, models::LEVEL)?;
    let client = app.store.client().await?;
    let body: Vec<_> = levels::all(&client)
        .await?
        .into_iter()
        .map(|(id, key, value)| json!({ "id": id, "key": key, "value": value }))
        .collect();
    Ok(axum::Json(body).into_response())
}
