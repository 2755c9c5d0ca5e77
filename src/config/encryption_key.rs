//! `encryption.key`: the AEAD key that seals API-key and TOTP secrets at rest, written as the
//! base64 of exactly 32 bytes (`openssl rand -base64 32`) and decoded once, here.

use base64::Engine;

/// 32 key bytes; `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey([u8; 32]);

impl EncryptionKey {
    /// Decodes the base64 form; surrounding whitespace (a file's newline) is ignored.
    pub fn from_base64(text: &str) -> Result<EncryptionKey, String> {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(EncryptionKey)
            .ok_or_else(|| "must be the base64 of exactly 32 bytes".to_string())
    }

    /// The base64 form, as `from_base64` reads it back (for the development key file).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    pub fn new(bytes: [u8; 32]) -> EncryptionKey {
        EncryptionKey(bytes)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl TryFrom<String> for EncryptionKey {
    type Error = String;
    fn try_from(text: String) -> Result<EncryptionKey, String> {
        EncryptionKey::from_base64(&text)
    }
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exactly_32_bytes() {
        let key = EncryptionKey::new([7; 32]);
        let text = format!("{}\n", key.to_base64());
        assert_eq!(EncryptionKey::from_base64(&text), Ok(key));
        let short = base64::engine::general_purpose::STANDARD.encode([7; 31]);
        assert!(EncryptionKey::from_base64(&short).is_err());
        assert!(EncryptionKey::from_base64("not base64!").is_err());
    }

    #[test]
    fn debug_hides_the_bytes() {
        assert_eq!(
            format!("{:?}", EncryptionKey::new([7; 32])),
            "EncryptionKey(***)"
        );
    }
}
