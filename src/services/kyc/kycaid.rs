//! KYCAID's REST API, as the KYC worker uses it: applicants, files, documents and
//! verifications (docs.kycaid.com). Every call goes through the one outbound client
//! (`net::outbound`: bounded answers, a timeout per call) with `Authorization: Token <token>`;
//! the token is marked sensitive and never appears in an error or a log line.
//!
//! Every id KYCAID returns is checked to be a short identifier before it is stored or put in a
//! later URL; an answer without one is an error.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName};
use http::{HeaderValue, Method};
use serde_json::{Value, json};

use crate::config::Kyc;
use crate::domain::kyc::{Verification, is_identifier};
use crate::net::multipart::Multipart;
use crate::net::outbound::{Answer, Outbound};

/// Why a call did not succeed. Neither variant carries the token or personal data: only the
/// host, the status, and KYCAID's error type and parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KycaidError {
    /// Unreachable, too slow, busy (5xx, 429), or refusing our token (401, 403): the same call
    /// may succeed later, and the worker backs off.
    Unavailable(String),
    /// KYCAID refused this request (400, 404, 422, ...): sending it again will not help.
    Refused(String),
}

impl std::fmt::Display for KycaidError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KycaidError::Unavailable(why) => write!(f, "KYCAID unavailable: {why}"),
            KycaidError::Refused(why) => write!(f, "KYCAID refused: {why}"),
        }
    }
}

/// What an applicant is created (or updated) with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicantFields {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<String>,
    pub residence_country: Option<String>,
    pub email: String,
    /// Our id of the person (the user's uid), so that KYCAID's dashboard links back to it.
    pub external_applicant_id: String,
}

/// One document to create: its KYCAID type and the ids of its uploaded files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewDocument {
    pub kind: String,
    pub number: Option<String>,
    pub expiry_date: Option<String>,
    pub front_side_id: String,
    pub back_side_id: Option<String>,
}

/// A KYCAID account: its API, its token, and where it sends results.
#[derive(Clone)]
pub struct Kycaid {
    outbound: Outbound,
    base: String,
    authorization: HeaderValue,
    form_id: Option<String>,
    callback_url: String,
    timeout: Duration,
}

impl Kycaid {
    /// The client `settings` describe; `None` when no token is set (nothing can be sent) or
    /// the token cannot be a header value. `public_callback_url` is used when
    /// `kycaid_callback_url` is empty.
    pub fn new(settings: &Kyc, outbound: Outbound, public_callback_url: String) -> Option<Kycaid> {
        let token = settings.kycaid_authorization_token.as_ref()?;
        let mut authorization = HeaderValue::from_str(&format!("Token {}", token.expose())).ok()?;
        authorization.set_sensitive(true);
        Some(Kycaid {
            outbound,
            base: settings
                .kycaid_api_endpoint
                .trim_end_matches('/')
                .to_string(),
            authorization,
            form_id: Some(settings.kycaid_form_id.clone()).filter(|f| !f.is_empty()),
            callback_url: if settings.kycaid_callback_url.is_empty() {
                public_callback_url
            } else {
                settings.kycaid_callback_url.clone()
            },
            timeout: settings.request_timeout,
        })
    }

    /// `POST /applicants`: a new person; returns its `applicant_id`.
    pub async fn create_applicant(&self, fields: &ApplicantFields) -> Result<String, KycaidError> {
        let answer = self
            .json(Method::POST, "applicants", &applicant_body(fields))
            .await?;
        id_in(&answer, "applicant_id")
    }

    /// `PATCH /applicants/{id}`: the person's details changed (a new profile was submitted).
    pub async fn update_applicant(
        &self,
        applicant_id: &str,
        fields: &ApplicantFields,
    ) -> Result<(), KycaidError> {
        let path = format!("applicants/{}", path_id(applicant_id)?);
        self.json(Method::PATCH, &path, &applicant_body(fields))
            .await
            .map(drop)
    }

    /// `POST /files` (multipart): one image or PDF; returns its `file_id`.
    pub async fn upload_file(
        &self,
        file_name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<String, KycaidError> {
        let form = Multipart::new().file("file", file_name, content_type, bytes);
        let content_type = form.content_type();
        let answer = self
            .call(Method::POST, "files", Some(&content_type), form.finish())
            .await?;
        id_in(&answer, "file_id")
    }

    /// `POST /documents`: a document of the applicant made of uploaded files; returns its
    /// `document_id`.
    pub async fn create_document(
        &self,
        applicant_id: &str,
        document: &NewDocument,
    ) -> Result<String, KycaidError> {
        let mut body = json!({
            "applicant_id": applicant_id,
            "type": document.kind,
            "front_side_id": document.front_side_id,
        });
        for (key, value) in [
            ("back_side_id", &document.back_side_id),
            ("document_number", &document.number),
            ("expiry_date", &document.expiry_date),
        ] {
            if let Some(value) = value {
                body[key] = json!(value);
            }
        }
        let answer = self.json(Method::POST, "documents", &body).await?;
        id_in(&answer, "document_id")
    }

    /// `POST /addresses`: the applicant's registered address, which a proof of address is
    /// checked against; returns its `address_id`.
    pub async fn create_address(
        &self,
        applicant_id: &str,
        address: &super::PostalAddress,
    ) -> Result<String, KycaidError> {
        let body = json!({
            "applicant_id": applicant_id,
            "type": "REGISTERED",
            "country": address.country,
            "city": address.city,
            "postal_code": address.postcode,
            "full_address": address.address,
        });
        let answer = self.json(Method::POST, "addresses", &body).await?;
        id_in(&answer, "address_id")
    }

    /// `POST /verifications`: asks KYCAID to check `types` (`DOCUMENT`, `FACIAL`, `ADDRESS`)
    /// of the applicant; the result comes to our callback. Returns the `verification_id`.
    pub async fn create_verification(
        &self,
        applicant_id: &str,
        types: &[&str],
    ) -> Result<String, KycaidError> {
        let mut body = json!({
            "applicant_id": applicant_id,
            "types": types,
            "callback_url": self.callback_url,
        });
        if let Some(form_id) = &self.form_id {
            body["form_id"] = json!(form_id);
        }
        let answer = self.json(Method::POST, "verifications", &body).await?;
        id_in(&answer, "verification_id")
    }

    /// `GET /verifications/{id}`: the verification and each check's verdict.
    pub async fn verification(&self, verification_id: &str) -> Result<Verification, KycaidError> {
        let path = format!("verifications/{}", path_id(verification_id)?);
        let answer = self.call(Method::GET, &path, None, Bytes::new()).await?;
        Verification::parse(&answer.body)
            .map_err(|_| KycaidError::Unavailable("verification: unreadable answer".into()))
    }

    async fn json(&self, method: Method, path: &str, body: &Value) -> Result<Answer, KycaidError> {
        let body = Bytes::from(body.to_string());
        self.call(method, path, Some("application/json"), body)
            .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Answer, KycaidError> {
        let url = format!("{}/{path}", self.base);
        let headers: [(HeaderName, HeaderValue); 1] = [(AUTHORIZATION, self.authorization.clone())];
        let answer = self
            .outbound
            .request(
                method.clone(),
                &url,
                &headers,
                content_type,
                body,
                self.timeout,
            )
            .await
            .map_err(|e| KycaidError::Unavailable(e.to_string()))?;
        // The first segment names the call (`applicants`, `files`, ...); ids stay out of errors.
        let what = format!("{method} /{}", path.split('/').next().unwrap_or_default());
        match answer.status {
            200..=299 => Ok(answer),
            401 | 403 | 408 | 429 | 500..=599 => Err(KycaidError::Unavailable(format!(
                "{what}: HTTP {}",
                answer.status
            ))),
            status => Err(KycaidError::Refused(format!(
                "{what}: HTTP {status}{}",
                error_summary(&answer.body)
            ))),
        }
    }
}

fn applicant_body(fields: &ApplicantFields) -> Value {
    let mut body = json!({
        "type": "PERSON",
        "email": fields.email,
        "external_applicant_id": fields.external_applicant_id,
    });
    for (key, value) in [
        ("first_name", &fields.first_name),
        ("last_name", &fields.last_name),
        ("dob", &fields.dob),
        ("residence_country", &fields.residence_country),
    ] {
        if let Some(value) = value {
            body[key] = json!(value);
        }
    }
    body
}

/// An id we put in a path: always one KYCAID gave us or a callback named, checked again so
/// that no stored value can steer the request elsewhere.
fn path_id(id: &str) -> Result<&str, KycaidError> {
    if is_identifier(id) {
        Ok(id)
    } else {
        Err(KycaidError::Refused("not a KYCAID id".into()))
    }
}

/// The id member `key` of a JSON answer, when it is a short identifier.
fn id_in(answer: &Answer, key: &str) -> Result<String, KycaidError> {
    serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| v.get(key)?.as_str().map(str::to_owned))
        .filter(|id| is_identifier(id))
        .ok_or_else(|| KycaidError::Unavailable(format!("answer without a valid {key}")))
}

/// KYCAID's error `type` and the parameters it names (`{"type":"validation","errors":
/// [{"parameter":"residence_country","message":...}]}`): enough for an operator, without the
/// messages, which may repeat what was sent.
fn error_summary(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let safe = |v: &Value| v.as_str().filter(|s| is_identifier(s)).map(str::to_owned);
    let kind = value.get("type").and_then(safe);
    let parameters: Vec<String> = value
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("parameter").and_then(safe))
        .take(10)
        .collect();
    match (kind, parameters.is_empty()) {
        (None, true) => String::new(),
        (kind, _) => format!(
            " ({}{})",
            kind.unwrap_or_default(),
            if parameters.is_empty() {
                String::new()
            } else {
                format!(": {}", parameters.join(", "))
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_parameters_but_not_the_messages() {
        let body = br#"{"type":"validation","errors":[{"parameter":"residence_country","message":"Country XX of Ivan is not valid"}]}"#;
        assert_eq!(error_summary(body), " (validation: residence_country)");
        assert_eq!(error_summary(b"<html>"), "");
        assert_eq!(error_summary(br#"{"type":"a b"}"#), "");
    }

    #[test]
    fn ids_are_checked_before_use() {
        let answer = |body: &str| Answer {
            status: 200,
            body: Bytes::from(body.to_string()),
        };
        assert_eq!(
            id_in(&answer(r#"{"applicant_id":"abc-1"}"#), "applicant_id"),
            Ok("abc-1".into())
        );
        for odd in [
            r#"{"applicant_id":"../x"}"#,
            r#"{"applicant_id":7}"#,
            "{}",
            "x",
        ] {
            assert!(id_in(&answer(odd), "applicant_id").is_err(), "{odd}");
        }
        assert!(path_id("a/b").is_err());
    }
}
