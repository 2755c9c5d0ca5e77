//! `/resource/phones`: the user's phone numbers and their verification (Barong §8.5).
//!
//! Numbers are normalised by `domain::phones`, sealed in `phones.number_encrypted`, and found
//! through `number_index`, a keyed blind index (`SecretBox::blind_index`). Codes go out through
//! the configured provider (`authn::phones`). Beyond Barong: a code of ours (`twilio_sms`) is
//! stored only as a keyed digest, expires after `[phones] code_lifetime`, verifies once, and
//! is compared in constant time; sending and trying codes are rate limited per user
//! (`[rate_limits] phone_code_per_account`, `phone_verify_per_account`).
//!
//! A verified phone sets the private label `phone: verified` (level and state follow) and
//! emits `system.phone.verified`, which mails the owner a security notice.

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{CurrentUser, ResourceState};
use crate::api::entities::{Phone, UserWithFullInfo, contexts, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::authn::phones::ProviderError;
use crate::authn::rate_limit::RateVerdict;
use crate::config::{Limit, PhoneVerification};
use crate::domain::phones::PhoneNumber;
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns, returns_list};
use crate::store::users::UserRow;
use crate::store::{StoreError, labels, phones, users};

const PREFIX: &str = "resource.phone";
const INVALID_NUM: &str = "resource.phone.invalid_num";
const NUMBER_EXIST: &str = "resource.phone.number_exist";
const EXISTS: &str = "resource.phone.exists";
const DOESNT_EXIST: &str = "resource.phone.doesnt_exist";
const VERIFICATION_INVALID: &str = "resource.phone.verification_invalid";
const INVALID_CHANNEL: &str = "resource.phone.invalid_channel";
const TOO_MANY: &str = "resource.phone.too_many_attempts";
/// The blind-index context of numbers; codes use [`code_context`].
const NUMBER_INDEX: &str = "phone.number";

const SEND: &[Param] = &[
    param(
        "phone_number",
        In::Body,
        true,
        "International number: digits with the country code; spaces, dashes, brackets and a leading + are ignored",
    ),
    param(
        "channel",
        In::Body,
        false,
        "sms (default) or call (twilio_verify only; twilio_sms always sends an SMS)",
    ),
];

const VERIFY: &[Param] = &[
    param("phone_number", In::Body, true, "The number, as added"),
    param("verification_code", In::Body, true, "The code received"),
];

const SEND_422: &str = "resource.phone.missing_phone_number, empty_phone_number, invalid_channel; provider refusals: num_not_reachable (Twilio 21612), num_not_valid (21614), sms_content_invalid (21618), unsubscribed_recipient (21610), twilio_unexpected";

/// `{"message":"Code was sent successfully via sms"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSent {
    pub message: String,
}

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
{
    vec![
        Endpoint {
            doc: super::doc(
                "GET",
                "resource/phones",
                "Return the phone numbers of the current user",
                &[],
                const {
                    &[
                        returns_list::<Phone>(
                            200,
                            "Oldest first; numbers masked (country code and last 4 digits kept)",
                        ),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(list),
        },
        Endpoint {
            doc: super::doc(
                "POST",
                "resource/phones",
                "Add a phone number and send it a verification code",
                SEND,
                const {
                    &[
                        returns::<CodeSent>(201, "Added; the code was sent (via sms or call)"),
                        reply(
                            400,
                            "resource.phone.invalid_num, number_exist (verified by an account), exists (already yours)",
                        ),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(422, SEND_422),
                        reply(429, "resource.phone.too_many_attempts (see Retry-After)"),
                        reply(
                            503,
                            "resource.phone.verification_unavailable (no Twilio Verify service)",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(create),
        },
        Endpoint {
            doc: super::doc(
                "POST",
                "resource/phones/send_code",
                "Send a new verification code to a phone number of the current user",
                SEND,
                const {
                    &[
                        returns::<CodeSent>(201, "Sent; earlier codes no longer verify"),
                        reply(
                            400,
                            "resource.phone.invalid_num, number_exist (already verified)",
                        ),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(404, "resource.phone.doesnt_exist"),
                        reply(422, SEND_422),
                        reply(429, "resource.phone.too_many_attempts (see Retry-After)"),
                        reply(503, "resource.phone.verification_unavailable"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(send_code),
        },
        Endpoint {
            doc: super::doc(
                "POST",
                "resource/phones/verify",
                "Verify a phone number with the code it received",
                VERIFY,
                const {
                    &[
                        returns::<UserWithFullInfo>(
                            201,
                            "Verified: the private label phone: verified is set",
                        ),
                        reply(
                            400,
                            "resource.phone.invalid_num, number_exist (another account verified it meanwhile)",
                        ),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            404,
                            "resource.phone.doesnt_exist, verification_invalid (wrong, expired or used code)",
                        ),
                        reply(
                            422,
                            "resource.phone.missing_phone_number, empty_phone_number, missing_verification_code, empty_verification_code, twilio_unexpected",
                        ),
                        reply(429, "resource.phone.too_many_attempts (see Retry-After)"),
                        reply(503, "resource.phone.verification_unavailable"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(verify),
        },
    ]
}

/// The parameters' codes (Grape's), all in one 422; then the number, or `invalid_num`.
fn read_number(params: &Params, also: &[&str], channel: bool) -> ApiResult<Vec<String>> {
    let mut codes = Vec::new();
    let mut values = Vec::new();
    for name in std::iter::once(&"phone_number").chain(also) {
        match params.text(name) {
            None => {
                codes.push(format!("{PREFIX}.missing_{name}"));
                codes.push(format!("{PREFIX}.empty_{name}"));
            }
            Some(value) if value.trim().is_empty() => codes.push(format!("{PREFIX}.empty_{name}")),
            Some(value) => values.push(value),
        }
    }
    if channel {
        let chosen = params.text("channel").unwrap_or_else(|| "sms".into());
        if chosen == "sms" || chosen == "call" {
            values.push(chosen);
        } else {
            codes.push(INVALID_CHANNEL.into());
        }
    }
    ApiError::unprocessable_all(codes)?;
    Ok(values)
}

fn parse_number(text: &str) -> ApiResult<PhoneNumber> {
    PhoneNumber::parse(text).ok_or_else(|| ApiError::bad_request(INVALID_NUM))
}

fn index_of(app: &ResourceState, number: &PhoneNumber) -> String {
    app.secrets
        .blind_index(NUMBER_INDEX, number.digits.as_bytes())
}

/// A code's digest is bound to its phone row: a digest copied to another row verifies nothing.
fn code_context(phone_id: i64) -> String {
    format!("phone.code:{phone_id}")
}

async fn limit(app: &ResourceState, name: &str, user: &UserRow, limit: Limit) -> ApiResult<()> {
    match app.rate_limiter.hit(name, &user.uid, limit).await? {
        RateVerdict::Allowed => Ok(()),
        RateVerdict::Limited { retry_after } => Err(ApiError::too_many(TOO_MANY, retry_after)),
    }
}

fn provider_error(err: ProviderError) -> ApiError {
    match err {
        ProviderError::NoService => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.code()),
        _ => ApiError::unprocessable(err.code()),
    }
}

async fn list(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Response> {
    let client = app.store.client().await?;
    let rows = users::phones(&client, user.id).await?;
    let body: Vec<Phone> = rows
        .iter()
        .map(|row| Phone::from_row(row, &app.secrets))
        .collect();
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

async fn create(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    params: Params,
) -> ApiResult<Response> {
    let values = read_number(&params, &[], true)?;
    let (text, channel) = (&values[0], &values[1]);
    // Counted after the number is read (a typo costs nothing) and before anything is looked
    // up: `number_exist` says whether someone verified a number, so probing it is limited too.
    let number = parse_number(text)?;
    limit(
        &app,
        "phone_code",
        &user,
        app.settings.rate_limits.phone_code_per_account,
    )
    .await?;
    let index = index_of(&app, &number);
    let client = app.store.client().await?;
    if phones::verified_anywhere(&client, &index).await? {
        return Err(ApiError::bad_request(NUMBER_EXIST));
    }
    let sealed = app
        .secrets
        .seal(contexts::PHONE_NUMBER, number.digits.as_bytes());
    let id = match phones::insert(&client, user.id, &number.country, &sealed, &index).await {
        Err(StoreError::Conflict(_)) => return Err(ApiError::bad_request(EXISTS)),
        other => other?,
    };
    // The phone stays added when sending fails (as in Barong): send_code tries again.
    send(&app, &client, id, &number, channel).await
}

async fn send_code(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    params: Params,
) -> ApiResult<Response> {
    let values = read_number(&params, &[], true)?;
    let (text, channel) = (&values[0], &values[1]);
    // Counted after the number is read (a typo costs nothing) and before anything is looked
    // up: `number_exist` says whether someone verified a number, so probing it is limited too.
    let number = parse_number(text)?;
    limit(
        &app,
        "phone_code",
        &user,
        app.settings.rate_limits.phone_code_per_account,
    )
    .await?;
    let index = index_of(&app, &number);
    let client = app.store.client().await?;
    if phones::verified_anywhere(&client, &index).await? {
        return Err(ApiError::bad_request(NUMBER_EXIST));
    }
    let phone = phones::owned(&client, user.id, &index)
        .await?
        .ok_or_else(|| ApiError::not_found(DOESNT_EXIST))?;
    send(&app, &client, phone.id, &number, channel).await
}

/// Stores a new code (replacing any earlier one) when the provider checks ours, then sends.
async fn send(
    app: &ResourceState,
    client: &crate::store::Client,
    phone_id: i64,
    number: &PhoneNumber,
    channel: &str,
) -> ApiResult<Response> {
    let code = app.phones.new_code();
    let stored = code.as_ref().map(|code| {
        let digest = app
            .secrets
            .blind_index(&code_context(phone_id), code.as_bytes());
        let expires_at = time::OffsetDateTime::now_utc() + app.settings.phones.code_lifetime;
        (digest, expires_at)
    });
    phones::set_code(
        client,
        phone_id,
        stored.as_ref().map(|(d, at)| (d.as_str(), *at)),
    )
    .await?;
    app.phones
        .send(&number.digits, channel, code.as_deref())
        .await
        .map_err(provider_error)?;
    Ok(entity(
        StatusCode::CREATED,
        CodeSent {
            message: format!("Code was sent successfully via {channel}"),
        },
    ))
}

async fn verify(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    params: Params,
) -> ApiResult<Response> {
    let values = read_number(&params, &["verification_code"], false)?;
    let (text, code) = (&values[0], values[1].trim());
    let number = parse_number(text)?;
    limit(
        &app,
        "phone_verify",
        &user,
        app.settings.rate_limits.phone_verify_per_account,
    )
    .await?;
    let index = index_of(&app, &number);
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let phone = phones::owned(&tx, user.id, &index)
        .await?
        .ok_or_else(|| ApiError::not_found(DOESNT_EXIST))?;
    let accepted = match app.phones.kind() {
        PhoneVerification::Mock => true,
        PhoneVerification::TwilioSms => {
            let digest = app
                .secrets
                .blind_index(&code_context(phone.id), code.as_bytes());
            let fresh = phone
                .code_expires_at
                .is_some_and(|at| at > time::OffsetDateTime::now_utc());
            let same = phone.code_digest.as_deref().is_some_and(|stored| {
                crate::crypto::constant_time_eq(stored.as_bytes(), digest.as_bytes())
            });
            fresh && same
        }
        PhoneVerification::TwilioVerify => app
            .phones
            .check(&number.digits, code)
            .await
            .map_err(provider_error)?,
    };
    if !accepted {
        return Err(ApiError::not_found(VERIFICATION_INVALID));
    }
    match phones::mark_verified(&tx, phone.id).await {
        Err(StoreError::Conflict(_)) => return Err(ApiError::bad_request(NUMBER_EXIST)),
        other => other?,
    };
    let change = labels::set(
        &tx,
        &app.settings.users,
        user.id,
        "phone",
        "verified",
        "private",
    )
    .await?;
    app.events.label_changed(&tx, &change).await?;
    let record = json!({ "record": {
        "user": crate::events::user_record_of(&tx, &change.user).await?,
        "phone": {
            "country": number.country,
            "number": number.masked(),
            "last_digits": number.last_digits(),
        },
    }});
    app.events
        .emit(&tx, "system.phone.verified", &record)
        .await?;
    let body = UserWithFullInfo::load(&tx, &app.secrets, &change.user, None).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    Ok(entity(StatusCode::CREATED, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let mut p = Params::default();
        for (k, v) in pairs {
            p.0.insert(k.to_string(), serde_json::Value::String(v.to_string()));
        }
        p
    }

    #[test]
    fn parameter_codes_are_collected_in_one_answer() {
        let codes = |p: &[(&str, &str)], also: &[&str], channel| {
            read_number(&params(p), also, channel).unwrap_err().codes
        };
        assert_eq!(
            codes(&[], &[], true),
            [
                "resource.phone.missing_phone_number",
                "resource.phone.empty_phone_number"
            ]
        );
        assert_eq!(
            codes(&[("phone_number", " "), ("channel", "fax")], &[], true),
            [
                "resource.phone.empty_phone_number",
                "resource.phone.invalid_channel"
            ]
        );
        assert_eq!(
            codes(&[("phone_number", "1")], &["verification_code"], false),
            [
                "resource.phone.missing_verification_code",
                "resource.phone.empty_verification_code"
            ]
        );
        let ok = read_number(&params(&[("phone_number", "1")]), &[], true).unwrap();
        assert_eq!(ok, ["1", "sms"]);
    }
}
