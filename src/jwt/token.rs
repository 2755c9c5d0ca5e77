//! Compact JWS tokens: Barong's session claims, signing with the parsed key, the rules our own
//! tokens are verified under (the verification itself is `verify`'s), and the JWKS document.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature;
use serde::Serialize;
use serde_json::{Map, Value};

use super::keys::{SigningKey, VerifyingKey};
use super::verify::{Rules, Unverified, VerifyError};
use crate::config::JwtAlgorithm;
use crate::crypto::{b64url, random_hex};
use crate::domain::subject::{ServiceAccountClaims, SubjectKind, SubjectRecord, UserClaims};

pub const ISSUER: &str = "barong";
pub const AUDIENCE: [&str; 2] = ["peatio", "barong"];
/// The `sub` of a Back Office access token (a session token says `session`).
pub const BACKOFFICE_SUBJECT: &str = "backoffice";

/// `Bearer <jwt>` as an `Authorization` header value, checked once when the token is minted:
/// each request that reuses the token clones a reference to the same bytes, where building the
/// header from text checked and copied the kilobyte again (1.3k instructions a request,
/// callgrind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer(http::HeaderValue);

impl Bearer {
    fn new(jwt: &str) -> Bearer {
        let text = bytes::Bytes::from(format!("Bearer {jwt}"));
        // A JWT is three base64url parts and two dots: always a valid header value.
        Bearer(http::HeaderValue::from_maybe_shared(text).expect("a JWT is visible ASCII"))
    }

    pub fn header_value(&self) -> http::HeaderValue {
        self.0.clone()
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The whole `Bearer <jwt>` as text (checks the bytes again: not for the hot path).
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    pub fn jwt(&self) -> &str {
        &self.as_str()["Bearer ".len()..]
    }
}

/// A signed session token, shared by every request that reuses it.
#[derive(Debug, Clone)]
pub struct MintedToken {
    /// `Bearer <jwt>`, ready for the Authorization header.
    pub bearer: Bearer,
    pub iat: i64,
    pub exp: i64,
    /// The signing key's kid: a token signed by a retired key is not reused.
    pub kid: Arc<str>,
}

impl MintedToken {
    pub fn jwt(&self) -> &str {
        self.bearer.jwt()
    }
}

/// What our own tokens must say: Barong's issuer and audiences, a `jti` (emailed tokens are
/// burned by it), and an `iat` at most five seconds ahead (clock skew between nodes).
const OWN_TOKENS: Rules<'static> = Rules {
    issuer: ISSUER,
    audiences: &AUDIENCE,
    iat_ahead: Some(5),
    jti: true,
    subject: None,
};

/// The configured algorithm as jsonwebtoken names it.
fn jws_algorithm(algorithm: JwtAlgorithm) -> jsonwebtoken::Algorithm {
    match algorithm {
        JwtAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        JwtAlgorithm::RS384 => jsonwebtoken::Algorithm::RS384,
        JwtAlgorithm::RS512 => jsonwebtoken::Algorithm::RS512,
    }
}

#[derive(Serialize)]
struct Envelope<'a, U: Serialize> {
    iat: i64,
    exp: i64,
    sub: &'a str,
    iss: &'static str,
    aud: [&'static str; 2],
    jti: String,
    #[serde(flatten)]
    user: U,
}

pub struct Issuer {
    key: SigningKey,
    /// The signing key's public half first, then any others being rotated in or out.
    verifying: Vec<VerifyingKey>,
    algorithm: JwtAlgorithm,
    header_b64: String,
    lifetime: i64,
    rng: SystemRandom,
    kid: Arc<str>,
    minted: metrics::Counter,
    reused: metrics::Counter,
}

impl Issuer {
    pub fn new(
        key: SigningKey,
        algorithm: JwtAlgorithm,
        lifetime_secs: u64,
        kid_header: bool,
    ) -> Issuer {
        let header = if kid_header {
            format!(r#"{{"alg":"{}","kid":"{}"}}"#, algorithm.name(), key.kid)
        } else {
            // Exactly Barong's header.
            format!(r#"{{"alg":"{}"}}"#, algorithm.name())
        };
        let kid: Arc<str> = key.kid.as_str().into();
        Issuer {
            verifying: vec![key.verifying_key()],
            key,
            algorithm,
            header_b64: b64url(header.as_bytes()),
            lifetime: lifetime_secs as i64,
            rng: SystemRandom::new(),
            kid,
            minted: metrics::counter!("portcullis_jwt_minted_total"),
            reused: metrics::counter!("portcullis_jwt_reused_total"),
        }
    }

    /// Publishes and accepts `others` besides the signing key (key rotation).
    pub fn with_verifying_keys(mut self, others: Vec<VerifyingKey>) -> Issuer {
        for other in others {
            if !self.verifying.iter().any(|k| k.kid == other.kid) {
                self.verifying.push(other);
            }
        }
        self
    }

    pub fn kid(&self) -> &Arc<str> {
        &self.kid
    }

    /// Counts a token handed out again instead of signed anew.
    pub fn count_reuse(&self) {
        self.reused.increment(1);
    }

    pub fn lifetime(&self) -> i64 {
        self.lifetime
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    fn signing_alg(&self) -> &'static signature::RsaSignatureEncoding {
        match self.algorithm {
            JwtAlgorithm::RS256 => &signature::RSA_PKCS1_SHA256,
            JwtAlgorithm::RS384 => &signature::RSA_PKCS1_SHA384,
            JwtAlgorithm::RS512 => &signature::RSA_PKCS1_SHA512,
        }
    }

    /// Signs any claims object as a compact JWS.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        self.sign_with_header(&self.header_b64, claims)
    }

    /// Signs `claims` under the encoded JOSE header `header_b64`.
    fn sign_with_header<T: Serialize>(&self, header_b64: &str, claims: &T) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let mut token = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 350);
        token.push_str(header_b64);
        token.push('.');
        token.push_str(&b64url(&payload));
        let mut sig = vec![0u8; self.key.pair.public_modulus_len()];
        self.key
            .pair
            .sign(self.signing_alg(), &self.rng, token.as_bytes(), &mut sig)
            .expect("RSA signing with a valid key");
        token.push('.');
        token.push_str(&b64url(&sig));
        token
    }

    /// An RS256 signature of `input` with the signing key (for JWS envelopes).
    pub fn sign_bytes(&self, input: &[u8]) -> Vec<u8> {
        let mut sig = vec![0u8; self.key.pair.public_modulus_len()];
        self.key
            .pair
            .sign(self.signing_alg(), &self.rng, input, &mut sig)
            .expect("RSA signing with a valid key");
        sig
    }

    /// A token with Barong's standard claims (`iat, exp, sub, iss, aud, jti`) plus `extra`.
    pub fn sign_standard<U: Serialize>(&self, sub: &str, extra: U, now: i64) -> String {
        self.sign(&Envelope {
            iat: now,
            exp: now + self.lifetime,
            sub,
            iss: ISSUER,
            aud: AUDIENCE,
            jti: random_hex::<10>(),
            user: extra,
        })
    }

    /// The session token for `subject`, as Barong's authz mints it (§2.1).
    pub fn mint_session(&self, subject: &SubjectRecord, now: i64) -> MintedToken {
        let jwt = match subject.kind {
            SubjectKind::User => self.sign_standard(
                "session",
                UserClaims {
                    uid: &subject.uid,
                    username: subject.username.as_deref(),
                    email: &subject.email,
                    role: &subject.role,
                    level: subject.level,
                    state: &subject.state,
                    referral_id: subject.referral_id,
                },
                now,
            ),
            SubjectKind::ServiceAccount => self.sign_standard(
                "session",
                ServiceAccountClaims {
                    uid: &subject.uid,
                    email: &subject.email,
                    role: &subject.role,
                    level: subject.level,
                    state: &subject.state,
                },
                now,
            ),
        };
        self.minted.increment(1);
        MintedToken {
            bearer: Bearer::new(&jwt),
            iat: now,
            exp: now + self.lifetime,
            kid: self.kid.clone(),
        }
    }

    /// A Back Office access token for `subject` (seed 003): the session claims, `sub`
    /// `backoffice`, the family id in `sid`, `lifetime_secs` long, and always a `kid` header
    /// (these tokens are new, so Barong's kid-less header is not needed, and the JWKS names
    /// the key). Returns the JWT and its expiry.
    pub fn mint_access(
        &self,
        subject: &SubjectRecord,
        family: &str,
        lifetime_secs: i64,
        now: i64,
    ) -> (String, i64) {
        #[derive(Serialize)]
        struct Access<'a> {
            #[serde(flatten)]
            user: UserClaims<'a>,
            sid: &'a str,
        }
        let header = format!(
            r#"{{"alg":"{}","kid":"{}"}}"#,
            self.algorithm.name(),
            self.key.kid
        );
        let exp = now + lifetime_secs;
        let claims = Envelope {
            iat: now,
            exp,
            sub: BACKOFFICE_SUBJECT,
            iss: ISSUER,
            aud: AUDIENCE,
            jti: random_hex::<10>(),
            user: Access {
                user: UserClaims {
                    uid: &subject.uid,
                    username: subject.username.as_deref(),
                    email: &subject.email,
                    role: &subject.role,
                    level: subject.level,
                    state: &subject.state,
                    referral_id: subject.referral_id,
                },
                sid: family,
            },
        };
        self.minted.increment(1);
        (
            self.sign_with_header(&b64url(header.as_bytes()), &claims),
            exp,
        )
    }

    /// A Back Office access token's claims, when `token` is one of ours. The header is read
    /// first: a token without the kid of a key we publish (an upstream's own bearer token,
    /// say) is turned away before any RSA work.
    pub fn verify_access(&self, token: &str, now: i64) -> Option<Map<String, Value>> {
        let unverified = Unverified::read(token, jws_algorithm(self.algorithm)).ok()?;
        let kid = unverified.kid()?;
        let key = self.verifying.iter().find(|k| k.kid == kid)?;
        let rules = Rules {
            subject: Some(BACKOFFICE_SUBJECT),
            ..OWN_TOKENS
        };
        unverified
            .verify(std::iter::once(key.decoding()), &rules, now)
            .ok()
    }

    /// Verifies a token we signed: signature, `exp`, `nbf`, `iat`, `jti`, `iss`, `aud`, and
    /// `sub` when `expected_sub` is given. Returns the claims.
    pub fn verify(
        &self,
        token: &str,
        expected_sub: Option<&str>,
        now: i64,
    ) -> Result<Map<String, Value>, VerifyError> {
        let token = Unverified::read(token, jws_algorithm(self.algorithm))?;
        // With a kid, only that key; without one (Barong's header), any key we publish.
        let kid = token.kid();
        let keys = self
            .verifying
            .iter()
            .filter(|k| kid.is_none_or(|kid| kid == k.kid))
            .map(VerifyingKey::decoding);
        let rules = Rules {
            subject: expected_sub,
            ..OWN_TOKENS
        };
        token.verify(keys, &rules, now)
    }

    /// `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .verifying
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "RSA",
                    "use": "sig",
                    "alg": self.algorithm.name(),
                    "kid": k.kid,
                    "n": k.n,
                    "e": k.e,
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::b64url_decode;

    fn issuer(kid_header: bool) -> Issuer {
        Issuer::new(
            SigningKey::generate(),
            JwtAlgorithm::RS256,
            3600,
            kid_header,
        )
    }

    fn user() -> SubjectRecord {
        SubjectRecord {
            kind: SubjectKind::User,
            id: 7,
            uid: "ID5FFA98DC27".into(),
            username: None,
            email: "admin@barong.io".into(),
            role: "admin".into(),
            level: 3,
            state: "active".into(),
            referral_id: None,
            otp: false,
        }
    }

    fn decode_part(token: &str, index: usize) -> String {
        String::from_utf8(b64url_decode(token.split('.').nth(index).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn a_bearer_is_one_checked_header_value_shared_by_every_use() {
        let issuer = issuer(false);
        let token = issuer.mint_session(&user(), 1_700_000_000);
        let bearer = &token.bearer;
        assert_eq!(bearer.as_str(), format!("Bearer {}", token.jwt()));
        assert_eq!(bearer.header_value(), bearer.as_str());
        assert!(
            issuer
                .verify(token.jwt(), Some("session"), 1_700_000_001)
                .is_ok()
        );
        // The same bytes each time, not a copy per request.
        let (one, two) = (bearer.header_value(), bearer.clone().header_value());
        assert_eq!(one.as_bytes().as_ptr(), two.as_bytes().as_ptr());
    }

    #[test]
    fn only_our_access_tokens_verify_as_back_office_ones() {
        let ours = issuer(false);
        let now = 1_700_000_000;
        let (token, exp) = ours.mint_access(&user(), "fam-1", 900, now);
        assert_eq!(exp, now + 900);
        assert!(decode_part(&token, 0).contains(&format!("\"kid\":\"{}\"", ours.kid())));
        let claims = ours.verify_access(&token, now + 10).unwrap();
        assert_eq!(claims["sub"], "backoffice");
        assert_eq!(claims["sid"], "fam-1");
        assert_eq!(claims["uid"], "ID5FFA98DC27");
        // Expired, another issuer's, or a session token: not a Back Office token.
        assert!(ours.verify_access(&token, now + 901).is_none());
        let (foreign, _) = issuer(true).mint_access(&user(), "fam-1", 900, now);
        assert!(ours.verify_access(&foreign, now).is_none());
        let session = issuer(true).mint_session(&user(), now);
        assert!(ours.verify_access(session.jwt(), now).is_none());
        let own_session = ours.mint_session(&user(), now);
        assert!(ours.verify_access(own_session.jwt(), now).is_none());
        assert!(ours.verify_access("not.a.token", now).is_none());
    }

    #[test]
    fn session_claims_follow_barong_order() {
        let issuer = issuer(false);
        let token = issuer.mint_session(&user(), 1_606_895_430);
        assert_eq!(decode_part(token.jwt(), 0), r#"{"alg":"RS256"}"#);
        let payload = decode_part(token.jwt(), 1);
        let jti_start = payload.find(r#""jti":""#).unwrap() + 7;
        let jti = &payload[jti_start..jti_start + 20];
        assert!(jti.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            payload,
            format!(
                r#"{{"iat":1606895430,"exp":1606899030,"sub":"session","iss":"barong","aud":["peatio","barong"],"jti":"{jti}","uid":"ID5FFA98DC27","username":null,"email":"admin@barong.io","role":"admin","level":3,"state":"active","referral_id":null}}"#
            )
        );
    }

    #[test]
    fn service_accounts_carry_no_username_or_referral() {
        let issuer = issuer(true);
        let mut sa = user();
        sa.kind = SubjectKind::ServiceAccount;
        sa.uid = "SI0123456789".into();
        let token = issuer.mint_session(&sa, 100);
        let header = decode_part(token.jwt(), 0);
        assert_eq!(
            header,
            format!(r#"{{"alg":"RS256","kid":"{}"}}"#, issuer.kid())
        );
        let payload = decode_part(token.jwt(), 1);
        assert!(
            !payload.contains("username") && !payload.contains("referral_id"),
            "{payload}"
        );
        assert!(payload.ends_with(r#""uid":"SI0123456789","email":"admin@barong.io","role":"admin","level":3,"state":"active"}"#));
    }

    #[test]
    fn verify_accepts_own_tokens_and_names_failures() {
        let issuer = issuer(true);
        let now = 1_700_000_000;
        let token = issuer.mint_session(&user(), now);
        let claims = issuer
            .verify(token.jwt(), Some("session"), now + 10)
            .unwrap();
        assert_eq!(claims["uid"], "ID5FFA98DC27");
        assert_eq!(
            issuer.verify(token.jwt(), Some("session"), now + 3600),
            Err(VerifyError::Expired)
        );
        assert_eq!(
            issuer.verify(token.jwt(), Some("confirmation"), now),
            Err(VerifyError::Subject("session".into()))
        );
        assert_eq!(issuer.verify("a.b", None, now), Err(VerifyError::Segments));
        // Flip the signature's first character (its last one may only carry padding bits).
        let mut tampered = token.jwt().to_string();
        let at = tampered.rfind('.').unwrap() + 1;
        let flipped = if &tampered[at..at + 1] == "A" {
            "B"
        } else {
            "A"
        };
        tampered.replace_range(at..at + 1, flipped);
        assert_eq!(
            issuer.verify(&tampered, None, now),
            Err(VerifyError::Signature)
        );
        let other = self::issuer(true).mint_session(&user(), now);
        assert_eq!(
            issuer.verify(other.jwt(), None, now),
            Err(VerifyError::Signature)
        );
        let no_jti =
            issuer.sign(&serde_json::json!({"exp": now + 10, "iss": "barong", "aud": "barong"}));
        assert_eq!(issuer.verify(&no_jti, None, now), Err(VerifyError::Jti));
        let wrong_iss = issuer.sign(
            &serde_json::json!({"exp": now + 10, "jti": "x", "iss": "evil", "aud": "barong"}),
        );
        assert_eq!(
            issuer.verify(&wrong_iss, None, now).unwrap_err().word(),
            "evil"
        );
    }

    #[test]
    fn rotation_publishes_and_accepts_the_other_keys() {
        let old = SigningKey::generate();
        let old_public = VerifyingKey::from_pem(&old.public_pem()).unwrap();
        assert_eq!(old_public.kid, old.kid);
        let old_issuer = Issuer::new(old, JwtAlgorithm::RS256, 3600, true);
        let token = old_issuer.mint_session(&user(), 1_700_000_000);
        let new_issuer = issuer(true).with_verifying_keys(vec![old_public]);
        assert_eq!(new_issuer.jwks()["keys"].as_array().unwrap().len(), 2);
        assert!(
            new_issuer
                .verify(token.jwt(), Some("session"), 1_700_000_001)
                .is_ok()
        );
        // Without the old key published, its tokens no longer verify.
        assert_eq!(
            issuer(true).verify(token.jwt(), None, 1_700_000_001),
            Err(VerifyError::Signature)
        );
    }

    #[test]
    fn jwks_publishes_the_key() {
        let issuer = issuer(true);
        let jwks = issuer.jwks();
        assert_eq!(jwks["keys"][0]["kid"], issuer.kid().as_ref());
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
        assert_eq!(jwks["keys"][0]["alg"], "RS256");
    }
}
