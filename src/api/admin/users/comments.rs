//! Staff comments on a user: `POST`, `PUT` and `DELETE /admin/users/comments`, each answering
//! the user as a reviewer reads it. Barong checks no ability here; Portcullis does
//! (decisions.md #17): comments change what is kept about a user, so they need to manage User.

use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::{delete, post, put};
use http::StatusCode;
use serde_json::{Value, json};

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
use crate::store::comments::{self, CommentRow};
use crate::store::{StoreError, users};

const TITLE_MAX: usize = 64;
const DATA_MAX: usize = 65_535;

const REFUSED: &str = "jwt.decode_and_verify, authz.*, admin.ability.not_permitted";

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    let path = "admin/users/comments";
    vec![
        Endpoint {
            doc: doc(
                "POST",
                path,
                "Adds a comment to a user",
                const {
                    &[
                        param("uid", In::Body, true, "User uid"),
                        param("title", In::Body, true, "At most 64 characters"),
                        param("data", In::Body, true, "At most 65535 characters"),
                    ]
                },
                const {
                    &[
                        returns::<UserWithKYC>(201, "The user, with the new comment"),
                        reply(401, REFUSED),
                        reply(404, "admin.user.doesnt_exist"),
                        reply(
                            422,
                            "admin.user.missing_uid, empty_uid, missing_title, empty_title, missing_data, empty_data, admin.comments.title_too_long, admin.comments.data_too_long",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(create),
        },
        Endpoint {
            doc: doc(
                "PUT",
                path,
                "Updates a comment",
                const {
                    &[
                        param("id", In::Body, true, "Comment id").integer(),
                        param("title", In::Body, false, "At most 64 characters"),
                        param("data", In::Body, false, "At most 65535 characters"),
                    ]
                },
                const {
                    &[
                        returns::<UserWithKYC>(200, "The user the comment is about"),
                        reply(401, REFUSED),
                        reply(404, "record.not_found"),
                        reply(
                            422,
                            "admin.user.missing_id, empty_id, non_integer_id, empty_title, empty_data, admin.comments.title_too_long, admin.comments.data_too_long",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: put(update),
        },
        Endpoint {
            doc: doc(
                "DELETE",
                path,
                "Deletes a comment",
                const { &[param("id", In::Query, true, "Comment id").integer()] },
                const {
                    &[
                        returns::<UserWithKYC>(200, "The user the comment was about"),
                        reply(401, REFUSED),
                        reply(404, "record.not_found"),
                        reply(422, "admin.user.missing_id, empty_id, non_integer_id"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: delete(remove),
        },
    ]
}

/// The length checks of a title and a body.
fn check_lengths(title: Option<&str>, data: Option<&str>) -> ApiResult<()> {
    let mut codes = Vec::new();
    if title.is_some_and(|t| t.chars().count() > TITLE_MAX) {
        codes.push("admin.comments.title_too_long".to_string());
    }
    if data.is_some_and(|d| d.chars().count() > DATA_MAX) {
        codes.push("admin.comments.data_too_long".to_string());
    }
    ApiError::unprocessable_all(codes)
}

/// An optional text that, when given, must not be blank (`admin.user.empty_<name>`).
fn optional(params: &Params, name: &str) -> ApiResult<Option<String>> {
    match params.text(name) {
        Some(text) if text.trim().is_empty() => {
            Err(ApiError::unprocessable(format!("{PREFIX}.empty_{name}")))
        }
        other => Ok(other),
    }
}

fn read_id(params: &Params) -> ApiResult<i64> {
    let id = common::require(params, PREFIX, &["id"], false)?.remove(0);
    id.trim()
        .parse()
        .map_err(|_| ApiError::unprocessable(format!("{PREFIX}.non_integer_id")))
}

fn comment_record(comment: &CommentRow) -> Value {
    json!({
        "id": comment.id,
        "author_uid": comment.author_uid,
        "title": comment.title,
        "data": comment.data,
    })
}

async fn create(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let values = common::require(&params, PREFIX, &["uid", "title", "data"], false)?;
    check_lengths(Some(&values[1]), Some(&values[2]))?;
    staff.may(Action::Create, models::USER)?;
    let client = app.store.client().await?;
    let user = target(&client, &values[0]).await?;
    let comment =
        comments::insert(&client, user.id, &staff.user.uid, &values[1], &values[2]).await?;
    let body = UserWithKYC::load(&client, &app.secrets, &app.settings.api.mount, &user).await?;
    app.record(
        &staff,
        &caller,
        Change::created("comments", Some(&user.uid), comment_record(&comment)),
    );
    Ok(entity(StatusCode::CREATED, body))
}

async fn update(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let id = read_id(&params)?;
    let title = optional(&params, "title")?;
    let data = optional(&params, "data")?;
    check_lengths(title.as_deref(), data.as_deref())?;
    staff.may(Action::Update, models::USER)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let before = comments::find_for_update(&tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("record.not_found"))?;
    let after = comments::update(&tx, id, title.as_deref(), data.as_deref())
        .await?
        .ok_or_else(|| ApiError::not_found("record.not_found"))?;
    let (uid, body) = answer(&app, &tx, after.user_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.record(
        &staff,
        &caller,
        Change::updated(
            "comments",
            Some(&uid),
            comment_record(&before),
            comment_record(&after),
        ),
    );
    Ok(entity(StatusCode::OK, body))
}

async fn remove(
    State(app): State<AdminState>,
    staff: Staff,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let id = read_id(&params)?;
    staff.may(Action::Destroy, models::USER)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let deleted = comments::delete(&tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("record.not_found"))?;
    let (uid, body) = answer(&app, &tx, deleted.user_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.record(
        &staff,
        &caller,
        Change::deleted("comments", Some(&uid), comment_record(&deleted)),
    );
    Ok(entity(StatusCode::OK, body))
}

/// The user a comment is about, as the answer shows it.
async fn answer<C: crate::store::Db>(
    app: &AdminState,
    c: &C,
    user_id: i64,
) -> ApiResult<(String, UserWithKYC)> {
    let user = users::find_by_id(c, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("record.not_found"))?;
    let body = UserWithKYC::load(c, &app.secrets, &app.settings.api.mount, &user).await?;
    Ok((user.uid, body))
}
