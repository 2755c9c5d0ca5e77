//! KYCAID's callback signature ("callback integrity verification"): the header
//! `x-data-integrity` carries the lowercase hex HMAC-SHA512, keyed with the API token, of the
//! standard, padded Base64 of the raw request body. Only KYCAID and we know the token, so a
//! callback that verifies came from KYCAID and was not changed on the way.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The header KYCAID puts its signature in.
pub const SIGNATURE_HEADER: &str = "x-data-integrity";

/// The HMAC of the body as KYCAID computes it (over the Base64 text, not the bytes).
fn tag(token: &str, body: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA512, token.as_bytes());
    hmac::sign(&key, STANDARD.encode(body).as_bytes())
}

/// The signature KYCAID sends with `body` (for tests and for checking a setup by hand).
pub fn sign(token: &str, body: &[u8]) -> String {
    hex::encode(tag(token, body).as_ref())
}

/// True when `signature_hex` is KYCAID's signature of `body` under `token`. Hex of either case
/// is accepted; the comparison takes the same time wherever the first wrong byte is.
pub fn signature_valid(token: &str, body: &[u8], signature_hex: &[u8]) -> bool {
    let Ok(sent) = hex::decode(signature_hex) else {
        return false;
    };
    crate::crypto::constant_time_eq(tag(token, body).as_ref(), &sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KYCAID's published example (docs.kycaid.com, "Callback integrity verification").
    const BODY: &str = r#"{"request_id":"61a7dbcc012d9042e909cf006e7b412d6ba5","type":"VERIFICATION_STATUS_CHANGED","applicant_id":"4141cc1b18dba048470b2961cb4592f480fe","verification_id":"2cf795e713be1040e50b202164ee17bfdfbe","form_id":"58bed87600dd9944f02ba0c9cd8b32d6bd4c","verification_status":"pending"}"#;
    const TOKEN: &str = "28c6f7cc0345a04eee0b535039b1c5a62547";
    const SIGNATURE: &str = "f7681b097b77928fc031d614709976796057c306cf77fdd449bb414937bd87678d908d7efaa65e9b1dd65b9eeea2121ea75bd9007f44fe8fcd7c9ac6cdeeef0e";

    #[test]
    fn kycaids_published_example_signs_and_verifies() {
        assert_eq!(sign(TOKEN, BODY.as_bytes()), SIGNATURE);
        assert!(signature_valid(
            TOKEN,
            BODY.as_bytes(),
            SIGNATURE.as_bytes()
        ));
        assert!(signature_valid(
            TOKEN,
            BODY.as_bytes(),
            SIGNATURE.to_ascii_uppercase().as_bytes()
        ));
    }

    #[test]
    fn anything_else_fails() {
        let body = BODY.as_bytes();
        let other_token = "38c6f7cc0345a04eee0b535039b1c5a62547";
        assert!(!signature_valid(other_token, body, SIGNATURE.as_bytes()));
        let changed = BODY.replace("pending", "completed");
        assert!(!signature_valid(
            TOKEN,
            changed.as_bytes(),
            SIGNATURE.as_bytes()
        ));
        // The HMAC of the raw bytes (not of their Base64) is not KYCAID's signature.
        let key = hmac::Key::new(hmac::HMAC_SHA512, TOKEN.as_bytes());
        let of_raw_bytes = hex::encode(hmac::sign(&key, body).as_ref());
        assert!(!signature_valid(TOKEN, body, of_raw_bytes.as_bytes()));
        for sent in ["", "not hex", &SIGNATURE[..64], &format!("{SIGNATURE}00")] {
            assert!(!signature_valid(TOKEN, body, sent.as_bytes()), "{sent}");
        }
    }
}
