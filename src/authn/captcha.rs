//! Captcha checks on the endpoints Barong protects (`user_create`, `session_create`,
//! `password_reset`, `email_confirmation`): none, Google reCAPTCHA, or GeeTest (§7).
//!
//! The verification URLs are settings, so tests (and air-gapped installations) can point them
//! at a local service.

use md5::{Digest, Md5};
use serde_json::Value;

use crate::config::{Captcha, CaptchaKind};
use crate::net::outbound::Outbound;

pub const USER_CREATE: &str = "user_create";
pub const SESSION_CREATE: &str = "session_create";
pub const PASSWORD_RESET: &str = "password_reset";
pub const EMAIL_CONFIRMATION: &str = "email_confirmation";

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// Why a captcha answer was refused. The API answers each with Barong's code ([`code`]):
/// a missing answer or field is the client's mistake (400), a wrong one is refused (422).
///
/// [`code`]: CaptchaError::code
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaError {
    /// The endpoint is protected and no answer came.
    Required,
    /// A GeeTest answer lacks one of its three fields.
    MandatoryFields,
    /// The answer is wrong, or the captcha service could not say it is right.
    VerificationFailed,
}

impl CaptchaError {
    /// Barong's error code.
    pub fn code(self) -> &'static str {
        match self {
            CaptchaError::Required => "identity.captcha.required",
            CaptchaError::MandatoryFields => "identity.captcha.mandatory_fields",
            CaptchaError::VerificationFailed => "identity.captcha.verification_failed",
        }
    }
}

impl std::fmt::Display for CaptchaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for CaptchaError {}

fn failed() -> CaptchaError {
    CaptchaError::VerificationFailed
}

/// Checks `response` (the `captcha_response` parameter) for `endpoint`, when captcha applies.
pub async fn verify(
    settings: &Captcha,
    outbound: &Outbound,
    endpoint: &str,
    response: Option<&Value>,
) -> Result<(), CaptchaError> {
    if settings.kind == CaptchaKind::None
        || !settings.protected_endpoints.iter().any(|e| e == endpoint)
    {
        return Ok(());
    }
    let blank = match response {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Object(map)) => map.is_empty(),
        Some(_) => false,
    };
    if blank {
        return Err(CaptchaError::Required);
    }
    let timeout = settings.timeout;
    match settings.kind {
        CaptchaKind::None => Ok(()),
        CaptchaKind::Recaptcha => {
            let Some(Value::String(answer)) = response else {
                return Err(failed());
            };
            let reply = outbound
                .post_form(
                    &settings.recaptcha_verify_url,
                    &[
                        ("secret", settings.recaptcha_secret_key.expose()),
                        ("response", answer),
                    ],
                    timeout,
                )
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "recaptcha verification unreachable");
                    failed()
                })?;
            let success = serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .and_then(|v| v.get("success").and_then(Value::as_bool))
                .unwrap_or(false);
            if reply.status == 200 && success {
                Ok(())
            } else {
                Err(failed())
            }
        }
        CaptchaKind::Geetest => {
            let field = |name: &str| {
                response
                    .and_then(|r| r.get(name))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            };
            let (Some(challenge), Some(validate), Some(seccode)) = (
                field("geetest_challenge"),
                field("geetest_validate"),
                field("geetest_seccode"),
            ) else {
                return Err(CaptchaError::MandatoryFields);
            };
            let expected = md5_hex(&format!(
                "{}geetest{challenge}",
                settings.geetest_key.expose()
            ));
            if !crate::crypto::constant_time_eq(expected.as_bytes(), validate.as_bytes()) {
                return Err(failed());
            }
            let url = format!(
                "{}/validate.php",
                settings.geetest_api_url.trim_end_matches('/')
            );
            let reply = outbound
                .post_form(&url, &[("seccode", seccode)], timeout)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "geetest validation unreachable");
                    failed()
                })?;
            let answer = String::from_utf8_lossy(&reply.body);
            if reply.status == 200 && answer.trim() == md5_hex(seccode) {
                Ok(())
            } else {
                Err(failed())
            }
        }
    }
}

/// GeeTest's registration: `{"gt": <id>, "challenge": md5(<register answer> + key)}`, or an
/// empty string when GeeTest does not answer (Barong's behaviour).
pub async fn register_geetest(settings: &Captcha, outbound: &Outbound) -> Value {
    let url = format!(
        "{}/register.php?gt={}",
        settings.geetest_api_url.trim_end_matches('/'),
        percent_encoding::utf8_percent_encode(
            &settings.geetest_id,
            percent_encoding::NON_ALPHANUMERIC
        )
    );
    match outbound.get(&url, settings.timeout).await {
        Ok(reply) if reply.status == 200 => {
            let challenge = String::from_utf8_lossy(&reply.body).trim().to_string();
            if challenge.len() == 32 {
                return serde_json::json!({
                    "gt": settings.geetest_id,
                    "challenge": md5_hex(&format!("{challenge}{}", settings.geetest_key.expose())),
                });
            }
            Value::String(String::new())
        }
        Ok(_) => Value::String(String::new()),
        Err(err) => {
            tracing::warn!(error = %err, "geetest registration unreachable");
            Value::String(String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kind: CaptchaKind) -> Captcha {
        let mut s = crate::config::Settings::from_toml("").unwrap().captcha;
        s.kind = kind;
        s.geetest_key = crate::config::Secret::new("key");
        s
    }

    #[tokio::test]
    async fn blank_and_malformed_answers_are_refused_before_any_call() {
        let outbound = Outbound::new();
        let recaptcha = settings(CaptchaKind::Recaptcha);
        let err = verify(&recaptcha, &outbound, USER_CREATE, None)
            .await
            .unwrap_err();
        assert_eq!(err, CaptchaError::Required);
        let err = verify(
            &recaptcha,
            &outbound,
            USER_CREATE,
            Some(&Value::String(" ".into())),
        )
        .await
        .unwrap_err();
        assert_eq!(err, CaptchaError::Required);
        let geetest = settings(CaptchaKind::Geetest);
        let partial = serde_json::json!({"geetest_challenge": "c"});
        let err = verify(&geetest, &outbound, SESSION_CREATE, Some(&partial))
            .await
            .unwrap_err();
        assert_eq!(err, CaptchaError::MandatoryFields);
        // A validate value that is not md5(key + "geetest" + challenge) fails without a call.
        let wrong = serde_json::json!({"geetest_challenge": "c", "geetest_validate": "v", "geetest_seccode": "s"});
        let err = verify(&geetest, &outbound, SESSION_CREATE, Some(&wrong))
            .await
            .unwrap_err();
        assert_eq!(err, CaptchaError::VerificationFailed);
        // Unprotected endpoints and `none` never ask.
        let mut only_signup = settings(CaptchaKind::Recaptcha);
        only_signup.protected_endpoints = vec![USER_CREATE.into()];
        assert!(
            verify(&only_signup, &outbound, SESSION_CREATE, None)
                .await
                .is_ok()
        );
        assert!(
            verify(&settings(CaptchaKind::None), &outbound, USER_CREATE, None)
                .await
                .is_ok()
        );
    }

    #[test]
    fn md5_matches_known_values() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }
}
