//! `DELETE /admin/users/data_storage`: staff drop what a user stored under a title (Barong
//! §9.2), answering the user as a reviewer reads it.

use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::delete;
use http::StatusCode;
use serde_json::json;

use super::entities::UserWithKYC;
use super::{AdminState, PREFIX, Staff, refuse_nul, target};
use crate::api::admin::{Change, doc};
use crate::api::entities::entity;
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::{self, Caller};
use crate::api::params::Params;
use crate::domain::abilities::{Action, models};
use crate::routes::{Endpoint, Guard, In, param, reply, returns};
use crate::store::{StoreError, users};

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    vec![Endpoint {
        doc: doc(
            "DELETE",
            "admin/users/data_storage",
            "Deletes user's data storage record",
            const {
                &[
                    param("uid", In::Query, true, "User uid"),
                    param("title", In::Query, true, "Data storage title"),
                ]
            },
            const {
                &[
                    returns::<UserWithKYC>(200, "The user, without that record"),
                    reply(
                        401,
                        "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                    ),
                    reply(404, "admin.user.doesnt_exist, admin.storage.doesnt_exist"),
                    reply(
                        422,
                        "admin.user.missing_uid, empty_uid, missing_title, empty_title",
                    ),
                ]
            },
        ),
        guard: Guard::Subject,
        handler: delete(remove),
    }]
}

async fn remove(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let values = common::require(&params, PREFIX, &["uid", "title"], false)?;
    staff.may(Action::Destroy, models::USER)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let user = target(&tx, &values[0]).await?;
    let deleted = users::delete_data_storage(&tx, user.id, values[1].trim())
        .await?
        .ok_or_else(|| ApiError::not_found("admin.storage.doesnt_exist"))?;
    let body = UserWithKYC::load(&tx, &app.secrets, &app.settings.api.mount, &user).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.record(
        &staff,
        &caller,
        Change::deleted(
            "data_storages",
            Some(&user.uid),
            json!({ "title": deleted.title, "data": deleted.data }),
        ),
    );
    Ok(entity(StatusCode::OK, body))
}
