//! Bearer tokens and sealed secrets from outside: verification must refuse garbage cleanly.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis::config::JwtAlgorithm;
use portcullis::crypto::SecretBox;
use portcullis::jwt::{Issuer, SigningKey};

static ISSUER: LazyLock<Issuer> =
    LazyLock::new(|| Issuer::new(SigningKey::generate(), JwtAlgorithm::RS256, 60, true));
static SECRETS: LazyLock<SecretBox> = LazyLock::new(|| SecretBox::new(&[7u8; 32]));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    assert!(ISSUER.verify(text, Some("session"), 1_700_000_000).is_err());
    let _ = SECRETS.open("api_key:x", text);
    let _ = portcullis::jwt::keys::parse_pem(text);
});
