//! `/resource/users`: the user's own account (Barong §8.1): read it, set its `data`, change
//! the password.

use axum::extract::Path;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use http::StatusCode;
use serde_json::json;

use super::{CurrentUser, ResourceState};
use crate::api::entities::{Activity, UserWithFullInfo, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::{self, Caller, reason};
use crate::api::pagination::{self, Page};
use crate::api::params::Params;
use crate::authn::passwords::Verified;
use crate::domain::password_policy;
use crate::routes::{Endpoint, Guard, In, Param, Reply, param, reply, returns, returns_list};
use crate::services::passwords::{self, Replacement};
use crate::store::activities::{self, Filter};
use crate::store::{StoreError, labels, users};

const ME: &str = "resource/users/me";

const PASSWORD_PARAMS: &[Param] = &[
    param("old_password", In::Body, true, "Previous account password"),
    param("new_password", In::Body, true, "User password"),
    param("confirm_password", In::Body, true, "User password"),
];

const PASSWORD_REPLIES: &[Reply] = &[
    reply(201, "Changed; every other session of the user ends"),
    reply(
        400,
        "resource.password.prev_pass_not_correct, resource.password.no_change_provided",
    ),
    reply(401, "jwt.decode_and_verify, authz.*"),
    reply(
        422,
        "resource.user.missing_old_password, empty_old_password, missing_new_password, empty_new_password, missing_confirm_password, empty_confirm_password, resource.password.doesnt_match, password.requirements, password.weak",
    ),
];

const TOPICS: &[&str] = &["all", "session", "otp", "password", "account"];

const ACTIVITY_PARAMS: &[Param] = &[
    param("topic", In::Path, true, "Topic of the activities").one_of(TOPICS),
    param(
        "time_from",
        In::Query,
        false,
        "From this time (unix seconds)",
    )
    .integer(),
    param(
        "time_to",
        In::Query,
        false,
        "Up to this time (unix seconds)",
    )
    .integer(),
    param("result", In::Query, false, "succeed, failed or denied"),
    pagination::PARAMS[0],
    pagination::PARAMS[1],
];

const ACTIVITY_REPLIES: &[Reply] = &[
    returns_list::<Activity>(200, "Newest first; Total, Page, Per-Page and Link headers"),
    reply(401, "jwt.decode_and_verify, authz.*"),
    reply(
        422,
        "resource.user.wrong_topic, resource.user.no_activity, resource.user.non_integer_time_from, empty_time_from, non_integer_time_to, empty_time_to, empty_result, non_integer_page, non_positive_page, non_integer_limit, invalid_limit",
    ),
];

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    vec![
        Endpoint {
            doc: super::doc(
                "GET",
                ME,
                "Returns current user",
                &[],
                const {
                    &[
                        returns::<UserWithFullInfo>(200, "The user, without csrf_token"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(404, "record.not_found"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(me),
        },
        Endpoint {
            doc: super::doc(
                "PUT",
                ME,
                "Updates current user data field",
                const {
                    &[param(
                        "data",
                        In::Body,
                        true,
                        "Any additional key: value pairs in json string format",
                    )]
                },
                const {
                    &[
                        returns::<UserWithFullInfo>(200, "The user, with the new data"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            422,
                            "resource.user.missing_data, resource.user.empty_data, data.invalid_format",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: put(set_data),
        },
        Endpoint {
            doc: super::doc(
                "DELETE",
                ME,
                "Deletes the current user's account (a private delete label: state deleted)",
                const {
                    &[
                        param("password", In::Body, true, "Account password"),
                        param(
                            "otp_code",
                            In::Body,
                            false,
                            "Code from Google Authenticator, when 2FA is on",
                        ),
                    ]
                },
                const {
                    &[
                        reply(
                            200,
                            "Deleted: the account's state is deleted and its sessions end",
                        ),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            422,
                            "resource.user.missing_password, empty_password, invalid_password, missing_otp_code, empty_otp_code, invalid_otp",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: delete(remove),
        },
        Endpoint {
            doc: super::doc(
                "GET",
                "resource/users/activity/{topic}",
                "Returns user activity",
                ACTIVITY_PARAMS,
                ACTIVITY_REPLIES,
            ),
            guard: Guard::Subject,
            handler: get(activity),
        },
        Endpoint {
            doc: super::doc(
                "PUT",
                "resource/users/password",
                "Sets new account password",
                PASSWORD_PARAMS,
                PASSWORD_REPLIES,
            ),
            guard: Guard::Subject,
            handler: put(change_password),
        },
    ]
}

async fn me(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Response> {
    let client = app.store.client().await?;
    let body = UserWithFullInfo::load(&client, &app.secrets, &user, None).await?;
    Ok(entity(StatusCode::OK, body))
}

async fn set_data(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    params: Params,
) -> ApiResult<Response> {
    let data = common::require(&params, "resource.user", &["data"], false)?.remove(0);
    if serde_json::from_str::<serde_json::Value>(&data).is_err() {
        return Err(ApiError::unprocessable("data.invalid_format"));
    }
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let updated = users::set_data(&tx, user.id, &data).await?;
    app.events.user_data_updated(&tx, &user, &updated).await?;
    let body = UserWithFullInfo::load(&tx, &app.secrets, &updated, None).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    Ok(entity(StatusCode::OK, body))
}

/// Barong §8.1 with decisions.md #13: a changed password ends every other session.
async fn change_password(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    caller: Caller,
    headers: http::HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    let values = common::require(
        &params,
        "resource.user",
        &["old_password", "new_password", "confirm_password"],
        false,
    )?;
    let (old, new, confirm) = (&values[0], &values[1], &values[2]);
    if new != confirm {
        return Err(ApiError::unprocessable("resource.password.doesnt_match"));
    }
    let failed = |code: &'static str| {
        caller.activity(
            user.id,
            "password",
            "password change",
            "failed",
            reason(code),
        )
    };
    if app.hasher.verify(old, Some(&user.password_digest)).await == Verified::No {
        let code = "resource.password.prev_pass_not_correct";
        common::record(&app.store, failed(code)).await;
        return Err(ApiError::bad_request(code));
    }
    if old == new {
        let code = "resource.password.no_change_provided";
        common::record(&app.store, failed(code)).await;
        return Err(ApiError::bad_request(code));
    }
    let policy = &app.settings.password;
    if let Err(code) = password_policy::check(
        new,
        policy.regexp.regex(),
        policy.min_entropy,
        policy.use_dictionary,
    ) {
        common::record(&app.store, failed(code)).await;
        return Err(ApiError::unprocessable(code));
    }
    let digest = app.hasher.hash(new).await;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let replacement = Replacement {
        digest: &digest,
        activity: &caller.activity(user.id, "password", "password change", "succeed", None),
        event: "system.user.password.change",
        domain: &app.settings.app.domain,
    };
    passwords::replace(&tx, &app.events, &user, &replacement).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    let current = app.sessions.id_from(&headers);
    app.sessions.destroy_all_for(&user.uid, current).await?;
    Ok(StatusCode::CREATED.into_response())
}

/// Barong §8.1: the password, and a fresh code when 2FA is on; then the private label
/// `delete: by_user` moves the account to `deleted` (its keys are disabled with it) and every
/// session of the user ends.
async fn remove(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    let password = common::require(&params, "resource.user", &["password"], false)?.remove(0);
    let failed = |code: &'static str| {
        caller.activity(user.id, "account", "delete account", "failed", reason(code))
    };
    if app
        .hasher
        .verify(&password, Some(&user.password_digest))
        .await
        == Verified::No
    {
        let code = "resource.user.invalid_password";
        common::record(&app.store, failed(code)).await;
        return Err(ApiError::unprocessable(code));
    }
    if user.otp {
        let code = common::require(&params, "resource.user", &["otp_code"], false)?.remove(0);
        if !common::verify_totp(&app.secrets, &app.kv, &user, &code).await? {
            let code = "resource.user.invalid_otp";
            common::record(&app.store, failed(code)).await;
            return Err(ApiError::unprocessable(code));
        }
    }
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let change = labels::set(
        &tx,
        &app.settings.users,
        user.id,
        "delete",
        "by_user",
        "private",
    )
    .await?;
    app.events.label_changed(&tx, &change).await?;
    activities::insert(
        &tx,
        &caller.activity(user.id, "account", "delete account", "succeed", None),
    )
    .await?;
    let record =
        json!({ "record": { "user": crate::events::user_record_of(&tx, &change.user).await? } });
    app.events
        .emit(&tx, "system.user.account.deleted", &record)
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    app.sessions.destroy_all_for(&user.uid, None).await?;
    Ok(StatusCode::OK.into_response())
}

/// Barong §8.1: the user's own activities of a topic (`all` for every one), newest first,
/// paginated; none at all is 422 `resource.user.no_activity`.
async fn activity(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    Path(topic): Path<String>,
    uri: http::Uri,
    params: Params,
) -> ApiResult<Response> {
    if !TOPICS.contains(&topic.as_str()) {
        return Err(ApiError::unprocessable("resource.user.wrong_topic"));
    }
    let time_from = params.integer("resource.user", "time_from")?;
    let time_to = params.integer("resource.user", "time_to")?;
    let result = params.text("result");
    if result.as_deref().is_some_and(|r| r.trim().is_empty()) {
        return Err(ApiError::unprocessable("resource.user.empty_result"));
    }
    let page = Page::from_params(&params)?;
    let filter = Filter {
        topic: (topic != "all").then_some(topic.as_str()),
        time_from,
        time_to,
        result: result.as_deref(),
    };
    // A history: a just-written row may lag behind on a replica.
    let client = app.store.reader().await?;
    let (rows, total) =
        activities::of_user(&client, user.id, &filter, page.limit, page.offset()).await?;
    if rows.is_empty() {
        return Err(ApiError::unprocessable("resource.user.no_activity"));
    }
    let body: Vec<Activity> = rows.iter().map(Activity::from).collect();
    Ok((StatusCode::OK, page.headers(total, &uri), axum::Json(body)).into_response())
}
