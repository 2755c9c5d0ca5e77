//! `POST /resource/data_storage`: a user's named JSON records (Barong §8.9), under the titles
//! `users.storage_titles` allows (decisions.md #24: Barong allows none by default). Storing one
//! sets the private label `<title>: recorded`.

use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::post;
use http::StatusCode;
use serde_json::json;

use super::{CurrentUser, ResourceState};
use crate::api::entities::{DataStorage, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::common;
use crate::api::params::Params;
use crate::routes::{Base, Doc, Endpoint, Guard, In, param, reply, returns};
use crate::store::{StoreError, labels, users};

/// Titles that would collide with the system's own labels.
const RESERVED: &[&str] = &["document", "label", "profile", "phone", "user"];
/// Barong's limit on the stored JSON text.
const MAX_DATA: usize = 5120;

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
{
    vec![Endpoint {
        doc: Doc {
            method: "POST",
            base: Base::Mount,
            path: "resource/data_storage",
            tag: "resource",
            summary: "Create data storage",
            params: const {
                &[
                    param("title", In::Body, true, "One of users.storage_titles"),
                    param(
                        "data",
                        In::Body,
                        true,
                        "A JSON text of up to 5120 characters",
                    ),
                ]
            },
            responses: const {
                &[
                    returns::<DataStorage>(
                        201,
                        "Stored; the private label <title>: recorded is set",
                    ),
                    reply(401, "jwt.decode_and_verify, authz.*"),
                    reply(
                        422,
                        "resource.data_storage.missing_title, empty_title, missing_data, empty_data, title.inclusion, title.exclusion, title.taken, data.invalid_format, data.too_long",
                    ),
                ]
            },
        },
        guard: Guard::Subject,
        handler: post(create),
    }]
}

/// The model checks, every code collected.
fn check(title: &str, data: &str, allowed: &[String]) -> ApiResult<()> {
    let mut codes = Vec::new();
    let lower = title.to_lowercase();
    if RESERVED.contains(&lower.as_str()) {
        codes.push("title.exclusion".to_string());
    } else if !allowed.iter().any(|t| t.eq_ignore_ascii_case(title)) {
        codes.push("title.inclusion".to_string());
    }
    if data.chars().count() > MAX_DATA {
        codes.push("data.too_long".to_string());
    } else if serde_json::from_str::<serde_json::Value>(data).is_err() {
        codes.push("data.invalid_format".to_string());
    }
    ApiError::unprocessable_all(codes)
}

async fn create(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    params: Params,
) -> ApiResult<Response> {
    let values = common::require(&params, "resource.data_storage", &["title", "data"], false)?;
    let (title, data) = (values[0].trim().to_string(), &values[1]);
    check(&title, data, &app.settings.users.storage_titles)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let stored = match users::insert_data_storage(&tx, user.id, &title, data).await {
        Err(StoreError::Conflict(_)) => return Err(ApiError::unprocessable("title.taken")),
        other => other?,
    };
    let key = title.to_lowercase();
    let change = labels::set(
        &tx,
        &app.settings.users,
        user.id,
        &key,
        "recorded",
        "private",
    )
    .await?;
    app.events.label_changed(&tx, &change).await?;
    let record = json!({ "record": {
        "user": crate::events::user_record_of(&tx, &change.user).await?,
        "title": stored.title,
        "data": stored.data,
        "created_at": crate::domain::time::iso(stored.created_at),
        "updated_at": crate::domain::time::iso(stored.updated_at),
    }});
    app.events
        .emit(&tx, "model.data_storage.created", &record)
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    Ok(entity(StatusCode::CREATED, DataStorage::from(&stored)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_data_follow_the_model_rules() {
        let allowed = vec!["personal".to_string()];
        assert!(check("Personal", "{}", &allowed).is_ok());
        let codes = |title: &str, data: &str| check(title, data, &allowed).unwrap_err().codes;
        assert_eq!(codes("phone", "{}"), ["title.exclusion"]);
        assert_eq!(codes("secrets", "{}"), ["title.inclusion"]);
        assert_eq!(codes("personal", "{nope"), ["data.invalid_format"]);
        let long = format!("\"{}\"", "x".repeat(MAX_DATA));
        assert_eq!(
            codes("secrets", &long),
            ["title.inclusion", "data.too_long"]
        );
    }
}
