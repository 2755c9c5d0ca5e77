//! A KYCAID callback reduced to what Portcullis keeps: which callback it is (`request_id`,
//! `type`), whom and which verification it is about (`applicant_id`, `verification_id`), and
//! the outcome it announces (`verification_status`, `verified`). Like Barong, a consumer
//! fetches the verification itself from KYCAID by its id; form tokens, the per-step
//! decisions and their free-text comments are not kept.
//!
//! Also the KYC worker's pure pieces: the jobs of `kyc_jobs` ([`KycJob`]), a verification as
//! KYCAID's API describes it and the labels its verdicts set ([`Verification`]), and Barong's
//! document types in KYCAID's words.
//!
//! Every kept value is a short ASCII identifier or a boolean: a callback with anything else
//! in those members is refused whole, so nothing odd reaches the table or its consumers.
//! Members not kept are ignored whatever they hold (the body as a whole is capped by the
//! handler).

use serde::Deserialize;

/// The longest identifier kept. KYCAID's ids are 36 hex characters (its documented form ids
/// reach 37); types and statuses are short words.
pub const MAX_IDENTIFIER: usize = 64;

/// A verified callback's kept fields; every string is a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KycaidCallback {
    /// KYCAID's id of this callback: a redelivery carries the same one.
    pub request_id: String,
    /// `VERIFICATION_STATUS_CHANGED`, `VERIFICATION_COMPLETED`, ...
    pub kind: String,
    pub applicant_id: String,
    pub verification_id: Option<String>,
    /// `unused`, `pending`, `completed`: `verification_status` in a status change, `status`
    /// in a completed verification.
    pub verification_status: Option<String>,
    /// The overall result once there is one.
    pub verified: Option<bool>,
}

/// The body is not a callback we can keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPayload;

/// The members read; all others are skipped unread. A member given twice fails the parse.
#[derive(Deserialize)]
struct Wire {
    request_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    applicant_id: Option<String>,
    verification_id: Option<String>,
    verification_status: Option<String>,
    status: Option<String>,
    #[serde(default)]
    verified: Option<Verified>,
}

/// KYCAID documents `verified` as "string or null" and shows booleans: both are read.
#[derive(Deserialize)]
#[serde(untagged)]
enum Verified {
    Flag(bool),
    Text(String),
}

impl KycaidCallback {
    /// Parses a callback body (JSON) and checks every kept member.
    pub fn parse(body: &[u8]) -> Result<KycaidCallback, InvalidPayload> {
        let wire: Wire = serde_json::from_slice(body).map_err(|_| InvalidPayload)?;
        Ok(KycaidCallback {
            request_id: required(wire.request_id)?,
            kind: required(wire.kind)?,
            applicant_id: required(wire.applicant_id)?,
            verification_id: optional(wire.verification_id)?,
            verification_status: optional(wire.verification_status.or(wire.status))?,
            verified: wire.verified.map(Verified::flag).transpose()?,
        })
    }
}

impl Verified {
    fn flag(self) -> Result<bool, InvalidPayload> {
        match self {
            Verified::Flag(flag) => Ok(flag),
            Verified::Text(text) if text == "true" => Ok(true),
            Verified::Text(text) if text == "false" => Ok(false),
            Verified::Text(_) => Err(InvalidPayload),
        }
    }
}

/// 1 to [`MAX_IDENTIFIER`] ASCII letters, digits, `_` and `-`.
pub fn is_identifier(text: &str) -> bool {
    (1..=MAX_IDENTIFIER).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn required(value: Option<String>) -> Result<String, InvalidPayload> {
    value.filter(|v| is_identifier(v)).ok_or(InvalidPayload)
}

/// Absent, null and empty all mean "not given" (KYCAID sends `""` for ids it does not have).
fn optional(value: Option<String>) -> Result<Option<String>, InvalidPayload> {
    match value {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if is_identifier(&v) => Ok(Some(v)),
        Some(_) => Err(InvalidPayload),
    }
}

/// A submission to the KYC provider, queued in `kyc_jobs` by the change that asks for it and
/// sent by the KYC worker (Barong's KYCAID jobs, §8.3 and §8.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KycJob {
    /// Create (or update) the applicant from a submitted profile.
    Applicant { profile_id: i64 },
    /// Send a complete batch of identity documents (those sharing `identificator`).
    Documents { identificator: String },
    /// Send a proof of address (the `Address` documents sharing `identificator`).
    Address { identificator: String },
    /// Fetch a completed verification (announced by a callback) and apply its result.
    Verification { verification_id: String },
}

impl KycJob {
    /// The `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            KycJob::Applicant { .. } => "applicant",
            KycJob::Documents { .. } => "documents",
            KycJob::Address { .. } => "address",
            KycJob::Verification { .. } => "verification",
        }
    }

    /// The `subject` column: the profile id, the documents' identificator, or KYCAID's
    /// verification id.
    pub fn subject(&self) -> String {
        match self {
            KycJob::Applicant { profile_id } => profile_id.to_string(),
            KycJob::Documents { identificator } | KycJob::Address { identificator } => {
                identificator.clone()
            }
            KycJob::Verification { verification_id } => verification_id.clone(),
        }
    }

    /// The job a row holds; `None` for a kind this version does not know.
    pub fn from_row(kind: &str, subject: &str) -> Option<KycJob> {
        match kind {
            "applicant" => subject
                .parse()
                .ok()
                .map(|profile_id| KycJob::Applicant { profile_id }),
            "documents" => Some(KycJob::Documents {
                identificator: subject.to_owned(),
            }),
            "address" => Some(KycJob::Address {
                identificator: subject.to_owned(),
            }),
            "verification" => Some(KycJob::Verification {
                verification_id: subject.to_owned(),
            }),
            _ => None,
        }
    }
}

impl KycaidCallback {
    /// The callback announces a finished verification whose result can be fetched: Barong's
    /// `VERIFICATION_COMPLETED`, or a status change to `completed`, naming the verification.
    pub fn completed_verification(&self) -> Option<&str> {
        let completed = self.kind == "VERIFICATION_COMPLETED"
            || self.verification_status.as_deref() == Some("completed");
        self.verification_id.as_deref().filter(|_| completed)
    }
}

/// Label values a KYC result writes.
pub const VERIFIED: &str = "verified";
pub const REJECTED: &str = "rejected";

/// A verification as `GET /verifications/{id}` describes it: its status, whom it is about,
/// and each check's verdict (`document`, `facial`, `address`, `profile`, `aml`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub status: String,
    pub applicant_id: Option<String>,
    pub checks: Vec<(String, bool)>,
}

#[derive(Deserialize)]
struct VerificationWire {
    status: Option<String>,
    applicant_id: Option<String>,
    #[serde(default)]
    verifications: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Verification {
    /// Reads KYCAID's answer; checks without a boolean `verified` (still running) are left out.
    pub fn parse(body: &[u8]) -> Result<Verification, InvalidPayload> {
        let wire: VerificationWire = serde_json::from_slice(body).map_err(|_| InvalidPayload)?;
        let checks = wire
            .verifications
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, _)| is_identifier(name))
            .filter_map(|(name, check)| {
                let verified = check.get("verified")?.as_bool()?;
                Some((name.to_ascii_lowercase(), verified))
            })
            .collect();
        Ok(Verification {
            status: wire.status.ok_or(InvalidPayload)?,
            applicant_id: optional(wire.applicant_id)?,
            checks,
        })
    }

    /// What the verification decides for the private labels, in a fixed order (`document`,
    /// `address`, `profile`): nothing until it is `completed`. As in Barong, the facial check
    /// (the selfie matching the document) counts toward `document`: the document is verified
    /// only when every one of its checks passed. Checks Portcullis has no label for (AML,
    /// financial, ...) are ignored.
    pub fn label_changes(&self) -> Vec<(&'static str, &'static str)> {
        if self.status != "completed" {
            return Vec::new();
        }
        let verdict = |names: &[&str]| -> Option<&'static str> {
            let mut found = self
                .checks
                .iter()
                .filter(|(name, _)| names.contains(&name.as_str()))
                .peekable();
            found.peek()?;
            Some(if found.all(|(_, ok)| *ok) {
                VERIFIED
            } else {
                REJECTED
            })
        };
        [
            ("document", verdict(&["document", "facial"])),
            ("address", verdict(&["address"])),
            ("profile", verdict(&["profile"])),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v)))
        .collect()
    }
}

/// KYCAID's document type for one of Barong's (`barong.yml document_types`); `None` for a
/// type KYCAID has no equivalent of. Every proof of address is an `ADDRESS_DOCUMENT`.
pub fn kycaid_document_type(doc_type: &str) -> Option<&'static str> {
    match doc_type {
        "Passport" => Some("PASSPORT"),
        "Identity card" => Some("GOVERNMENT_ID"),
        "Driver license" => Some("DRIVERS_LICENSE"),
        "Utility Bill" | "Residental" | "Institutional" | "Address" => Some("ADDRESS_DOCUMENT"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<KycaidCallback, InvalidPayload> {
        KycaidCallback::parse(value.to_string().as_bytes())
    }

    fn status_changed() -> serde_json::Value {
        json!({
            "type": "VERIFICATION_STATUS_CHANGED",
            "verification_status": "pending",
            "applicant_id": "aa6ca3a10440624d671b9ef4771c32cb9d3a",
            "external_applicant_id": "",
            "form_id": "24148eb10810e24b2c1afaa4b9759008d352",
            "form_token": "d2177cdf067d424a221b5d045dc616bf81f9",
            "verification_id": "270128a807f3c24bfb1b8da4a4af7d2080c4",
            "verification_attempts_left": null,
            "request_id": "5eb27e030be7f24a7f19c794926f1d2f2abc"
        })
    }

    #[test]
    fn keeps_the_ids_and_the_outcome_of_kycaids_callbacks() {
        assert_eq!(
            parse(status_changed()),
            Ok(KycaidCallback {
                request_id: "5eb27e030be7f24a7f19c794926f1d2f2abc".into(),
                kind: "VERIFICATION_STATUS_CHANGED".into(),
                applicant_id: "aa6ca3a10440624d671b9ef4771c32cb9d3a".into(),
                verification_id: Some("270128a807f3c24bfb1b8da4a4af7d2080c4".into()),
                verification_status: Some("pending".into()),
                verified: None,
            })
        );
        let completed = parse(json!({
            "type": "VERIFICATION_COMPLETED",
            "request_id": "b730d77f049ae24c9b18f054399b7307eb3b",
            "verification_id": null,
            "applicant_id": "723f46ab04feb64f442946f2952a67eaecf7",
            "status": "completed",
            "verified": false,
            "verifications": { "document": { "verified": false, "comment": "Blurred photo" } }
        }))
        .unwrap();
        assert_eq!(completed.verification_status.as_deref(), Some("completed"));
        assert_eq!(completed.verified, Some(false));
        assert_eq!(completed.verification_id, None);
        let mut as_text = status_changed();
        as_text["verified"] = json!("true");
        assert_eq!(parse(as_text).unwrap().verified, Some(true));
    }

    #[test]
    fn refuses_missing_odd_or_oversized_kept_members() {
        for (member, value) in [
            ("request_id", json!(null)),
            ("request_id", json!("")),
            ("request_id", json!("x".repeat(MAX_IDENTIFIER + 1))),
            ("type", json!(7)),
            ("applicant_id", json!("a b")),
            ("applicant_id", json!("é")),
            ("verification_id", json!("../../etc")),
            ("verification_id", json!({ "id": "x" })),
            ("verification_status", json!("pending\n")),
            ("verified", json!("yes")),
            ("verified", json!(1)),
        ] {
            let mut body = status_changed();
            body[member] = value.clone();
            assert_eq!(parse(body), Err(InvalidPayload), "{member}: {value}");
        }
        assert!(parse(json!("a string")).is_err());
        assert!(parse(json!([status_changed()])).is_err());
        assert!(KycaidCallback::parse(b"{\"request_id\":").is_err());
        assert!(KycaidCallback::parse(b"").is_err());
        // The same member twice: which one would a reader believe?
        let twice = br#"{"request_id":"a","type":"T","applicant_id":"b","applicant_id":"c"}"#;
        assert!(KycaidCallback::parse(twice).is_err());
    }

    #[test]
    fn members_not_kept_are_ignored_whatever_they_hold() {
        let mut body = status_changed();
        body["external_applicant_id"] = json!("<script>".repeat(20));
        body["extra"] = json!([1, { "deep": [null] }]);
        assert!(parse(body).is_ok());
    }

    #[test]
    fn identifiers_are_short_ascii_words() {
        assert!(is_identifier("VERIFICATION_COMPLETED"));
        assert!(is_identifier("cb1eebbe-9945-4e64-8f60-c920f1e3e237"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("a.b"));
        assert!(!is_identifier(&"a".repeat(MAX_IDENTIFIER + 1)));
    }

    fn verification(status: &str, checks: serde_json::Value) -> Verification {
        let body = json!({
            "verification_id": "270128a807f3c24bfd1b8da4a4af7d2080c4",
            "applicant_id": "723f46ab04feb64f442946f2952a67eaecf7",
            "status": status,
            "verified": true,
            "verifications": checks,
        });
        Verification::parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_completed_verification_maps_to_document_address_and_profile_labels() {
        let all_good = verification(
            "completed",
            json!({
                "profile": { "verified": true, "comment": "" },
                "document": { "verified": true, "comment": "" },
                "facial": { "verified": true, "comment": "" },
                "address": { "verified": true, "comment": "" },
                "aml": { "verified": false, "comment": "ignored" }
            }),
        );
        assert_eq!(
            all_good.label_changes(),
            [
                ("document", VERIFIED),
                ("address", VERIFIED),
                ("profile", VERIFIED)
            ]
        );
        // A failed selfie rejects the document; checks absent leave their label alone.
        let selfie_failed = verification(
            "completed",
            json!({
                "document": { "verified": true },
                "facial": { "verified": false, "comment": "Face mismatch" }
            }),
        );
        assert_eq!(selfie_failed.label_changes(), [("document", REJECTED)]);
        let rejected = verification(
            "completed",
            json!({ "profile": { "verified": false }, "address": { "verified": false } }),
        );
        assert_eq!(
            rejected.label_changes(),
            [("address", REJECTED), ("profile", REJECTED)]
        );
    }

    #[test]
    fn nothing_changes_before_completion_or_without_a_verdict() {
        let pending = verification("pending", json!({ "document": { "verified": true } }));
        assert!(pending.label_changes().is_empty());
        let undecided = verification(
            "completed",
            json!({ "document": { "verified": null }, "address": "odd" }),
        );
        assert!(undecided.label_changes().is_empty());
        assert!(Verification::parse(b"{}").is_err());
        assert!(Verification::parse(b"[1]").is_err());
        let bad_id = json!({ "status": "completed", "applicant_id": "../x" });
        assert!(Verification::parse(bad_id.to_string().as_bytes()).is_err());
    }

    #[test]
    fn only_completed_callbacks_naming_a_verification_are_applied() {
        let mut callback = parse(status_changed()).unwrap();
        assert_eq!(callback.completed_verification(), None);
        callback.verification_status = Some("completed".into());
        assert_eq!(
            callback.completed_verification(),
            Some("270128a807f3c24bfb1b8da4a4af7d2080c4")
        );
        callback.verification_id = None;
        assert_eq!(callback.completed_verification(), None);
    }

    #[test]
    fn barongs_document_types_map_to_kycaids() {
        assert_eq!(kycaid_document_type("Passport"), Some("PASSPORT"));
        assert_eq!(kycaid_document_type("Identity card"), Some("GOVERNMENT_ID"));
        assert_eq!(
            kycaid_document_type("Driver license"),
            Some("DRIVERS_LICENSE")
        );
        assert_eq!(
            kycaid_document_type("Utility Bill"),
            Some("ADDRESS_DOCUMENT")
        );
        assert_eq!(kycaid_document_type("Address"), Some("ADDRESS_DOCUMENT"));
        assert_eq!(kycaid_document_type("Selfie"), None);
    }

    #[test]
    fn job_kinds_round_trip_through_their_columns() {
        for job in [
            KycJob::Applicant { profile_id: 7 },
            KycJob::Documents {
                identificator: "abc".into(),
            },
            KycJob::Address {
                identificator: "def".into(),
            },
            KycJob::Verification {
                verification_id: "v1".into(),
            },
        ] {
            assert_eq!(KycJob::from_row(job.kind(), &job.subject()), Some(job));
        }
        assert_eq!(KycJob::from_row("applicant", "x"), None);
        assert_eq!(KycJob::from_row("other", "1"), None);
    }
}
