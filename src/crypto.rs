//! Small cryptographic building blocks, all on aws-lc-rs: randomness, digests, constant-time
//! comparison, and the AEAD box that encrypts secrets at rest.

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).expect("the system random number generator failed");
    out
}

/// Lowercase hex of `N` random bytes (`2N` characters).
pub fn random_hex<const N: usize>() -> String {
    hex::encode(random_bytes::<N>())
}

/// URL-safe base64 (no padding) of `N` random bytes.
pub fn random_token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

/// `n` random decimal digits (a one-time code), each uniform: bytes of 250 and up are drawn
/// again, so no digit is likelier than another.
pub fn random_digits(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for byte in random_bytes::<16>() {
            if byte < 250 && out.len() < n {
                out.push(char::from(b'0' + byte % 10));
            }
        }
    }
    out
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex of the SHA-256 digest. Written into a byte buffer: `hex::encode` collects
/// the string a char at a time, which cost 1.7k instructions per session lookup (callgrind).
pub fn sha256_hex(data: &[u8]) -> String {
    let mut out = [0u8; 64];
    // 32 bytes always fit 64 digits, and hex digits are ASCII.
    let _ = hex::encode_to_slice(sha256(data), &mut out);
    std::str::from_utf8(&out).unwrap_or_default().to_owned()
}

/// Equality that takes the same time whatever the position of the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Authenticated encryption of secrets at rest (API-key and TOTP secrets, personal data).
///
/// Each value is sealed with AES-256-GCM under a random nonce, and bound to a context string
/// (for example `api_key:<kid>`) so that a ciphertext copied onto another row fails to open.
/// Stored form: `v1:` + base64(nonce ‖ ciphertext ‖ tag).
pub struct SecretBox {
    key: RandomizedNonceKey,
    /// Keys [`SecretBox::blind_index`]; derived from the box's key, so it needs no setting of
    /// its own and is as secret as the key.
    index_key: aws_lc_rs::hmac::Key,
}

const SECRET_BOX_VERSION: &str = "v1:";

#[derive(Debug, PartialEq, Eq)]
pub struct OpenError;

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a sealed secret could not be opened (wrong key or tampered value)")
    }
}

impl std::error::Error for OpenError {}

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> SecretBox {
        use aws_lc_rs::hmac;
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, key),
            b"portcullis blind index v1",
        );
        SecretBox {
            key: RandomizedNonceKey::new(&AES_256_GCM, key).expect("a 32-byte key is valid"),
            index_key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    /// A searchable stand-in for a sealed value: hex HMAC-SHA256 of (`context`, `value`) under
    /// a key derived from the box's key. Equal values give equal indexes, so a column of them
    /// can be looked up; without the key (a database reader) nobody can compute one, so short
    /// values (phone numbers, 5-digit codes) cannot be found by trying them all, as they can
    /// from Barong's CRC32 index.
    pub fn blind_index(&self, context: &str, value: &[u8]) -> String {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.index_key);
        // The length prefix keeps (context, value) pairs from running into each other.
        ctx.update(&(context.len() as u64).to_be_bytes());
        ctx.update(context.as_bytes());
        ctx.update(value);
        hex::encode(ctx.sign().as_ref())
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut in_out)
            .expect("AES-GCM sealing does not fail for in-memory buffers");
        let mut blob = nonce.as_ref().to_vec();
        blob.extend_from_slice(&in_out);
        format!("{SECRET_BOX_VERSION}{}", STANDARD.encode(blob))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let encoded = sealed.strip_prefix(SECRET_BOX_VERSION).ok_or(OpenError)?;
        let mut blob = STANDARD.decode(encoded).map_err(|_| OpenError)?;
        let nonce_len = AES_256_GCM.nonce_len();
        if blob.len() < nonce_len + AES_256_GCM.tag_len() {
            return Err(OpenError);
        }
        let nonce = Nonce::try_assume_unique_for_key(&blob[..nonce_len]).map_err(|_| OpenError)?;
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut blob[nonce_len..])
            .map_err(|_| OpenError)?;
        Ok(plaintext.to_vec())
    }

    pub fn open_string(&self, context: &str, sealed: &str) -> Result<String, OpenError> {
        String::from_utf8(self.open(context, sealed)?).map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_is_the_lower_case_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn index_is_keyed_and_bound_to_its_context() {
        let a = SecretBox::new(&[7u8; 32]);
        let b = SecretBox::new(&[8u8; 32]);
        assert_eq!(
            a.blind_index("doc", b"AB123"),
            a.blind_index("doc", b"AB123")
        );
        assert_eq!(a.blind_index("doc", b"AB123").len(), 64);
        assert_ne!(
            a.blind_index("doc", b"AB123"),
            b.blind_index("doc", b"AB123")
        );
        assert_ne!(
            a.blind_index("doc", b"AB123"),
            a.blind_index("other", b"AB123")
        );
    }

    #[test]
    fn secret_box_round_trips_and_binds_context() {
        let sbox = SecretBox::new(&[7u8; 32]);
        let sealed = sbox.seal("api_key:abc", b"s3cret");
        assert!(sealed.starts_with("v1:"));
        assert_eq!(sbox.open("api_key:abc", &sealed).unwrap(), b"s3cret");
        assert_eq!(sbox.open("api_key:other", &sealed), Err(OpenError));
        let other = SecretBox::new(&[8u8; 32]);
        assert_eq!(other.open("api_key:abc", &sealed), Err(OpenError));
        assert_eq!(sbox.open("api_key:abc", "v1:!!"), Err(OpenError));
        assert_eq!(sbox.open("api_key:abc", "v1:AAAA"), Err(OpenError));
        // Two seals of the same value differ (random nonce).
        assert_ne!(sealed, sbox.seal("api_key:abc", b"s3cret"));
    }

    #[test]
    fn random_digits_are_digits_of_the_asked_length() {
        let codes: Vec<String> = (0..50).map(|_| random_digits(5)).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 5 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        // 50 draws of 100 000 values: a repeat is possible but five are not.
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert!(distinct.len() > 45);
    }

    #[test]
    fn blind_index_is_keyed_stable_and_bound_to_its_context() {
        let sbox = SecretBox::new(&[7u8; 32]);
        let index = sbox.blind_index("phone.number", b"380501234567");
        assert_eq!(index.len(), 64);
        assert_eq!(index, sbox.blind_index("phone.number", b"380501234567"));
        assert_ne!(index, sbox.blind_index("phone.number", b"380501234568"));
        assert_ne!(index, sbox.blind_index("phone.code", b"380501234567"));
        let other = SecretBox::new(&[8u8; 32]);
        assert_ne!(index, other.blind_index("phone.number", b"380501234567"));
    }

    #[test]
    fn constant_time_eq_compares_lengths_and_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
