//! `/resource/labels`: the user's labels (Barong §8.2). Users read every label of theirs and
//! manage the public ones; private labels (set by admins and by the system: email, phone,
//! profile, document, otp …) are refused with 400 `resource.labels.private`.

use axum::extract::{FromRef, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use http::StatusCode;

use super::{CurrentUser, ResourceState};
use crate::api::entities::{Label, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::common;
use crate::api::params::Params;
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns, returns_list};
use crate::store::{StoreError, labels, users};

const PUBLIC: &str = "public";
const PRIVATE: &str = "private";

const KEY_VALUE: &[Param] = &[
    param(
        "key",
        In::Body,
        true,
        "Label key: 3 to 255 of a-z, 0-9, _ and -",
    ),
    param(
        "value",
        In::Body,
        true,
        "Label value: 3 to 255 of a-z, 0-9, _ and -",
    ),
];

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
{
    let by_key = "resource/labels/{key}";
    vec![
        Endpoint {
            doc: super::doc(
                "GET",
                "resource/labels",
                "List all labels for current user",
                const {
                    &[param("ordering", In::Query, false, "By creation time")
                        .one_of(&["asc", "desc"])]
                },
                const {
                    &[
                        returns_list::<Label>(200, "Public and private labels"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(422, "resource.labels.invalid_ordering"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(list),
        },
        Endpoint {
            doc: super::doc(
                "POST",
                "resource/labels",
                "Create a public label for current user",
                KEY_VALUE,
                const {
                    &[
                        returns::<Label>(201, "The new public label"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            422,
                            "resource.label.missing_key, empty_key, missing_value, empty_value, key.too_short, key.too_long, key.invalid, key.taken, value.too_short, value.too_long, value.invalid",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(create),
        },
        Endpoint {
            doc: super::doc(
                "GET",
                by_key,
                "Return a label by key",
                const { &[param("key", In::Path, true, "Label key")] },
                const {
                    &[
                        returns::<Label>(200, "The first label with that key, in any scope"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(404, "record.not_found"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(one),
        },
        Endpoint {
            doc: super::doc(
                "PATCH",
                by_key,
                "Update a public label's value",
                const {
                    &[
                        param("key", In::Path, true, "Label key"),
                        param("value", In::Body, true, "Label value"),
                    ]
                },
                const {
                    &[
                        returns::<Label>(200, "The label, with the new value"),
                        reply(400, "resource.labels.private"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(404, "record.not_found"),
                        reply(422, "resource.label.missing_value, empty_value, value.*"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: patch(update),
        },
        Endpoint {
            doc: super::doc(
                "DELETE",
                by_key,
                "Delete a public label",
                const { &[param("key", In::Path, true, "Label key")] },
                const {
                    &[
                        reply(204, "Deleted"),
                        reply(400, "resource.labels.private"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(404, "record.not_found"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: delete(remove),
        },
    ]
}

/// Lower-cased and squished, as Barong's model normalises keys and values before validating.
pub(crate) fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The model checks of a key or value: `<attr>.too_short`, `too_long`, `invalid`.
pub(crate) fn check(attr: &str, text: &str, codes: &mut Vec<String>) {
    let length = text.chars().count();
    if length < 3 {
        codes.push(format!("{attr}.too_short"));
    } else if length > 255 {
        codes.push(format!("{attr}.too_long"));
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        codes.push(format!("{attr}.invalid"));
    }
}

async fn list(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    params: Params,
) -> ApiResult<Response> {
    let descending = match params.text("ordering").as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::unprocessable("resource.labels.invalid_ordering")),
    };
    let client = app.store.client().await?;
    let mut rows = users::labels(&client, user.id).await?;
    rows.sort_by_key(|row| row.created_at);
    if descending {
        rows.reverse();
    }
    let body: Vec<Label> = rows.iter().map(Label::from).collect();
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

async fn one(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    let client = app.store.client().await?;
    let rows = users::labels(&client, user.id).await?;
    let row = rows
        .iter()
        .find(|row| row.key == key)
        .ok_or_else(|| ApiError::not_found("record.not_found"))?;
    Ok(entity(StatusCode::OK, Label::from(row)))
}

async fn create(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    params: Params,
) -> ApiResult<Response> {
    let values = common::require(&params, "resource.label", &["key", "value"], false)?;
    let (key, value) = (normalise(&values[0]), normalise(&values[1]));
    let mut codes = Vec::new();
    check("key", &key, &mut codes);
    check("value", &value, &mut codes);
    ApiError::unprocessable_all(codes)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let change = match labels::insert(&tx, &app.settings.users, user.id, &key, &value, PUBLIC).await
    {
        Err(StoreError::Conflict(_)) => return Err(ApiError::unprocessable("key.taken")),
        other => other?,
    };
    app.events.label_changed(&tx, &change).await?;
    let rows = users::labels(&tx, user.id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    let row = rows
        .iter()
        .find(|row| row.key == key && row.scope == PUBLIC)
        .ok_or_else(ApiError::internal)?;
    Ok(entity(StatusCode::CREATED, Label::from(row)))
}

/// The user's label `key` in the public scope, or the refusal Barong gives: private → 400
/// `resource.labels.private`, none → 404 `record.not_found`.
async fn public_label<C: crate::store::Db>(
    c: &C,
    user_id: i64,
    key: &str,
) -> ApiResult<users::LabelRow> {
    let rows = users::labels(c, user_id).await?;
    let Some(first) = rows.iter().find(|row| row.key == key) else {
        return Err(ApiError::not_found("record.not_found"));
    };
    if first.scope == PRIVATE {
        return Err(ApiError::bad_request("resource.labels.private"));
    }
    Ok(first.clone())
}

async fn update(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    Path(key): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let value =
        normalise(&common::require(&params, "resource.label", &["value"], false)?.remove(0));
    let mut codes = Vec::new();
    check("value", &value, &mut codes);
    ApiError::unprocessable_all(codes)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    public_label(&tx, user.id, &key).await?;
    let change = labels::set(&tx, &app.settings.users, user.id, &key, &value, PUBLIC).await?;
    app.events.label_changed(&tx, &change).await?;
    let row = public_label(&tx, user.id, &key).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    Ok(entity(StatusCode::OK, Label::from(&row)))
}

async fn remove(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    public_label(&tx, user.id, &key).await?;
    labels::remove(&tx, &app.settings.users, user.id, &key, PUBLIC).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    Ok(StatusCode::NO_CONTENT.into_response())
}
