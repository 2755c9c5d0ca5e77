//! `GET /admin/api_keys`: one account's API keys, without their secrets (Barong §9.3). The
//! listing itself (order, page, headers) is the resource API's, on another holder.

use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::get;

use super::{AdminState, Staff, doc};
use crate::api::entities::ApiKey;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::api::resource::api_keys::{Codes, Holder, LISTING, list_keys};
use crate::domain::abilities::{Action, models};
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns_list};
use crate::store::users::find_by_uid;

/// Barong's codes here: the parameters' from the class (`API::V2::Admin::APIKeys`), the
/// ordering's written by hand.
const CODES: Codes = Codes {
    params: "admin.apikey",
    guard: "api_keys.ordering",
};

const PARAMS: [Param; 5] = [
    param("uid", In::Query, true, "user uniq id"),
    LISTING[0],
    LISTING[1],
    LISTING[2],
    LISTING[3],
];

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
{
    vec![Endpoint {
        doc: doc(
            "GET",
            "admin/api_keys",
            "List all api keys for selected account.",
            &PARAMS,
            const {
                &[
                    returns_list::<ApiKey>(
                        200,
                        "The account's keys, without secrets; headers Total, Page, Per-Page, Link",
                    ),
                    reply(
                        401,
                        "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                    ),
                    reply(404, "admin.user.doesnt_exist"),
                    reply(
                        422,
                        "admin.apikey.missing_uid, api_keys.ordering.invalid_ordering, api_keys.ordering.invalid_attribute, non_integer_page, non_positive_page, non_integer_limit, invalid_limit",
                    ),
                ]
            },
        ),
        guard: Guard::Subject,
        handler: get(list),
    }]
}

async fn list(
    State(app): State<AdminState>,
    staff: Staff,
    uri: http::Uri,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Read, models::API_KEY)?;
    let mut codes = Vec::new();
    let uid = params.filled("uid").unwrap_or_else(|| {
        codes.push(format!("{}.missing_uid", CODES.params));
        String::new()
    });
    let store = app.store.clone();
    let holder = async move {
        let client = store.client().await?;
        let user = find_by_uid(&client, &uid)
            .await?
            .ok_or_else(|| ApiError::not_found("admin.user.doesnt_exist"))?;
        Ok(Holder::user(&user))
    };
    list_keys(&app.store, holder, CODES, codes, &uri, &params).await
}
