//! Phone verification providers (Barong §8.5, `[phones] verification`): `mock` sends nothing
//! and accepts any code; `twilio_sms` sends our own code through Twilio's Messages API (the
//! code is then checked against its stored digest by the caller); `twilio_verify` leaves both
//! sending and checking to a Twilio Verify service, created at start when none is configured.
//!
//! Twilio's base URLs are settings, so tests (and proxies) can point them at a local service.
//! Numbers and codes never reach a log line; Twilio's error codes and messages do.

use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::{PhoneVerification, Phones};
use crate::net::outbound::{Answer, Outbound, basic_auth};

/// Why a provider could not send or check a code; each is one of Barong's codes, answered 422
/// (Twilio's own error codes: 21612, 21614, 21618, 21610, anything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderError {
    NotReachable,
    NotValid,
    SmsContentInvalid,
    UnsubscribedRecipient,
    /// Another Twilio error, or no usable answer (down, slow, not JSON).
    Unexpected,
    /// `twilio_verify` has no service: none was configured and creating one failed.
    NoService,
}

impl ProviderError {
    pub fn code(self) -> &'static str {
        match self {
            ProviderError::NotReachable => "resource.phone.num_not_reachable",
            ProviderError::NotValid => "resource.phone.num_not_valid",
            ProviderError::SmsContentInvalid => "resource.phone.sms_content_invalid",
            ProviderError::UnsubscribedRecipient => "resource.phone.unsubscribed_recipient",
            ProviderError::Unexpected => "resource.phone.twilio_unexpected",
            ProviderError::NoService => "resource.phone.verification_unavailable",
        }
    }

    /// Barong's mapping of Twilio's error codes.
    fn of_twilio(code: i64) -> ProviderError {
        match code {
            21612 => ProviderError::NotReachable,
            21614 => ProviderError::NotValid,
            21618 => ProviderError::SmsContentInvalid,
            21610 => ProviderError::UnsubscribedRecipient,
            _ => ProviderError::Unexpected,
        }
    }
}

/// The configured provider, with its Twilio Verify service once known.
pub struct PhoneProvider {
    settings: Phones,
    app_name: String,
    outbound: Outbound,
    /// The Verify service: configured, or created by [`PhoneProvider::prepare`] (or, when that
    /// failed, by the first request that needs it). The lock also keeps two requests from
    /// creating two services.
    service_sid: Mutex<Option<String>>,
}

impl PhoneProvider {
    pub fn new(settings: &Phones, app_name: &str, outbound: Outbound) -> PhoneProvider {
        PhoneProvider {
            service_sid: Mutex::new(settings.twilio_service_sid.clone()),
            settings: settings.clone(),
            app_name: app_name.to_string(),
            outbound,
        }
    }

    pub fn kind(&self) -> PhoneVerification {
        self.settings.verification
    }

    /// At start: a `twilio_verify` node without a configured service creates one. A failure
    /// is logged and the node serves anyway; phone endpoints then answer
    /// `resource.phone.verification_unavailable` until a later attempt succeeds.
    pub async fn prepare(&self) {
        if self.kind() == PhoneVerification::TwilioVerify
            && let Err(err) = self.service().await
        {
            tracing::error!(
                code = err.code(),
                "no Twilio Verify service: phone verification is unavailable"
            );
        }
    }

    /// A new code to store, for the provider that checks our own codes (`twilio_sms`).
    pub fn new_code(&self) -> Option<String> {
        (self.kind() == PhoneVerification::TwilioSms).then(|| crate::crypto::random_digits(5))
    }

    /// Sends a code to `number` (international digits): `code` by SMS for `twilio_sms`,
    /// Twilio's own by `channel` (sms | call) for `twilio_verify`, nothing for `mock`.
    pub async fn send(
        &self,
        number: &str,
        channel: &str,
        code: Option<&str>,
    ) -> Result<(), ProviderError> {
        let to = format!("+{number}");
        match self.kind() {
            PhoneVerification::Mock => Ok(()),
            PhoneVerification::TwilioSms => {
                // Barong sends an SMS whatever the channel, and says it went "via call".
                let body = self
                    .settings
                    .sms_content_template
                    .replace("{{code}}", code.unwrap_or_default());
                let url = format!(
                    "{}/2010-04-01/Accounts/{}/Messages.json",
                    self.settings.twilio_api_url.trim_end_matches('/'),
                    self.settings.twilio_account_sid
                );
                let pairs = [
                    ("To", to.as_str()),
                    ("From", self.settings.twilio_phone_number.as_str()),
                    ("Body", body.as_str()),
                ];
                self.call(&url, &pairs).await.map(drop).map_err(|(_, e)| e)
            }
            PhoneVerification::TwilioVerify => {
                let url = self.verify_url("Verifications").await?;
                let pairs = [("To", to.as_str()), ("Channel", channel)];
                self.call(&url, &pairs).await.map(drop).map_err(|(_, e)| e)
            }
        }
    }

    /// `twilio_verify`: whether Twilio approves `code` for `number`. A check Twilio does not
    /// find (expired, used, too many tries: HTTP 404) is a wrong code, not an error.
    pub async fn check(&self, number: &str, code: &str) -> Result<bool, ProviderError> {
        let url = self.verify_url("VerificationCheck").await?;
        let to = format!("+{number}");
        match self
            .call(&url, &[("To", to.as_str()), ("Code", code)])
            .await
        {
            Ok(answer) => Ok(answer.get("status").and_then(Value::as_str) == Some("approved")),
            Err((404, _)) => Ok(false),
            Err((_, err)) => Err(err),
        }
    }

    async fn verify_url(&self, what: &str) -> Result<String, ProviderError> {
        let sid = self.service().await?;
        Ok(format!(
            "{}/v2/Services/{sid}/{what}",
            self.settings.twilio_verify_url.trim_end_matches('/')
        ))
    }

    /// The Verify service's sid, created (named after `app.name`) when there is none yet.
    async fn service(&self) -> Result<String, ProviderError> {
        let mut sid = self.service_sid.lock().await;
        if let Some(sid) = sid.as_ref() {
            return Ok(sid.clone());
        }
        let url = format!(
            "{}/v2/Services",
            self.settings.twilio_verify_url.trim_end_matches('/')
        );
        let answer = self
            .call(&url, &[("FriendlyName", self.app_name.as_str())])
            .await
            .map_err(|_| ProviderError::NoService)?;
        let created = answer
            .get("sid")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(ProviderError::NoService)?
            .to_string();
        tracing::info!(sid = %created, "created a Twilio Verify service");
        *sid = Some(created.clone());
        Ok(created)
    }

    /// POSTs a form to Twilio with the account's credentials: the answer's JSON on a 2xx, else
    /// the HTTP status and the mapped error.
    async fn call(&self, url: &str, pairs: &[(&str, &str)]) -> Result<Value, (u16, ProviderError)> {
        let token = self
            .settings
            .twilio_auth_token
            .as_ref()
            .map(|t| t.expose())
            .unwrap_or_default();
        let authorization = basic_auth(&self.settings.twilio_account_sid, token);
        let answer = self
            .outbound
            .post_form_as(url, Some(&authorization), pairs, self.settings.timeout)
            .await
            .map_err(|err| {
                tracing::warn!(error = %err, "Twilio did not answer");
                (0, ProviderError::Unexpected)
            })?;
        read(&answer)
    }
}

fn read(answer: &Answer) -> Result<Value, (u16, ProviderError)> {
    let json: Option<Value> = serde_json::from_slice(&answer.body).ok();
    if (200..300).contains(&answer.status) {
        return json.ok_or((answer.status, ProviderError::Unexpected));
    }
    let code = json
        .as_ref()
        .and_then(|j| j.get("code"))
        .and_then(Value::as_i64);
    let message = json
        .as_ref()
        .and_then(|j| j.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    tracing::warn!(
        status = answer.status,
        twilio_code = code,
        message,
        "Twilio refused a request"
    );
    Err((
        answer.status,
        code.map_or(ProviderError::Unexpected, ProviderError::of_twilio),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn twilio_errors_map_to_barongs_codes() {
        let code = |status, body| read(&answer(status, body)).unwrap_err().1.code();
        assert_eq!(
            code(400, r#"{"code":21612}"#),
            "resource.phone.num_not_reachable"
        );
        assert_eq!(
            code(400, r#"{"code":21614}"#),
            "resource.phone.num_not_valid"
        );
        assert_eq!(
            code(400, r#"{"code":21618}"#),
            "resource.phone.sms_content_invalid"
        );
        assert_eq!(
            code(400, r#"{"code":21610}"#),
            "resource.phone.unsubscribed_recipient"
        );
        assert_eq!(
            code(400, r#"{"code":20003}"#),
            "resource.phone.twilio_unexpected"
        );
        assert_eq!(code(502, "<html>"), "resource.phone.twilio_unexpected");
        assert_eq!(code(201, "not json"), "resource.phone.twilio_unexpected");
        assert_eq!(
            read(&answer(201, r#"{"status":"pending"}"#)).unwrap()["status"],
            "pending"
        );
    }
}
