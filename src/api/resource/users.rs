//! `/resource/users`: the user's own account (Barong §8.1): read it, set its `data`, change
//! the password.

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use http::StatusCode;

use super::{CurrentUser, ResourceState};
use crate::api::entities::{UserWithFullInfo, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::{self, Caller, reason};
use crate::api::params::Params;
use crate::authn::passwords::Verified;
use crate::domain::password_policy;
use crate::routes::{Base, Doc, Endpoint, Guard, In, Param, Reply, param, reply, returns};
use crate::services::passwords::{self, Replacement};
use crate::store::{StoreError, users};

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

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    let doc = |method, path, summary, params, responses| Doc {
        method,
        base: Base::Mount,
        path,
        tag: "resource",
        summary,
        params,
        responses,
    };
    vec![
        Endpoint {
            doc: doc(
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
            doc: doc(
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
            doc: doc(
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
    let body = UserWithFullInfo::load(&tx, &app.secrets, &updated, None).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.events.ring();
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
    app.events.ring();
    let current = app.sessions.id_from(&headers);
    app.sessions.destroy_all_for(&user.uid, current).await?;
    Ok(StatusCode::CREATED.into_response())
}
