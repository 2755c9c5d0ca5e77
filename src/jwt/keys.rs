//! The RSA signing key: loaded from PEM (PKCS#1 or PKCS#8), or generated and kept on disk for
//! development. Its `kid` is the RFC 7638 thumbprint, so it changes exactly when the key does.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::DecodingKey;

use crate::crypto::{b64url, sha256};

pub struct SigningKey {
    pub(crate) pair: KeyPair,
    pub kid: String,
    /// Base64url of the modulus and exponent (JWK `n`, `e`).
    pub n: String,
    pub e: String,
    n_raw: Vec<u8>,
    e_raw: Vec<u8>,
    public_der: Vec<u8>,
}

/// A public key tokens are verified with and the JWKS publishes: the signing key's own, or
/// another one during a rotation (the next key before the switch, the previous one after).
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    pub kid: String,
    pub n: String,
    pub e: String,
    /// Built once, not per token verified.
    decoding: DecodingKey,
}

impl VerifyingKey {
    fn new(n_raw: &[u8], e_raw: &[u8]) -> VerifyingKey {
        let n = b64url(n_raw);
        let e = b64url(e_raw);
        // RFC 7638: the thumbprint of the required members in lexicographic order.
        let thumbprint = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        VerifyingKey {
            kid: b64url(&sha256(thumbprint.as_bytes())),
            n,
            e,
            decoding: DecodingKey::from_rsa_raw_components(n_raw, e_raw),
        }
    }

    /// From a PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`) or a private key's public half.
    pub fn from_pem(pem: &str) -> anyhow::Result<VerifyingKey> {
        let (label, der) = parse_pem(pem).ok_or_else(|| anyhow::anyhow!("not a PEM document"))?;
        match label.as_str() {
            "PUBLIC KEY" | "RSA PUBLIC KEY" => {
                let public = aws_lc_rs::rsa::PublicKey::from_der(&der)
                    .map_err(|e| anyhow::anyhow!("RSA public key rejected: {e}"))?;
                Ok(VerifyingKey::new(
                    public.modulus().big_endian_without_leading_zero(),
                    public.exponent().big_endian_without_leading_zero(),
                ))
            }
            _ => Ok(SigningKey::from_pem(pem)?.verifying_key()),
        }
    }

    /// The key as jsonwebtoken verifies with it.
    pub fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// Where the key came from, for the start-up log.
#[derive(Debug, PartialEq, Eq)]
pub enum KeySource {
    File,
    DevelopmentExisting,
    DevelopmentGenerated,
}

impl SigningKey {
    pub fn from_pem(pem: &str) -> anyhow::Result<SigningKey> {
        let (label, der) = parse_pem(pem).ok_or_else(|| anyhow::anyhow!("not a PEM document"))?;
        let pair = match label.as_str() {
            "RSA PRIVATE KEY" => KeyPair::from_der(&der),
            "PRIVATE KEY" => KeyPair::from_pkcs8(&der),
            other => anyhow::bail!("expected an RSA private key, found {other:?}"),
        }
        .map_err(|e| anyhow::anyhow!("RSA private key rejected: {e}"))?;
        Ok(SigningKey::from_pair(pair))
    }

    pub fn generate() -> SigningKey {
        SigningKey::from_pair(KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation"))
    }

    fn from_pair(pair: KeyPair) -> SigningKey {
        let public = pair.public_key();
        let n_raw = public.modulus().big_endian_without_leading_zero().to_vec();
        let e_raw = public.exponent().big_endian_without_leading_zero().to_vec();
        // The same kid, n and e as the public half publishes.
        let VerifyingKey { kid, n, e, .. } = VerifyingKey::new(&n_raw, &e_raw);
        let public_der = public
            .as_der()
            .expect("public key encodes")
            .as_ref()
            .to_vec();
        SigningKey {
            pair,
            kid,
            n,
            e,
            n_raw,
            e_raw,
            public_der,
        }
    }

    /// PKCS#8 PEM of the private key.
    pub fn private_pem(&self) -> String {
        let der = self.pair.as_der().expect("private key encodes");
        to_pem("PRIVATE KEY", der.as_ref())
    }

    /// X.509 SubjectPublicKeyInfo PEM of the public key, what upstreams are configured with.
    pub fn public_pem(&self) -> String {
        to_pem("PUBLIC KEY", &self.public_der)
    }

    /// The public half, as tokens are verified with it.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::new(&self.n_raw, &self.e_raw)
    }

    /// Loads `private_key_path`, or the development key at `dev_key_path` (generated when
    /// missing, with owner-only permissions).
    pub fn load_or_generate(
        private_key_path: Option<&Path>,
        dev_key_path: &Path,
    ) -> anyhow::Result<(SigningKey, KeySource)> {
        if let Some(path) = private_key_path {
            let shown = path.display();
            let pem = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("jwt.private_key_path {shown}: {e}"))?;
            let key = SigningKey::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("jwt.private_key_path {shown}: {e}"))?;
            return Ok((key, KeySource::File));
        }
        if dev_key_path.exists() {
            let pem = std::fs::read_to_string(dev_key_path)?;
            let key = SigningKey::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("jwt.dev_key_path {}: {e}", dev_key_path.display()))?;
            return Ok((key, KeySource::DevelopmentExisting));
        }
        let key = SigningKey::generate();
        write_private_file(dev_key_path, key.private_pem().as_bytes())?;
        Ok((key, KeySource::DevelopmentGenerated))
    }
}

/// Writes a file readable by its owner only, creating parent directories.
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

pub fn to_pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// The label and DER body of the first PEM block in `text`.
pub fn parse_pem(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker)?;
    let body: String = rest[body_start..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Some((label, STANDARD.decode(body).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_kid() {
        let key = SigningKey::generate();
        let again = SigningKey::from_pem(&key.private_pem()).unwrap();
        assert_eq!(key.kid, again.kid);
        assert_eq!(key.e, "AQAB");
        assert!(key.public_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(SigningKey::from_pem(&key.public_pem()).is_err());
        assert!(SigningKey::from_pem("garbage").is_err());
    }

    #[test]
    fn development_key_is_generated_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pc-key-{}", crate::crypto::random_hex::<6>()));
        let path = dir.join("dev.pem");
        let (first, source) = SigningKey::load_or_generate(None, &path).unwrap();
        assert_eq!(source, KeySource::DevelopmentGenerated);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, source) = SigningKey::load_or_generate(None, &path).unwrap();
        assert_eq!(source, KeySource::DevelopmentExisting);
        assert_eq!(first.kid, second.kid);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
