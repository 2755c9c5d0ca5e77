//! Verification of compact JWS tokens: the one path for our own tokens (emailed confirmation
//! and reset links, session tokens) and for Auth0 id_tokens.
//!
//! Two steps, because a caller may need I/O between them (Auth0's keys are fetched by `kid`):
//! [`Unverified::read`] splits the token, reads its header and refuses any `alg` but the one
//! expected; [`Unverified::verify`] checks the signature with jsonwebtoken, then the
//! registered claims under [`Rules`].
//!
//! The claims are judged here, not by jsonwebtoken's `Validation`: it reads the system clock,
//! while every caller passes `now` (tests pin it), and Barong's answers name the first claim
//! that failed in a fixed order (`exp`, `nbf`, `iat`, `jti`, `iss`, `aud`, `sub`) with the
//! value received, which its error kinds do not carry. There is no leeway on `exp` and `nbf`; `iat`
//! may be a few seconds ahead where the caller says so.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::crypto::b64url_decode;

pub type Claims = Map<String, Value>;

/// Why a token was refused, in the order the checks run. `word()` is the suffix Barong puts
/// after `jwt.decode_and_verify.` (the last word of the Ruby jwt library's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Not three dot-separated parts.
    Segments,
    /// A part that is not base64url, or JSON where JSON is expected.
    Encoding,
    /// `alg` absent or not the expected one.
    Algorithm,
    /// No candidate key verifies the signature.
    Signature,
    /// `exp` absent, not an integer, or not after `now`.
    Expired,
    /// `nbf` after `now`.
    Immature,
    /// `iat` not an integer, or further ahead than the rules allow.
    IssuedAt,
    /// `jti` absent or empty where the rules ask for one.
    Jti,
    /// `iss` is not the expected issuer: what was received ("" when absent).
    Issuer(String),
    /// `aud` names none of the expected audiences.
    Audience,
    /// `sub` is not the expected subject: what was received ("" when absent).
    Subject(String),
}

impl VerifyError {
    pub fn word(&self) -> &str {
        match self {
            VerifyError::Segments => "segments",
            VerifyError::Encoding => "encoding",
            VerifyError::Algorithm => "algorithm",
            VerifyError::Signature => "raised",
            VerifyError::Expired => "expired",
            VerifyError::Immature => "reached",
            VerifyError::IssuedAt => "iat",
            VerifyError::Jti => "jti",
            VerifyError::Issuer(received) | VerifyError::Subject(received) => {
                if received.is_empty() {
                    "received"
                } else {
                    received
                }
            }
            VerifyError::Audience => "audience",
        }
    }
}

/// What the claims of a verified signature must say.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub issuer: &'a str,
    /// `aud` (a string, or a list) must name one of these; none accepts no token.
    pub audiences: &'a [&'a str],
    /// How many seconds `iat` may be ahead of `now`; `None` leaves `iat` unchecked.
    pub iat_ahead: Option<i64>,
    /// A non-empty `jti` is required (tokens that are burned by it).
    pub jti: bool,
    /// `sub` must be this one, when given.
    pub subject: Option<&'a str>,
}

/// A token whose header was read, nothing of it verified yet.
#[derive(Debug)]
pub struct Unverified<'a> {
    token: &'a str,
    algorithm: Algorithm,
    kid: Option<String>,
}

impl<'a> Unverified<'a> {
    /// Splits `token` (surrounding whitespace ignored) and reads its header; refuses a token
    /// signed with any algorithm but `algorithm`.
    pub fn read(token: &'a str, algorithm: Algorithm) -> Result<Unverified<'a>, VerifyError> {
        let token = token.trim();
        // Counted here, not left to jsonwebtoken: it splits from the right, so four parts
        // would be reported as a bad header instead of Barong's "segments".
        if token.split('.').count() != 3 {
            return Err(VerifyError::Segments);
        }
        let header = token.split('.').next().unwrap_or_default();
        // Read as any JSON, as Barong does: an unknown `alg` such as "none" is refused as an
        // algorithm, where jsonwebtoken's typed header would call it an encoding error.
        let header: Value = b64url_decode(header)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(VerifyError::Encoding)?;
        let alg = header.get("alg").and_then(Value::as_str);
        if alg.and_then(|alg| alg.parse::<Algorithm>().ok()) != Some(algorithm) {
            return Err(VerifyError::Algorithm);
        }
        Ok(Unverified {
            token,
            algorithm,
            kid: header.get("kid").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// The header's `kid`, when it is a string.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The claims, once one of `keys` verifies the signature and they satisfy `rules` at
    /// `now` (Unix seconds).
    pub fn verify<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k DecodingKey>,
        rules: &Rules<'_>,
        now: i64,
    ) -> Result<Claims, VerifyError> {
        let claims = self.signed_claims(keys)?;
        rules.check(&claims, now)?;
        Ok(claims)
    }

    /// The claims, once one of `keys` verifies the signature; nothing of them checked yet
    /// (for a caller that checks them with more than [`Rules`], as Auth0's does).
    pub fn signed_claims<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k DecodingKey>,
    ) -> Result<Claims, VerifyError> {
        let mut validation = Validation::new(self.algorithm);
        // Only the signature and the payload's decoding are jsonwebtoken's; see the module
        // documentation for why the claims are checked by `Rules`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        for key in keys {
            match jsonwebtoken::decode::<Claims>(self.token, key, &validation) {
                Ok(data) => return Ok(data.claims),
                // Another key (a rotation, several keys without a kid) may still verify.
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) => return Err(refusal_of(e.kind())),
            }
        }
        Err(VerifyError::Signature)
    }
}

impl Rules<'_> {
    /// The registered claims, first failure first.
    pub fn check(&self, claims: &Claims, now: i64) -> Result<(), VerifyError> {
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        if number("exp").is_none_or(|exp| now >= exp) {
            return Err(VerifyError::Expired);
        }
        if number("nbf").is_some_and(|nbf| now < nbf) {
            return Err(VerifyError::Immature);
        }
        if let Some(ahead) = self.iat_ahead
            && claims.contains_key("iat")
            && number("iat").is_none_or(|iat| iat > now + ahead)
        {
            return Err(VerifyError::IssuedAt);
        }
        if self.jti
            && claims
                .get("jti")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(VerifyError::Jti);
        }
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        if iss != self.issuer {
            return Err(VerifyError::Issuer(iss.to_owned()));
        }
        let ours = |aud: &Value| aud.as_str().is_some_and(|a| self.audiences.contains(&a));
        let audience_ok = match claims.get("aud") {
            Some(Value::Array(list)) => list.iter().any(ours),
            Some(aud) => ours(aud),
            None => false,
        };
        if !audience_ok {
            return Err(VerifyError::Audience);
        }
        if let Some(expected) = self.subject {
            let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
            if sub != expected {
                return Err(VerifyError::Subject(sub.to_owned()));
            }
        }
        Ok(())
    }
}

/// jsonwebtoken's failures before and after the signature, as our refusals.
fn refusal_of(kind: &ErrorKind) -> VerifyError {
    match kind {
        ErrorKind::InvalidToken => VerifyError::Segments,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => VerifyError::Algorithm,
        ErrorKind::InvalidSignature | ErrorKind::InvalidKeyFormat | ErrorKind::InvalidRsaKey(_) => {
            VerifyError::Signature
        }
        // Base64, JSON and UTF-8 errors, and anything a later version adds.
        _ => VerifyError::Encoding,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::JwtAlgorithm;
    use crate::crypto::b64url;
    use crate::jwt::{Issuer, SigningKey};

    const NOW: i64 = 1_700_000_000;

    const RULES: Rules<'static> = Rules {
        issuer: "barong",
        audiences: &["peatio", "barong"],
        iat_ahead: Some(5),
        jti: true,
        subject: None,
    };

    fn issuer() -> Issuer {
        Issuer::new(SigningKey::generate(), JwtAlgorithm::RS256, 60, true)
    }

    /// Valid claims with `extra` merged over them (`null` removes one).
    fn claims(extra: Value) -> Value {
        let mut all = json!({
            "exp": NOW + 60, "iat": NOW, "jti": "j", "iss": "barong", "aud": ["peatio", "barong"],
        });
        for (name, value) in extra.as_object().unwrap() {
            if value.is_null() {
                all.as_object_mut().unwrap().remove(name);
            } else {
                all[name] = value.clone();
            }
        }
        all
    }

    fn verify_with(issuer: &Issuer, token: &str) -> Result<Claims, VerifyError> {
        let key = issuer.key().verifying_key();
        Unverified::read(token, Algorithm::RS256)?.verify([key.decoding()], &RULES, NOW)
    }

    fn verify(extra: Value) -> Result<Claims, VerifyError> {
        let issuer = issuer();
        verify_with(&issuer, &issuer.sign(&claims(extra)))
    }

    /// `header.payload.signature` with a header and payload of our choosing, signed by us.
    fn forged(issuer: &Issuer, header: &str, payload: &str) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.as_bytes()),
            b64url(payload.as_bytes())
        );
        format!("{input}.{}", b64url(&issuer.sign_bytes(input.as_bytes())))
    }

    #[test]
    fn a_valid_token_yields_its_claims() {
        assert_eq!(verify(json!({})).unwrap()["jti"], "j");
        // Surrounding whitespace is not part of the token.
        let issuer = issuer();
        let token = format!(" {}\n", issuer.sign(&claims(json!({}))));
        assert!(verify_with(&issuer, &token).is_ok());
    }

    #[test]
    fn time_claims_have_no_leeway_but_iat_may_be_five_seconds_ahead() {
        assert_eq!(verify(json!({ "exp": NOW })), Err(VerifyError::Expired));
        assert!(verify(json!({ "exp": NOW + 1 })).is_ok());
        assert_eq!(verify(json!({ "exp": null })), Err(VerifyError::Expired));
        assert_eq!(verify(json!({ "exp": "later" })), Err(VerifyError::Expired));
        assert_eq!(
            verify(json!({ "nbf": NOW + 1 })),
            Err(VerifyError::Immature)
        );
        assert!(verify(json!({ "nbf": NOW })).is_ok());
        assert!(verify(json!({ "iat": NOW + 5 })).is_ok());
        assert_eq!(
            verify(json!({ "iat": NOW + 6 })),
            Err(VerifyError::IssuedAt)
        );
        assert_eq!(verify(json!({ "iat": "now" })), Err(VerifyError::IssuedAt));
        assert!(verify(json!({ "iat": null })).is_ok());
    }

    #[test]
    fn issuer_audience_and_jti_are_required() {
        assert_eq!(verify(json!({ "jti": "" })), Err(VerifyError::Jti));
        assert_eq!(
            verify(json!({ "iss": "evil" })),
            Err(VerifyError::Issuer("evil".into()))
        );
        assert_eq!(
            verify(json!({ "iss": null })),
            Err(VerifyError::Issuer("".into()))
        );
        assert!(verify(json!({ "aud": "peatio" })).is_ok());
        assert!(verify(json!({ "aud": ["other", "barong"] })).is_ok());
        for aud in [
            json!("other"),
            json!([]),
            json!(["other"]),
            json!(1),
            Value::Null,
        ] {
            assert_eq!(
                verify(json!({ "aud": aud })),
                Err(VerifyError::Audience),
                "{aud}"
            );
        }
        // The first failure is named: an expired token from another issuer is expired.
        assert_eq!(
            verify(json!({ "exp": NOW, "iss": "evil" })),
            Err(VerifyError::Expired)
        );
    }

    #[test]
    fn only_the_expected_algorithm_is_accepted() {
        let issuer = issuer();
        let payload = claims(json!({})).to_string();
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS256"}"#,
            r#"{"alg":"RS384"}"#,
            r#"{"alg":"rs256"}"#,
            r#"{"typ":"JWT"}"#,
            r#"[]"#,
        ] {
            let token = forged(&issuer, header, &payload);
            assert_eq!(
                verify_with(&issuer, &token),
                Err(VerifyError::Algorithm),
                "{header}"
            );
        }
        let unsigned = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none"}"#),
            b64url(payload.as_bytes())
        );
        assert_eq!(verify_with(&issuer, &unsigned), Err(VerifyError::Algorithm));
        assert!(verify_with(&issuer, &forged(&issuer, r#"{"alg":"RS256"}"#, &payload)).is_ok());
    }

    #[test]
    fn broken_tokens_name_what_is_broken() {
        let issuer = issuer();
        let valid = issuer.sign(&claims(json!({})));
        assert_eq!(verify_with(&issuer, "a.b"), Err(VerifyError::Segments));
        assert_eq!(
            verify_with(&issuer, &format!("{valid}.x")),
            Err(VerifyError::Segments)
        );
        assert_eq!(verify_with(&issuer, "!.b.c"), Err(VerifyError::Encoding));
        let (input, _) = valid.rsplit_once('.').unwrap();
        assert_eq!(
            verify_with(&issuer, &format!("{input}.!!")),
            Err(VerifyError::Encoding)
        );
        // A payload that is no JSON object, properly signed: an encoding error, not a pass.
        for payload in ["[]", "not json", "\"text\""] {
            let token = forged(&issuer, r#"{"alg":"RS256"}"#, payload);
            assert_eq!(
                verify_with(&issuer, &token),
                Err(VerifyError::Encoding),
                "{payload}"
            );
        }
        // Signed by another key.
        assert_eq!(
            verify_with(&self::issuer(), &valid),
            Err(VerifyError::Signature)
        );
    }

    #[test]
    fn any_of_the_candidate_keys_may_verify_and_none_is_no_signature() {
        let (old, new) = (issuer(), issuer());
        let token = old.sign(&claims(json!({})));
        let keys = [new.key().verifying_key(), old.key().verifying_key()];
        let unverified = Unverified::read(&token, Algorithm::RS256).unwrap();
        assert_eq!(unverified.kid(), Some(old.kid().as_ref()));
        assert!(
            unverified
                .verify(keys.iter().map(|k| k.decoding()), &RULES, NOW)
                .is_ok()
        );
        assert_eq!(
            unverified.verify([], &RULES, NOW),
            Err(VerifyError::Signature)
        );
    }
}
