//! Barong's EventAPI envelope: a JWS in general JSON serialization, RS256 with the same key as
//! the session tokens, so Barong's mailer and applogic verify our events unchanged.
//!
//! ```text
//! {"payload": b64url({"iss":"barong","jti":<uuid>,"iat":now,"exp":now+3600,
//!                     "event":{...body, "name":"<event name>"}}),
//!  "signatures":[{"protected": b64url({"alg":"RS256"}), "header":{"kid":"barong"},
//!                 "signature": b64url(RS256(protected "." payload))}]}
//! ```

use serde_json::{Value, json};

use crate::crypto::b64url;
use crate::jwt::Issuer;

/// Seconds an event's payload stays valid (Barong: one hour).
pub const EVENT_LIFETIME: i64 = 3600;

/// A random (version 4) UUID, as Barong puts in `jti`: hyphenated lowercase hex, the random
/// bytes from the same generator as every other secret here, version and variant set by uuid.
pub fn uuid_v4() -> String {
    uuid::Builder::from_random_bytes(crate::crypto::random_bytes::<16>())
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// The signed envelope of event `name` with `body` (an object; `name` is added to it).
pub fn seal(issuer: &Issuer, name: &str, body: &Value, now: i64) -> Value {
    let mut event = match body {
        Value::Object(map) => map.clone(),
        other => {
            let mut map = serde_json::Map::new();
            map.insert("record".into(), other.clone());
            map
        }
    };
    event.insert("name".into(), Value::String(name.to_string()));
    let payload = json!({
        "iss": "barong",
        "jti": uuid_v4(),
        "iat": now,
        "exp": now + EVENT_LIFETIME,
        "event": Value::Object(event),
    });
    let protected = b64url(br#"{"alg":"RS256"}"#);
    let payload = b64url(&serde_json::to_vec(&payload).expect("event serializes"));
    let signature = b64url(&issuer.sign_bytes(format!("{protected}.{payload}").as_bytes()));
    json!({
        "payload": payload,
        "signatures": [{
            "protected": protected,
            "header": { "kid": "barong" },
            "signature": signature,
        }],
    })
}

/// Splits an event name into Barong's exchange and routing key:
/// `system.user.email.confirmed` → (`barong.events.system`, `user.email.confirmed`).
pub fn route(name: &str) -> Option<(String, &str)> {
    let (category, rest) = name.split_once('.')?;
    Some((format!("barong.events.{category}"), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JwtAlgorithm;
    use crate::jwt::SigningKey;

    #[test]
    fn envelope_verifies_as_a_compact_jws_and_carries_the_event() {
        let issuer = Issuer::new(SigningKey::generate(), JwtAlgorithm::RS256, 3600, true);
        let sealed = seal(
            &issuer,
            "system.user.email.confirmed",
            &json!({"record": {"domain": "x"}}),
            1_700_000_000,
        );
        let signature = &sealed["signatures"][0];
        assert_eq!(signature["header"]["kid"], "barong");
        let compact = format!(
            "{}.{}.{}",
            signature["protected"].as_str().unwrap(),
            sealed["payload"].as_str().unwrap(),
            signature["signature"].as_str().unwrap()
        );
        // Our verifier checks signature and standard claims of exactly this shape.
        let mut verify = issuer.verify(&compact, None, 1_700_000_001);
        // Events have no audience: the only complaint may be about `aud`.
        if let Err(crate::jwt::VerifyError::Audience) = verify {
            verify = Ok(serde_json::Map::new());
        }
        assert!(verify.is_ok(), "{verify:?}");
        let payload: Value = serde_json::from_slice(
            &crate::crypto::b64url_decode(sealed["payload"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(payload["iss"], "barong");
        assert_eq!(payload["exp"], 1_700_003_600);
        assert_eq!(payload["event"]["name"], "system.user.email.confirmed");
        assert_eq!(payload["event"]["record"]["domain"], "x");
        assert_eq!(payload["jti"].as_str().unwrap().len(), 36);
    }

    #[test]
    fn uuids_are_random_version_4_in_lowercase_hyphenated_hex() {
        let uuid = uuid_v4();
        let groups: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(
            uuid.bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(groups[2].starts_with('4'), "version 4: {uuid}");
        assert!(
            matches!(&groups[3][..1], "8" | "9" | "a" | "b"),
            "RFC 4122 variant: {uuid}"
        );
        assert_ne!(uuid, uuid_v4());
    }

    #[test]
    fn routes_follow_barong() {
        assert_eq!(
            route("system.user.email.confirmation.token"),
            Some((
                "barong.events.system".to_string(),
                "user.email.confirmation.token"
            ))
        );
        assert_eq!(
            route("model.user.created"),
            Some(("barong.events.model".to_string(), "user.created"))
        );
        assert_eq!(route("nodot"), None);
    }
}
