//! Randomised robustness checks of the parsers that face the network (run as unit tests;
//! deeper coverage-guided runs live in `fuzz/`). Inputs come from a seeded generator biased
//! towards the characters that matter to each parser, so failures reproduce.

/// xorshift64*: small, seeded, good enough to spread inputs.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A string of up to `max` pieces drawn from `alphabet`, plus the odd random byte.
    pub fn string(&mut self, alphabet: &[&str], max: usize) -> String {
        let len = self.below(max + 1);
        let mut out = String::new();
        for _ in 0..len {
            if self.below(20) == 0 {
                out.push(char::from_u32((self.next() % 0x2FF) as u32).unwrap_or('x'));
            } else {
                out.push_str(alphabet[self.below(alphabet.len())]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Gen;
    use crate::net::path::{forward_path, rule_path};

    const PATH_PIECES: &[&str] = &[
        "/", "/", ".", "..", "%2e", "%2E", "%2f", "%2F", "%25", "%", "a", "api", "v2", "peatio",
        "admin", "?", "#", ";", "\\", " ", "%00", "é", "%C3%A9", "%zz",
    ];

    #[test]
    fn forwarded_paths_normalise_to_the_checked_path() {
        let mut g = Gen::new(0x5eed);
        for _ in 0..50_000 {
            let raw = format!("/{}", g.string(PATH_PIECES, 24));
            if crate::net::path::is_ambiguous(&raw) {
                // Refused before any rule sees it.
                continue;
            }
            let checked = rule_path(&raw);
            let forwarded = forward_path(&raw);
            assert!(forwarded.starts_with('/'), "{raw:?} -> {forwarded:?}");
            // What the upstream acts on is what the rules saw.
            assert_eq!(
                rule_path(&forwarded),
                checked,
                "raw {raw:?} forwarded {forwarded:?}"
            );
            assert!(
                !checked.starts_with('/') && !checked.ends_with('/'),
                "{raw:?} -> {checked:?}"
            );
            assert!(
                checked
                    .split('/')
                    .all(|s| !s.is_empty() && s != "." && s != "..")
                    || checked.is_empty(),
                "{raw:?} -> {checked:?}"
            );
        }
    }

    #[test]
    fn client_ip_resolution_never_panics() {
        let resolver = crate::net::client_ip::ClientIpResolver::new(&crate::config::Network {
            trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
            gateway: crate::config::Gateway::Akamai,
        });
        let pieces: &[&str] = &[
            "1", "2", "5", ".", ":", ",", " ", "[", "]", "::", "ffff", "a", "256", "-",
        ];
        let mut g = Gen::new(7);
        for _ in 0..20_000 {
            let mut headers = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&g.string(pieces, 30)) {
                headers.insert("x-forwarded-for", v.clone());
                headers.insert("true-client-ip", v);
            }
            resolver.resolve("127.0.0.1".parse().unwrap(), &headers);
        }
    }

    #[test]
    fn cookies_forms_and_nonces_never_panic() {
        let pieces: &[&str] = &[
            "=",
            ";",
            " ",
            "_barong_session",
            "a",
            "\"",
            "%",
            "+",
            "&",
            "[",
            "]",
            "1",
            "-",
        ];
        let mut g = Gen::new(11);
        for _ in 0..20_000 {
            let text = g.string(pieces, 30);
            if let Ok(v) = http::HeaderValue::from_str(&text) {
                let mut headers = http::HeaderMap::new();
                headers.insert("cookie", v);
                crate::authn::sessions::cookie_value(&headers, "_barong_session");
            }
            if let Some(kept) = crate::authn::sessions::strip_cookie(&text, "_barong_session") {
                assert!(
                    !kept
                        .split(';')
                        .any(|p| p.trim().starts_with("_barong_session=")),
                    "{text:?}"
                );
            }
            crate::api::params::Params::from_query(Some(&text));
            crate::authn::api_keys::ruby_to_i(&text);
            crate::domain::validation::email_valid(&text);
        }
    }

    #[test]
    fn token_verification_rejects_garbage_without_panicking() {
        let issuer = crate::jwt::Issuer::new(
            crate::jwt::SigningKey::generate(),
            crate::config::JwtAlgorithm::RS256,
            60,
            true,
        );
        let pieces: &[&str] = &[
            ".",
            "eyJ",
            "hbGciOiJSUzI1NiJ9",
            "A",
            "-",
            "_",
            "=",
            "{",
            "}",
            "\"",
        ];
        let mut g = Gen::new(13);
        for _ in 0..20_000 {
            assert!(issuer.verify(&g.string(pieces, 40), None, 0).is_err());
        }
        let valid = issuer.sign_standard("session", serde_json::json!({}), 1_000);
        for cut in 0..valid.len() {
            assert!(issuer.verify(&valid[..cut], None, 1_001).is_err());
        }
    }

    #[test]
    fn grpc_check_requests_decode_or_refuse_without_panicking() {
        use crate::fronts::grpc::decode_check;
        use crate::net::protobuf::Writer;
        let mut g = Gen::new(0x9bc);
        // Random bytes, and mutations of a well-formed request.
        let mut http = Writer::new();
        http.bytes(2, b"GET").bytes(4, b"/api/v2/x?y=1");
        let mut entry = Writer::new();
        entry.bytes(1, b"cookie").bytes(2, b"_barong_session=a");
        http.message(3, entry);
        let mut request = Writer::new();
        request.message(2, http);
        let mut attributes = Writer::new();
        attributes.message(4, request);
        let mut check = Writer::new();
        check.message(1, attributes);
        let valid = check.into_bytes();
        assert_eq!(decode_check(&valid).unwrap().method, "GET");
        for _ in 0..50_000 {
            let mut bytes = valid.clone();
            for _ in 0..1 + g.below(4) {
                let at = g.below(bytes.len());
                match g.below(3) {
                    0 => bytes[at] = g.next() as u8,
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, g.next() as u8),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let _ = decode_check(&bytes);
            let noise: Vec<u8> = (0..g.below(64)).map(|_| g.next() as u8).collect();
            let _ = decode_check(&noise);
        }
    }
}
