//! TOTP (RFC 6238): 6 digits, 30-second steps, HMAC-SHA1, one step of skew either way —
//! what Vault's TOTP engine does for Barong, so existing authenticator apps keep working.
//! A code is accepted once: the step it matched is remembered until it can no longer match.
//! Handing a new secret to the user's app (the otpauth URI and its QR code) is the `enrolment`
//! submodule's, re-exported here.

use aws_lc_rs::hmac;

use crate::crypto::SecretBox;
use crate::kv::{Kv, KvError};

mod enrolment;
pub use enrolment::{
    BARCODE_SIZE, BarcodeError, SECRET_LEN, new_secret, otpauth_url, qr_png_base64,
};

pub const DIGITS: u32 = 6;
pub const STEP: i64 = 30;
pub const SKEW: i64 = 1;

/// The code for `secret` at time step `counter`.
pub fn code_at(secret: &[u8], counter: u64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let digest = tag.as_ref();
    let offset = (digest[digest.len() - 1] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(DIGITS)
}

/// The time step within the skew window whose code equals `code`, if any.
pub fn matching_step(secret: &[u8], code: &str, unix_time: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let current = unix_time.div_euclid(STEP);
    let mut found = None;
    // Compare every candidate so the time taken does not depend on which one matched.
    for step in (current - SKEW)..=(current + SKEW) {
        if step >= 0 && code_at(secret, step as u64) == wanted {
            found.get_or_insert(step);
        }
    }
    found
}

/// The sealing context of a user's TOTP secret: binds the ciphertext to its account.
pub fn secret_context(uid: &str) -> String {
    format!("totp:{uid}")
}

/// Why a code could not be checked (as opposed to being wrong).
#[derive(Debug)]
pub enum TotpError {
    /// The stored secret does not open with our key: a wrong or rotated key, or a corrupt row.
    Sealed,
    /// Redis, where used steps are remembered, did not answer.
    Kv(KvError),
}

impl std::fmt::Display for TotpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TotpError::Sealed => f.write_str("the TOTP secret does not open"),
            TotpError::Kv(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for TotpError {}

impl From<KvError> for TotpError {
    fn from(err: KvError) -> TotpError {
        TotpError::Kv(err)
    }
}

/// How long a used step is remembered: until no code of it can match any more.
const USED_TTL_MS: u64 = ((SKEW * 2 + 2) * STEP * 1000) as u64;

/// Checks `code` against the sealed secret of account `uid` at `unix_time`, and burns the step
/// it matched, so that the same code is not accepted twice (a second use within the window,
/// from anywhere, is refused). False when the account has no secret, the code is wrong, or
/// its step was used.
pub async fn verify_and_burn(
    secrets: &SecretBox,
    kv: &Kv,
    uid: &str,
    sealed: Option<&str>,
    code: &str,
    unix_time: i64,
) -> Result<bool, TotpError> {
    let Some(sealed) = sealed else {
        return Ok(false);
    };
    let secret = secrets
        .open(&secret_context(uid), sealed)
        .map_err(|_| TotpError::Sealed)?;
    let Some(step) = matching_step(&secret, code, unix_time) else {
        return Ok(false);
    };
    let key = kv.key(&format!("totp_used:{uid}:{step}"));
    Ok(kv.set_nx_px(&key, "1", USED_TTL_MS).await?)
}

/// RFC 4648 base32 without padding (authenticator apps' secret format).
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for &byte in data {
        buffer = (buffer << 8) | byte as u64;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 seed, truncated to 6 digits.
    const SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_vectors() {
        assert_eq!(code_at(SEED, 59 / 30), 287082);
        assert_eq!(code_at(SEED, 1111111109 / 30), 81804);
        assert_eq!(code_at(SEED, 1234567890 / 30), 5924);
        assert_eq!(code_at(SEED, 2000000000 / 30), 279037);
    }

    #[test]
    fn skew_of_one_step() {
        let t = 1_234_567_890;
        let now = format!("{:06}", code_at(SEED, (t / 30) as u64));
        let prev = format!("{:06}", code_at(SEED, (t / 30 - 1) as u64));
        let old = format!("{:06}", code_at(SEED, (t / 30 - 2) as u64));
        assert_eq!(matching_step(SEED, &now, t), Some(t / 30));
        assert_eq!(matching_step(SEED, &prev, t), Some(t / 30 - 1));
        assert_eq!(matching_step(SEED, &old, t), None);
        assert_eq!(matching_step(SEED, "12345", t), None);
        assert_eq!(matching_step(SEED, "abcdef", t), None);
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }
}
