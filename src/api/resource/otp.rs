//! `/resource/otp`: the user turns two-factor authentication on and off (Barong §8.6, with
//! decisions.md #18). Barong kept the secret in Vault's TOTP engine; here it is sealed at rest
//! in `users.otp_secret_encrypted` under `authn::totp::secret_context(uid)`, and codes are
//! checked by `authn::totp` with Vault's parameters (6 digits, 30 s, SHA1, one step of skew),
//! each accepted once. Every refusal after the parameter checks records a failed `otp`
//! activity; every success a succeeded one.

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::{CurrentUser, ResourceState};
use crate::api::entities::entity;
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::identity::common::{self, Caller, reason};
use crate::api::params::Params;
use crate::authn::totp;
use crate::routes::{Base, Doc, Endpoint, Guard, In, Param, described, param, reply, returns};
use crate::store::users::UserRow;
use crate::store::{StoreError, activities, labels, users};

const TOPIC: &str = "otp";
const ALREADY_ENABLED: &str = "resource.otp.already_enabled";
const NOT_ENABLED: &str = "resource.otp.not_enabled";
const INVALID: &str = "resource.otp.invalid";

const CODE: &[Param] = &[param(
    "code",
    In::Body,
    true,
    "Code from the authenticator app",
)];

/// The barcode and the URI it encodes, as Vault's TOTP engine answered them.
#[derive(Debug, Serialize, ToSchema)]
pub struct OtpBarcode {
    /// The `otpauth://` URI as a QR code: a PNG, base64 with padding.
    pub barcode: String,
    /// `otpauth://totp/<issuer>:<email>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
    pub url: String,
}

/// What Barong passed on from Vault when it created the key: front ends read `data.barcode`
/// and `data.url`; the rest of Vault's envelope is kept, empty, for clients that expect it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OtpSecret {
    pub data: OtpBarcode,
    /// Always "".
    pub lease_id: String,
    /// Always 0.
    pub lease_duration: i64,
    /// Always false.
    pub renewable: bool,
    /// Always null.
    pub auth: Option<String>,
    /// Always null.
    pub warnings: Option<Vec<String>>,
    /// Always null.
    pub wrap_info: Option<String>,
}

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    let doc = |path, summary, params, responses| Doc {
        method: "POST",
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
                "resource/otp/generate_qrcode",
                "Generate a new TOTP secret, as a QR code, for an authenticator app",
                &[],
                const {
                    &[
                        returns::<OtpSecret>(
                            201,
                            "A new secret, replacing any earlier one not yet enabled",
                        ),
                        reply(400, "resource.otp.already_enabled"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(generate_qrcode),
        },
        Endpoint {
            doc: doc(
                "resource/otp/enable",
                "Enable 2FA with a code of the secret from generate_qrcode",
                CODE,
                const {
                    &[
                        described(
                            201,
                            "Enabled (body `200`, as Barong's); every other session of the user ends",
                        ),
                        reply(400, "resource.otp.already_enabled"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            422,
                            "resource.otp.missing_code, empty_code, resource.otp.invalid",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(enable),
        },
        Endpoint {
            doc: doc(
                "resource/otp/disable",
                "Disable 2FA; the API keys of the user and of their service accounts become inactive",
                CODE,
                const {
                    &[
                        reply(200, "Disabled"),
                        reply(400, "resource.otp.not_enabled"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            422,
                            "resource.otp.missing_code, empty_code, resource.otp.invalid",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(disable),
        },
        Endpoint {
            doc: doc(
                "resource/otp/verify",
                "Verify a 2FA code (each code is accepted once)",
                CODE,
                const {
                    &[
                        reply(201, "Valid; empty body"),
                        reply(400, "resource.otp.not_enabled (decisions.md #18)"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            422,
                            "resource.otp.missing_code, empty_code, resource.otp.invalid",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(verify),
        },
    ]
}

/// Records the failed attempt at `action`, then refuses with `code`.
async fn refused(
    app: &ResourceState,
    caller: &Caller,
    user: &UserRow,
    action: &str,
    status: StatusCode,
    code: &'static str,
) -> ApiError {
    let activity = caller.activity(user.id, TOPIC, action, "failed", reason(code));
    common::record(&app.store, activity).await;
    ApiError::new(status, code)
}

/// What enable, disable and verify check first, in Barong's order: the `code` parameter
/// (Grape's, no activity), 2FA being off (`enable`) or on (the others), then the code, whose
/// step is burnt so that it is not accepted again.
async fn check_code(
    app: &ResourceState,
    caller: &Caller,
    user: &UserRow,
    params: &Params,
    action: &str,
    enabling: bool,
) -> ApiResult<()> {
    let code = common::require(params, "resource.otp", &["code"], false)?.remove(0);
    if user.otp == enabling {
        let code = if enabling {
            ALREADY_ENABLED
        } else {
            NOT_ENABLED
        };
        return Err(refused(app, caller, user, action, StatusCode::BAD_REQUEST, code).await);
    }
    if common::verify_totp(&app.secrets, &app.kv, user, &code).await? {
        Ok(())
    } else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        Err(refused(app, caller, user, action, status, INVALID).await)
    }
}

async fn generate_qrcode(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    caller: Caller,
) -> ApiResult<Response> {
    const ACTION: &str = "request QR code for 2FA";
    let already_enabled = || {
        refused(
            &app,
            &caller,
            &user,
            ACTION,
            StatusCode::BAD_REQUEST,
            ALREADY_ENABLED,
        )
    };
    if user.otp {
        return Err(already_enabled().await);
    }
    let secret = totp::new_secret();
    let url = totp::otpauth_url(&app.settings.app.name, &user.email, &totp::base32(&secret));
    let barcode = totp::qr_png_base64(&url).map_err(|err| {
        tracing::error!(error = %err, "TOTP barcode not made");
        ApiError::internal()
    })?;
    let sealed = app.secrets.seal(&totp::secret_context(&user.uid), &secret);
    let client = app.store.client().await?;
    // 2FA may have been turned on since the user was read: that secret stays.
    if !users::stage_otp_secret(&client, user.id, &sealed).await? {
        return Err(already_enabled().await);
    }
    let activity = caller.activity(user.id, TOPIC, ACTION, "succeed", None);
    common::record(&app.store, activity).await;
    let body = OtpSecret {
        data: OtpBarcode { barcode, url },
        lease_id: String::new(),
        lease_duration: 0,
        renewable: false,
        auth: None,
        warnings: None,
        wrap_info: None,
    };
    Ok(entity(StatusCode::CREATED, body))
}

/// Barong §8.6: `otp` on, the private label `otp: enabled` (which may move level and state),
/// and every other session of the user ended, so that none outlives the account's new
/// requirement of a second factor.
async fn enable(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    caller: Caller,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    const ACTION: &str = "enable 2FA";
    check_code(&app, &caller, &user, &params, ACTION, true).await?;
    // The code opened this secret, so there is one.
    let sealed = user
        .otp_secret_encrypted
        .as_deref()
        .ok_or_else(ApiError::internal)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let Some(enabled) = users::enable_otp(&tx, user.id, sealed).await? else {
        // Since the code was checked, 2FA was turned on, or a new QR code replaced the secret
        // the code belongs to.
        let now_on = users::find_by_id(&tx, user.id)
            .await?
            .is_some_and(|now| now.otp);
        drop(tx);
        let (status, code) = if now_on {
            (StatusCode::BAD_REQUEST, ALREADY_ENABLED)
        } else {
            (StatusCode::UNPROCESSABLE_ENTITY, INVALID)
        };
        return Err(refused(&app, &caller, &user, ACTION, status, code).await);
    };
    app.events.user_updated(&tx, &user, &enabled).await?;
    let settings = &app.settings.users;
    let change = labels::set(&tx, settings, user.id, "otp", "enabled", "private").await?;
    app.events.label_changed(&tx, &change).await?;
    let activity = caller.activity(user.id, TOPIC, ACTION, "succeed", None);
    activities::insert(&tx, &activity).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    let current = app.sessions.id_from(&headers);
    app.sessions.destroy_all_for(&user.uid, current).await?;
    Ok((StatusCode::CREATED, axum::Json(200)).into_response())
}

/// Barong §8.6: `otp` off (the secret is forgotten too), the `otp` label gone, and every API
/// key of the user and of their service accounts inactive (§3.1: keys need the holder's 2FA).
async fn disable(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    const ACTION: &str = "disable 2FA";
    check_code(&app, &caller, &user, &params, ACTION, false).await?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let Some(disabled) = users::disable_otp(&tx, user.id).await? else {
        // Turned off by another request since the code was checked.
        drop(tx);
        let status = StatusCode::BAD_REQUEST;
        return Err(refused(&app, &caller, &user, ACTION, status, NOT_ENABLED).await);
    };
    app.events.user_updated(&tx, &user, &disabled).await?;
    let settings = &app.settings.users;
    if let Some(after) = labels::remove(&tx, settings, user.id, "otp", "private").await? {
        app.events.user_updated(&tx, &disabled, &after).await?;
    }
    let turned_off = labels::deactivate_api_keys(&tx, user.id).await?;
    let activity = caller.activity(user.id, TOPIC, ACTION, "succeed", None);
    activities::insert(&tx, &activity).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    // This node refuses the keys at once, with the key's own code rather than the user's
    // `disabled_2fa`; the other nodes follow with the change notice.
    turned_off
        .iter()
        .for_each(|kid| app.api_keys.invalidate(kid));
    Ok(StatusCode::OK.into_response())
}

async fn verify(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    const ACTION: &str = "verify 2FA code";
    check_code(&app, &caller, &user, &params, ACTION, false).await?;
    let activity = caller.activity(user.id, TOPIC, ACTION, "succeed", None);
    common::record(&app.store, activity).await;
    Ok(StatusCode::CREATED.into_response())
}
