//! Auth0 id_tokens: RS256 signatures checked against the tenant's JWKS (cached, refetched
//! when an unknown `kid` shows up), then the claims of OIDC Core 3.1.3.7: expiry (and `nbf`),
//! issuer `https://<domain>/`, audience = our client id, the authorized party (`azp`) and the
//! nonce the front end asked for. The JWKS URL is a setting so that tests can serve one
//! locally. Reading, signature and registered claims go through `jwt::verify`, the path our
//! own tokens take; the key cache, `azp` and the nonce are this module's.
//!
//! A valid token is not yet a login: [`Identity::from_claims`] asks for a subject and an email
//! Auth0 says is verified (decisions.md #25), since a tenant may issue tokens for addresses
//! nobody proved to own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config;
use crate::crypto::constant_time_eq;
use crate::domain::validation;
use crate::jwt::verify::{Claims, Rules, Unverified, VerifyError};
use crate::net::outbound::Outbound;
use crate::store::identities::SUBJECT_WIDTH;

/// The provider name of Auth0 identities bound to accounts.
pub const PROVIDER: &str = "auth0";

/// Why an id_token was refused (all answer `identity.session.auth0.invalid_params`).
#[derive(Debug, PartialEq, Eq)]
pub enum Auth0Error {
    Disabled,
    Malformed,
    UnknownKey,
    KeysUnavailable(String),
    Signature,
    Expired,
    /// `nbf` is still ahead.
    Immature,
    Issuer,
    Audience,
    /// `azp` absent while `aud` names several parties, or naming another client.
    AuthorizedParty,
    /// The front end sent a nonce and the token does not carry it.
    Nonce,
}

impl From<VerifyError> for Auth0Error {
    fn from(refused: VerifyError) -> Auth0Error {
        match refused {
            VerifyError::Segments | VerifyError::Encoding | VerifyError::Algorithm => {
                Auth0Error::Malformed
            }
            VerifyError::Signature => Auth0Error::Signature,
            VerifyError::Expired => Auth0Error::Expired,
            VerifyError::Immature => Auth0Error::Immature,
            VerifyError::Issuer(_) => Auth0Error::Issuer,
            VerifyError::Audience => Auth0Error::Audience,
            // Not asked of Auth0's tokens (no `iat`, `jti` or `sub` rule here; the subject is
            // judged by `Identity::from_claims`): never returned for them.
            VerifyError::IssuedAt | VerifyError::Jti | VerifyError::Subject(_) => {
                Auth0Error::Malformed
            }
        }
    }
}

struct KeySet {
    keys: HashMap<String, DecodingKey>,
    fetched: Instant,
}

pub struct Auth0 {
    settings: config::Auth0,
    outbound: Outbound,
    keys: Mutex<Option<KeySet>>,
}

/// A refetch for an unknown kid happens at most this often (a flood of made-up kids must not
/// turn into a flood of requests to Auth0).
const MIN_REFETCH: Duration = Duration::from_secs(10);

impl Auth0 {
    pub fn new(settings: config::Auth0, outbound: Outbound) -> Auth0 {
        Auth0 {
            settings,
            outbound,
            keys: Mutex::new(None),
        }
    }

    /// The token's claims when it is a valid id_token for our client, issued for `nonce` when
    /// the front end sent one.
    pub async fn verify(
        &self,
        token: &str,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<Claims, Auth0Error> {
        if !self.settings.enabled() {
            return Err(Auth0Error::Disabled);
        }
        // Auth0 signs id_tokens with RS256 only; any other alg is refused before a key fetch.
        let unverified = Unverified::read(token, Algorithm::RS256).map_err(Auth0Error::from)?;
        let key = self.key(unverified.kid().unwrap_or("")).await?;
        let claims = unverified.signed_claims([&key]).map_err(Auth0Error::from)?;
        check_claims(&self.settings, &claims, nonce, now)?;
        Ok(claims)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, Auth0Error> {
        let mut cached = self.keys.lock().await;
        let ttl = self.settings.jwks_cache;
        let stale = cached
            .as_ref()
            .is_none_or(|set| set.fetched.elapsed() >= ttl);
        let unknown = cached
            .as_ref()
            .is_some_and(|set| !set.keys.contains_key(kid));
        let may_refetch = cached
            .as_ref()
            .is_none_or(|set| set.fetched.elapsed() >= MIN_REFETCH);
        if stale || (unknown && may_refetch) {
            *cached = Some(self.fetch().await?);
        }
        cached
            .as_ref()
            .and_then(|set| set.keys.get(kid).cloned())
            .ok_or(Auth0Error::UnknownKey)
    }

    async fn fetch(&self) -> Result<KeySet, Auth0Error> {
        let url = self.settings.jwks_url();
        let reply = self
            .outbound
            .get(&url, Duration::from_secs(5))
            .await
            .map_err(|e| Auth0Error::KeysUnavailable(e.to_string()))?;
        if reply.status != 200 {
            return Err(Auth0Error::KeysUnavailable(format!(
                "{url} answered {}",
                reply.status
            )));
        }
        let jwks: Value = serde_json::from_slice(&reply.body)
            .map_err(|e| Auth0Error::KeysUnavailable(e.to_string()))?;
        let mut keys = HashMap::new();
        for key in jwks
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = |name: &str| key.get(name).and_then(Value::as_str);
            if text("kty") != Some("RSA") {
                continue;
            }
            // A key we cannot read is left out, as if the tenant had not published it.
            if let (Some(kid), Some(n), Some(e)) = (text("kid"), text("n"), text("e"))
                && let Ok(key) = DecodingKey::from_rsa_components(n, e)
            {
                keys.insert(kid.to_string(), key);
            }
        }
        Ok(KeySet {
            keys,
            fetched: Instant::now(),
        })
    }
}

/// The checks of OIDC Core 3.1.3.7 that follow the signature: the registered claims as every
/// token of ours is checked (`exp`, `nbf`, `iss`, `aud`), then the authorized party and the
/// nonce.
fn check_claims(
    settings: &config::Auth0,
    claims: &Claims,
    nonce: Option<&str>,
    now: i64,
) -> Result<(), Auth0Error> {
    let domain = settings.domain.as_deref().unwrap_or_default();
    let issuer = format!("https://{}/", domain.trim_end_matches('/'));
    // Without a client id, no audience is ours (an empty `aud` must not match it).
    let client = [settings.client_id.as_str()];
    let audiences: &[&str] = if settings.client_id.is_empty() {
        &[]
    } else {
        &client
    };
    let rules = Rules {
        issuer: &issuer,
        audiences,
        iat_ahead: None,
        jti: false,
        subject: None,
    };
    rules.check(claims, now).map_err(Auth0Error::from)?;
    if !authorized_party_ok(claims, &settings.client_id) {
        return Err(Auth0Error::AuthorizedParty);
    }
    if !nonce_ok(claims, nonce) {
        return Err(Auth0Error::Nonce);
    }
    Ok(())
}

/// A token issued to several audiences must say which of them it was issued to (`azp`), and
/// an `azp` that is present must be us: otherwise a token another client obtained, naming us
/// among its audiences, would log in here.
fn authorized_party_ok(claims: &Claims, client_id: &str) -> bool {
    let several_audiences = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|list| list.len() > 1);
    match claims.get("azp") {
        Some(azp) => azp.as_str() == Some(client_id),
        None => !several_audiences,
    }
}

/// When the front end sent the nonce it put in the authorization request, the token must
/// carry the same one, so that a token issued for another login cannot be replayed into this
/// one. Without a nonce there is nothing to compare.
fn nonce_ok(claims: &Claims, expected: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|nonce| constant_time_eq(nonce.as_bytes(), expected.as_bytes()))
}

/// Who a valid id_token says the user is: the Auth0 subject, and an email Auth0 verified.
#[derive(Debug, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: String,
}

/// Why a valid id_token still logs into no account (all answer 401
/// `identity.session.auth0.invalid_params`).
#[derive(Debug, PartialEq, Eq)]
pub enum IdentityError {
    /// `sub` absent, not a string, empty, longer than we store, or holding control characters.
    Subject,
    /// `email` absent, not a string, or not an address we would accept at signup.
    Email,
    /// `email_verified` is anything but JSON `true` (false, absent, the string "true").
    UnverifiedEmail,
}

impl Identity {
    pub fn from_claims(claims: &Claims) -> Result<Identity, IdentityError> {
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|sub| subject_valid(sub))
            .ok_or(IdentityError::Subject)?;
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|email| validation::email_valid(email))
            .ok_or(IdentityError::Email)?;
        if claims.get("email_verified") != Some(&Value::Bool(true)) {
            return Err(IdentityError::UnverifiedEmail);
        }
        Ok(Identity {
            subject: subject.to_string(),
            email: email.to_string(),
        })
    }
}

/// A subject we can store as it is: cutting or cleaning one would make it another identity.
fn subject_valid(subject: &str) -> bool {
    !subject.is_empty()
        && subject.chars().count() <= SUBJECT_WIDTH
        && !subject.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn settings() -> config::Auth0 {
        config::Auth0 {
            domain: Some("tenant.auth0.test".into()),
            client_id: "client-1".into(),
            jwks_url: None,
            jwks_cache: Duration::from_secs(600),
        }
    }

    /// Valid claims for `client-1`, with `extra` merged over them (`null` removes one).
    fn claims(extra: Value) -> Claims {
        let mut all = json!({
            "iss": "https://tenant.auth0.test/",
            "aud": "client-1",
            "exp": NOW + 600,
            "sub": "auth0|abc",
            "email": "someone@example.com",
            "email_verified": true,
        });
        for (name, value) in extra.as_object().unwrap() {
            if value.is_null() {
                all.as_object_mut().unwrap().remove(name);
            } else {
                all[name] = value.clone();
            }
        }
        all.as_object().unwrap().clone()
    }

    fn check(extra: Value, nonce: Option<&str>) -> Result<(), Auth0Error> {
        check_claims(&settings(), &claims(extra), nonce, NOW)
    }

    #[test]
    fn the_authorized_party_is_needed_only_when_several_audiences_are_named() {
        assert_eq!(check(json!({}), None), Ok(()));
        assert_eq!(check(json!({ "aud": ["client-1"] }), None), Ok(()));
        assert_eq!(
            check(
                json!({ "aud": ["client-1", "api"], "azp": "client-1" }),
                None
            ),
            Ok(())
        );
        assert_eq!(
            check(json!({ "aud": ["client-1", "api"] }), None),
            Err(Auth0Error::AuthorizedParty)
        );
        assert_eq!(
            check(
                json!({ "aud": ["client-1", "api"], "azp": "client-2" }),
                None
            ),
            Err(Auth0Error::AuthorizedParty)
        );
    }

    #[test]
    fn an_authorized_party_that_is_present_must_be_us() {
        assert_eq!(check(json!({ "azp": "client-1" }), None), Ok(()));
        for azp in [json!("client-2"), json!(""), json!(["client-1"]), json!(1)] {
            assert_eq!(
                check(json!({ "azp": azp }), None),
                Err(Auth0Error::AuthorizedParty),
                "azp {azp}"
            );
        }
    }

    #[test]
    fn the_audience_is_checked_before_the_authorized_party() {
        assert_eq!(
            check(json!({ "aud": ["api", "other"], "azp": "client-1" }), None),
            Err(Auth0Error::Audience)
        );
    }

    #[test]
    fn a_nonce_sent_by_the_front_end_must_be_in_the_token() {
        assert_eq!(check(json!({ "nonce": "n-1" }), Some("n-1")), Ok(()));
        assert_eq!(check(json!({}), Some("n-1")), Err(Auth0Error::Nonce));
        assert_eq!(
            check(json!({ "nonce": "n-2" }), Some("n-1")),
            Err(Auth0Error::Nonce)
        );
        assert_eq!(
            check(json!({ "nonce": "n-1x" }), Some("n-1")),
            Err(Auth0Error::Nonce)
        );
        assert_eq!(
            check(json!({ "nonce": 1 }), Some("1")),
            Err(Auth0Error::Nonce)
        );
    }

    #[test]
    fn without_a_nonce_from_the_front_end_the_claim_is_not_compared() {
        assert_eq!(check(json!({}), None), Ok(()));
        assert_eq!(check(json!({ "nonce": "anything" }), None), Ok(()));
    }

    #[test]
    fn expiry_issuer_and_audience_are_still_checked() {
        assert_eq!(check(json!({ "exp": NOW }), None), Err(Auth0Error::Expired));
        assert_eq!(
            check(json!({ "exp": null }), None),
            Err(Auth0Error::Expired)
        );
        assert_eq!(
            check(json!({ "iss": "https://other.auth0.test/" }), None),
            Err(Auth0Error::Issuer)
        );
        assert_eq!(
            check(json!({ "aud": "client-2" }), None),
            Err(Auth0Error::Audience)
        );
    }

    #[test]
    fn a_token_not_yet_valid_is_refused_like_our_own() {
        assert_eq!(
            check(json!({ "nbf": NOW + 1 }), None),
            Err(Auth0Error::Immature)
        );
        assert_eq!(check(json!({ "nbf": NOW }), None), Ok(()));
    }

    #[test]
    fn without_a_client_id_no_audience_is_ours() {
        let mut settings = settings();
        settings.client_id = String::new();
        assert_eq!(
            check_claims(&settings, &claims(json!({ "aud": "" })), None, NOW),
            Err(Auth0Error::Audience)
        );
    }

    #[test]
    fn only_json_true_verifies_an_email() {
        assert!(Identity::from_claims(&claims(json!({}))).is_ok());
        for verified in [json!(false), json!("true"), json!(1), Value::Null] {
            assert_eq!(
                Identity::from_claims(&claims(json!({ "email_verified": verified }))),
                Err(IdentityError::UnverifiedEmail),
                "email_verified {verified}"
            );
        }
    }

    #[test]
    fn the_identity_is_the_subject_and_the_trimmed_email() {
        assert_eq!(
            Identity::from_claims(&claims(json!({ "email": " Someone@Example.com " }))),
            Ok(Identity {
                subject: "auth0|abc".into(),
                email: "Someone@Example.com".into(),
            })
        );
    }

    #[test]
    fn a_subject_must_fit_its_column_and_be_plain_text() {
        let widest = "s".repeat(SUBJECT_WIDTH);
        assert!(Identity::from_claims(&claims(json!({ "sub": widest }))).is_ok());
        for sub in [
            Value::Null,
            json!(""),
            json!(42),
            json!("s".repeat(SUBJECT_WIDTH + 1)),
            json!("auth0|a\u{0}b"),
            json!("auth0|a\nb"),
        ] {
            assert_eq!(
                Identity::from_claims(&claims(json!({ "sub": sub }))),
                Err(IdentityError::Subject),
                "sub {sub}"
            );
        }
    }

    #[test]
    fn an_email_must_be_one_we_would_accept_at_signup() {
        let long = format!("{}@example.com", "a".repeat(300));
        for email in [
            Value::Null,
            json!(""),
            json!(true),
            json!("not-an-email"),
            json!(long),
            json!("a\u{0}b@example.com"),
        ] {
            assert_eq!(
                Identity::from_claims(&claims(json!({ "email": email }))),
                Err(IdentityError::Email),
                "email {email}"
            );
        }
    }
}
