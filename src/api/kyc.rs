//! `POST /public/kyc`: the KYC provider's callback (KYCAID's webhook, Barong §7.9).
//!
//! The route is public (KYCAID cannot log in), so everything it accepts is bounded before it
//! is trusted, in this order: callbacks per client network (rate limit), body size (read raw,
//! never past `kyc.callback_max_bytes`), KYCAID's signature over the exact bytes received,
//! then the few identifiers kept (see `domain::kyc`). Only a callback that passes all of them
//! writes a row, and a redelivered one (same `request_id`) is acknowledged without a second.
//! A new callback announcing a completed verification of one of our applicants also queues a
//! `verification` job in the same transaction: the KYC worker (`services::kyc`) fetches the
//! result and applies it.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body as _;

use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::{self, Caller};
use crate::authn::kycaid;
use crate::config::{Kyc, KycProvider};
use crate::domain::kyc::{KycJob, KycaidCallback};
use crate::net::client_ip::network_key;
use crate::routes::{Base, Doc, Endpoint, Guard, In, param, reply};
use crate::store;

const PROVIDER_DISABLED: &str = "public.kyc.provider_disabled";
const NOT_CONFIGURED: &str = "public.kyc.not_configured";
const TOO_MANY: &str = "public.kyc.too_many_attempts";
const BODY_TOO_LARGE: &str = "public.kyc.body_too_large";
const MISSING_SIGNATURE: &str = "public.kyc.missing_signature";
const INVALID_SIGNATURE: &str = "public.kyc.invalid_signature";
const INVALID_PAYLOAD: &str = "public.kyc.invalid_payload";

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    IdentityState: axum::extract::FromRef<S>,
{
    vec![Endpoint {
        doc: Doc {
            method: "POST",
            base: Base::Mount,
            path: "public/kyc",
            tag: "public",
            summary: "KYC callback (KYCAID webhook): the JSON body KYCAID signed, at most \
                      kyc.callback_max_bytes (8 KiB by default); its ids and outcome are recorded \
                      once per request_id, and a completed verification of a known applicant is \
                      fetched and applied to its labels by the KYC worker",
            params: const {
                &[param(
                    "x-data-integrity",
                    In::Header,
                    true,
                    "KYCAID's signature: hex HMAC-SHA512, keyed with the API token, of the \
                     Base64 of the body",
                )]
            },
            responses: const {
                &[
                    reply(200, "Recorded (or already recorded: a redelivery)"),
                    reply(
                        401,
                        "public.kyc.missing_signature, public.kyc.invalid_signature",
                    ),
                    reply(408, "request.timeout"),
                    reply(413, "public.kyc.body_too_large"),
                    reply(
                        422,
                        "public.kyc.provider_disabled (provider local), public.kyc.invalid_payload",
                    ),
                    reply(429, "public.kyc.too_many_attempts (with Retry-After)"),
                    reply(
                        503,
                        "public.kyc.not_configured (no KYCAID token set), server.unavailable",
                    ),
                ]
            },
        },
        guard: Guard::Restrictions,
        handler: post(callback),
    }]
}

/// Counts every outcome (`portcullis_kyc_callbacks_total{outcome}`): a token that does not
/// match KYCAID's shows as a run of `public.kyc.invalid_signature`, and callbacks that never
/// come as none at all.
async fn callback(
    State(app): State<IdentityState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = receive(&app, &caller, &headers, body).await;
    let outcome = match &result {
        Ok(true) => "recorded",
        Ok(false) => "redelivered",
        Err(err) => err.codes.first().map_or("error", String::as_str),
    };
    metrics::counter!("portcullis_kyc_callbacks_total", "outcome" => outcome.to_string())
        .increment(1);
    result
        .map(|_| StatusCode::OK.into_response())
        .into_response()
}

/// Checks and records one callback; true when it was new.
async fn receive(
    app: &IdentityState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<bool> {
    let settings = &app.settings.kyc;
    refuse_unverifiable(settings)?;
    limit_per_network(app, caller).await?;
    let body = read_at_most(body, settings.callback_max_bytes).await?;
    check_signature(settings, headers, &body)?;
    let callback =
        KycaidCallback::parse(&body).map_err(|_| ApiError::unprocessable(INVALID_PAYLOAD))?;
    let mut client = app.store.client().await?;
    let tx = client
        .transaction()
        .await
        .map_err(store::StoreError::from)?;
    let new = store::kyc::record_kycaid_callback(&tx, &callback).await?;
    let queued = new && queue_verification(&tx, &callback).await?;
    tx.commit().await.map_err(store::StoreError::from)?;
    if queued {
        app.events.kyc_wake.notify_one();
    }
    Ok(new)
}

/// A completed verification is fetched and applied by the KYC worker, not here: the callback
/// stays one insert or two, whatever KYCAID's API does. Only the first delivery queues it, and
/// only for an applicant one of our profiles holds (any other is recorded, nothing more).
async fn queue_verification<C: store::Db>(
    c: &C,
    callback: &KycaidCallback,
) -> Result<bool, store::StoreError> {
    let Some(verification_id) = callback.completed_verification() else {
        return Ok(false);
    };
    let Some(user_id) = store::users::user_id_by_applicant(c, &callback.applicant_id).await? else {
        return Ok(false);
    };
    let job = KycJob::Verification {
        verification_id: verification_id.to_owned(),
    };
    store::kyc_jobs::enqueue(c, user_id, &job).await?;
    Ok(true)
}

/// Local KYC takes no callbacks (Barong's answer); KYCAID without its token cannot tell a
/// real callback from a forged one, so it takes none either, and says it is not set up (503:
/// KYCAID retries later, and the callbacks arrive once the token is configured).
fn refuse_unverifiable(settings: &Kyc) -> ApiResult<()> {
    if settings.provider == KycProvider::Local {
        return Err(ApiError::unprocessable(PROVIDER_DISABLED));
    }
    if settings.refuses_every_callback() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            NOT_CONFIGURED,
        ));
    }
    Ok(())
}

/// Counted before the body is read, so a flood costs us one Redis call per request. IPv6
/// clients are counted per /64, which one host usually holds whole.
async fn limit_per_network(app: &IdentityState, caller: &Caller) -> ApiResult<()> {
    common::limit(
        app,
        "kyc_callback",
        &network_key(caller.ip).to_string(),
        app.settings.rate_limits.kyc_callback_per_ip,
        TOO_MANY,
    )
    .await
}

/// The whole body, unless it is or says it is longer than `cap`: then 413 at once, and no
/// more than `cap` bytes were buffered. A body announced too long is not read at all.
async fn read_at_most(body: Body, cap: usize) -> ApiResult<Bytes> {
    let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, BODY_TOO_LARGE);
    if body.size_hint().lower() > cap as u64 {
        return Err(too_large());
    }
    match Limited::new(body, cap).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(too_large()),
        // The body stopped arriving (see `server::bodies`), or the client went away.
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request.timeout",
        )),
    }
}

/// KYCAID's signature of exactly these bytes, or 401.
fn check_signature(settings: &Kyc, headers: &HeaderMap, body: &[u8]) -> ApiResult<()> {
    let Some(signature) = headers.get(kycaid::SIGNATURE_HEADER) else {
        return Err(ApiError::unauthorized(MISSING_SIGNATURE));
    };
    // No token: nothing verifies (the caller refused such callbacks already; fail closed).
    let Some(token) = &settings.kycaid_authorization_token else {
        return Err(ApiError::unauthorized(INVALID_SIGNATURE));
    };
    if kycaid::signature_valid(token.expose(), body, signature.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(INVALID_SIGNATURE))
    }
}
