//! Information any client may ask for, under both `/identity/…` and `/public/…` as Barong
//! serves them: ping, time, version, configs, password strength; and, under `/public/` only,
//! the Auth0 settings. The KYC provider's callback, also under `/public/`, is `api::kyc`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use serde_json::{Value, json};

use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::common;
use crate::api::params::Params;
use crate::config::CaptchaKind;
use crate::config::Settings;
use crate::domain::password_policy;
use crate::routes::{Base, Doc, Endpoint, Guard, In, param, reply};
use std::sync::Arc;

/// Public routes answer from the settings alone.
pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    Arc<Settings>: axum::extract::FromRef<S>,
{
    let mut all = Vec::new();
    for (tag, prefix) in [("identity", "identity"), ("public", "public")] {
        // The registry wants 'static paths: both prefixes spelled out.
        let paths: [&'static str; 5] = match prefix {
            "identity" => [
                "identity/ping",
                "identity/time",
                "identity/version",
                "identity/configs",
                "identity/password/validate",
            ],
            _ => [
                "public/ping",
                "public/time",
                "public/version",
                "public/configs",
                "public/password/validate",
            ],
        };
        let doc = |method, path, summary, params, responses| Doc {
            method,
            base: Base::Mount,
            path,
            tag,
            summary,
            params,
            responses,
        };
        all.push(Endpoint {
            doc: doc(
                "GET",
                paths[0],
                "Test connectivity",
                &[],
                const { &[reply(200, "{\"ping\":\"pong\"}")] },
            ),
            guard: Guard::Restrictions,
            handler: get(ping),
        });
        all.push(Endpoint {
            doc: doc(
                "GET",
                paths[1],
                "Get server current unix timestamp.",
                &[],
                const { &[reply(200, "{\"time\": <unix seconds>}")] },
            ),
            guard: Guard::Restrictions,
            handler: get(time),
        });
        all.push(Endpoint {
            doc: doc(
                "GET",
                paths[2],
                "Get auth version",
                &[],
                const { &[reply(200, "{git_tag, git_sha, build_date, version}")] },
            ),
            guard: Guard::Restrictions,
            handler: get(version),
        });
        all.push(Endpoint {
            doc: doc(
                "GET",
                paths[3],
                "Get auth configurations",
                &[],
                const { &[reply(200, "{session_expire_time, captcha_type, captcha_id?, phone_verification_type, password_min_entropy, password_regexp}")] },
            ),
            guard: Guard::Restrictions,
            handler: get(configs),
        });
        all.push(Endpoint {
            doc: doc(
                "POST",
                paths[4],
                "Password strength testing",
                const { &[param("password", In::Body, true, "User password")] },
                const {
                    &[
                        reply(201, "{\"entropy\": <bits>}"),
                        reply(
                            422,
                            "<identity|public>.general.missing_password, empty_password",
                        ),
                    ]
                },
            ),
            guard: Guard::Restrictions,
            handler: if prefix == "identity" {
                post(password_validate_identity)
            } else {
                post(password_validate_public)
            },
        });
    }
    all.push(Endpoint {
        doc: Doc {
            method: "GET",
            base: Base::Mount,
            path: "public/configs/auth0",
            tag: "public",
            summary: "Get auth0 configuration",
            params: &[],
            responses: const { &[reply(200, "{\"auth0_domain\", \"auth0_client_id\"}")] },
        },
        guard: Guard::Restrictions,
        handler: get(auth0_configs),
    });
    all
}

async fn ping() -> Response {
    Json(json!({ "ping": "pong" })).into_response()
}

async fn time() -> Response {
    Json(json!({ "time": crate::authn::sessions::now() })).into_response()
}

async fn version() -> Response {
    let epoch: i64 = env!("BUILD_EPOCH").parse().unwrap_or(0);
    let date = time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    Json(json!({
        "git_tag": env!("BUILD_GIT_TAG"),
        "git_sha": env!("BUILD_GIT_SHA"),
        "build_date": date,
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

/// The regexp as Ruby prints a Regexp literal: `(?-mix:...)`.
fn ruby_regexp(source: &str) -> String {
    format!("(?-mix:{source})")
}

async fn configs(State(settings): State<Arc<Settings>>) -> Response {
    let mut body = json!({
        "session_expire_time": settings.session.expire_time.as_secs(),
        "captcha_type": settings.captcha.kind.name(),
        "phone_verification_type": settings.phones.verification,
        "password_min_entropy": settings.password.min_entropy,
        "password_regexp": ruby_regexp(settings.password.regexp.as_str()),
    });
    let captcha_id = match settings.captcha.kind {
        CaptchaKind::Recaptcha => Some(&settings.captcha.recaptcha_site_key),
        CaptchaKind::Geetest => Some(&settings.captcha.geetest_id),
        CaptchaKind::None => None,
    };
    if let Some(id) = captcha_id.filter(|id| !id.is_empty()) {
        body["captcha_id"] = Value::String(id.clone());
    }
    // Barong renders an integer entropy as an integer.
    if settings.password.min_entropy.fract() == 0.0 {
        body["password_min_entropy"] = json!(settings.password.min_entropy as i64);
    }
    Json(body).into_response()
}

async fn password_validate_identity(
    State(settings): State<Arc<Settings>>,
    params: Params,
) -> ApiResult<Response> {
    password_validate(&settings, &params, "identity.general").await
}

async fn password_validate_public(
    State(settings): State<Arc<Settings>>,
    params: Params,
) -> ApiResult<Response> {
    password_validate(&settings, &params, "public.general").await
}

async fn password_validate(
    settings: &Settings,
    params: &Params,
    prefix: &str,
) -> ApiResult<Response> {
    let password = common::require(params, prefix, &["password"], false)?.remove(0);
    let policy = &settings.password;
    let entropy = tokio::task::spawn_blocking({
        let use_dictionary = policy.use_dictionary;
        let threshold = policy.min_entropy;
        move || password_policy::entropy(&password, use_dictionary, threshold)
    })
    .await
    .map_err(|_| ApiError::internal())?;
    Ok((StatusCode::CREATED, Json(json!({ "entropy": entropy }))).into_response())
}

async fn auth0_configs(State(settings): State<Arc<Settings>>) -> Response {
    Json(json!({
        "auth0_domain": settings.auth0.domain.as_deref().unwrap_or_default(),
        "auth0_client_id": settings.auth0.client_id,
    }))
    .into_response()
}
