//! Randomised robustness checks of the parsers that face the network (run as unit tests;
//! deeper coverage-guided runs live in `fuzz/`). Inputs come from a seeded generator biased
//! towards the characters that matter to each parser, so failures reproduce.

/// Seconds each check runs for when `PORTCULLIS_FUZZ_SECONDS` is set (CI sets it), instead of
/// its fixed number of rounds. Its seed then comes from `PORTCULLIS_FUZZ_SEED` or the clock,
/// printed, so that a failure found with it reproduces.
const SECONDS_VAR: &str = "PORTCULLIS_FUZZ_SECONDS";
const SEED_VAR: &str = "PORTCULLIS_FUZZ_SEED";

/// The rounds of one check: `default` of them, or, time-boxed, as many as fit in
/// `PORTCULLIS_FUZZ_SECONDS` (and never fewer than `default`).
pub fn rounds(default: usize) -> impl Iterator<Item = usize> {
    let deadline = std::env::var(SECONDS_VAR)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| std::time::Instant::now() + std::time::Duration::from_secs(s));
    (0..).take_while(move |&round| {
        round < default
            || deadline.is_some_and(|d| round % 256 != 0 || std::time::Instant::now() < d)
    })
}

/// xorshift64*: small, seeded, good enough to spread inputs.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen(seed.max(1))
    }

    /// `seed`, or in a time-boxed run a fresh one (printed; `PORTCULLIS_FUZZ_SEED` repeats it).
    pub fn seeded(seed: u64) -> Gen {
        let chosen = match std::env::var(SEED_VAR).ok().and_then(|s| s.parse().ok()) {
            Some(seed) => seed,
            None if std::env::var_os(SECONDS_VAR).is_some() => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(seed, |d| d.as_nanos() as u64);
                now ^ seed
            }
            None => seed,
        };
        if chosen != seed {
            eprintln!("{SEED_VAR}={chosen}");
        }
        Gen::new(chosen)
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
    use crate::net::front_models as fronts_model;
    use crate::net::path::{Forwarding, forward_path, judge, rule_path};

    const PATH_PIECES: &[&str] = &[
        "/", "/", ".", "..", "%2e", "%2E", "%2f", "%2F", "%25", "%", "a", "api", "v2", "peatio",
        "admin", "?", "#", ";", "\\", " ", "%00", "é", "%C3%A9", "%zz", "%3B", "%23", "%3f", "%41",
        "%61dmin", "@", ":", "~", "+",
    ];

    #[test]
    fn the_proxy_forwards_exactly_the_judged_path() {
        let mut g = Gen::seeded(0x5eed);
        for _ in super::rounds(50_000) {
            let raw = format!("/{}", g.string(PATH_PIECES, 24));
            let Ok(checked) = judge(&raw, Forwarding::Normalised) else {
                continue;
            };
            let forwarded = forward_path(&raw);
            assert!(forwarded.starts_with('/'), "{raw:?} -> {forwarded:?}");
            // What the upstream acts on, decoded, is what the rules saw.
            assert_eq!(
                rule_path(&forwarded),
                checked,
                "raw {raw:?} forwarded {forwarded:?}"
            );
            let decoded: Vec<u8> = percent_encoding::percent_decode(forwarded.as_bytes()).collect();
            assert_eq!(
                fronts_model::as_rules_see(&decoded),
                checked.as_bytes(),
                "raw {raw:?}"
            );
            assert_eq!(
                fronts_model::normalising_upstream(&decoded)
                    .map(|p| fronts_model::as_rules_see(&p)),
                Some(checked.as_bytes().to_vec()),
                "an upstream that normalises again sees another path: {raw:?}"
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

    type FrontModel = fn(&str) -> Option<Vec<u8>>;

    /// For nginx, Envoy (normalising or not) and Traefik: whatever the front proxy forwards, and
    /// whatever the upstream then makes of it, is the path the rules judged.
    #[test]
    fn every_front_proxy_forwards_exactly_the_judged_path() {
        let mut g = Gen::seeded(0xf407);
        let mut judged = 0;
        for _ in super::rounds(60_000) {
            let raw = format!("/{}", g.string(PATH_PIECES, 20));
            let Ok(checked) = judge(&raw, Forwarding::AsIs) else {
                continue;
            };
            judged += 1;
            let fronts: [(&str, FrontModel); 3] = [
                ("nginx", fronts_model::nginx),
                ("envoy normalize_path", fronts_model::envoy_normalising),
                ("envoy or traefik verbatim", fronts_model::verbatim),
            ];
            for (front, forwards) in fronts {
                let Some(forwarded) = forwards(&raw) else {
                    continue;
                };
                assert_eq!(
                    fronts_model::as_rules_see(&forwarded),
                    checked.as_bytes(),
                    "{front} forwards another path than the one judged for {raw:?}"
                );
                assert_eq!(
                    fronts_model::normalising_upstream(&forwarded)
                        .map(|p| fronts_model::as_rules_see(&p)),
                    Some(checked.as_bytes().to_vec()),
                    "behind {front}, a normalising upstream reads {raw:?} differently"
                );
            }
        }
        assert!(
            judged > 1000,
            "the generator must reach accepted paths ({judged})"
        );
    }

    #[test]
    fn the_reviewed_attacks_are_refused_by_every_front() {
        for raw in [
            "/api/v2/peatio/account/withdraws#/../balances",
            "/api/v2/peatio/management#/../public/markets",
            "/api/v2/peatio/public/markets#/../../../auth/identity/users/access",
            "/x/blocked/../passed",
            "/api/v2/peatio/account;/withdraws",
        ] {
            assert!(judge(raw, Forwarding::AsIs).is_err(), "{raw}");
            assert!(
                judge(raw, Forwarding::Normalised).is_err() || !raw.contains(['#', ';']),
                "{raw}"
            );
        }
    }

    #[test]
    fn original_request_headers_parse_or_refuse_without_panicking() {
        use crate::net::method;
        use crate::net::path::split_query;
        let pieces: &[&str] = &[
            "/", "a", "?", "#", "%", "%2e", ".", "..", ";", "=", "&", "GET", "post", " ", "\\",
        ];
        let mut g = Gen::seeded(0x0419);
        for _ in super::rounds(30_000) {
            let text = g.string(pieces, 24);
            let mut headers = http::HeaderMap::new();
            for (name, value) in [("x-original-uri", &text), ("x-forwarded-uri", &text)] {
                if let Ok(v) = http::HeaderValue::from_bytes(value.as_bytes()) {
                    headers.insert(name, v);
                }
            }
            for name in [
                crate::net::headers::X_ORIGINAL_URI,
                crate::net::headers::X_FORWARDED_URI,
            ] {
                if let Some(uri) = crate::fronts::original_header(&headers, name) {
                    let (raw, _query) = split_query(uri);
                    if let Ok(path) = judge(raw, Forwarding::AsIs) {
                        assert!(!path.contains(['#', '?', ';', '\\']), "{uri:?} -> {path:?}");
                    }
                }
            }
            let _ = method::canonical(&text);
        }
    }

    #[test]
    fn client_ip_resolution_never_panics_and_never_yields_to_junk() {
        let resolver = crate::net::client_ip::ClientIpResolver::new(&crate::config::Network {
            trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
            gateway: crate::config::Gateway::None,
        });
        let pieces: &[&str] = &[
            "1",
            "2",
            "5",
            ".",
            ":",
            ",",
            " ",
            "[",
            "]",
            "::",
            "ffff",
            "a",
            "256",
            "-",
            "\u{e9}",
            "unknown",
            "127.0.0.1",
        ];
        let mut g = Gen::seeded(7);
        for _ in super::rounds(20_000) {
            let mut junk = g.string(pieces, 30).into_bytes();
            if g.below(4) == 0 {
                junk.push(0x80 + g.below(0x7f) as u8);
            }
            // What nginx, Envoy (use_remote_address) and Traefik send: the client's own line,
            // with the real address appended.
            let mut line = junk.clone();
            line.extend_from_slice(b", 81.2.69.160");
            let Ok(value) = http::HeaderValue::from_bytes(&line) else {
                continue;
            };
            let mut headers = http::HeaderMap::new();
            headers.insert("x-forwarded-for", value);
            let peer = "127.0.0.1".parse().unwrap();
            assert_eq!(
                resolver.resolve(peer, &headers).map(|ip| ip.to_string()),
                Ok("81.2.69.160".to_string()),
                "{:?}",
                String::from_utf8_lossy(&line)
            );
            // The junk alone: unreadable, or an address it really contains; never the proxy's
            // own address unless the junk says so.
            if let Ok(value) = http::HeaderValue::from_bytes(&junk) {
                headers.insert("x-forwarded-for", value);
                if let Ok(ip) = resolver.resolve(peer, &headers) {
                    let text = String::from_utf8_lossy(&junk);
                    assert!(
                        ip != peer
                            || text.contains("127.0.0.1")
                            // Blank (HTTP's whitespace is space and tab): no address at all.
                            || text.trim_matches([' ', '\t', ',']).is_empty(),
                        "{text:?} -> {ip}"
                    );
                }
            }
            // From an untrusted peer, never anything but the peer.
            let outsider = "203.0.113.9".parse().unwrap();
            assert_eq!(resolver.resolve(outsider, &headers), Ok(outsider));
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
        let mut g = Gen::seeded(11);
        for _ in super::rounds(20_000) {
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
        let mut g = Gen::seeded(13);
        for _ in super::rounds(20_000) {
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
        use crate::fronts::grpc::envoy::{
            AttributeContext, CheckRequest, HeaderEntry, HttpRequest, Request,
        };
        use bytes::Bytes;
        use prost::Message as _;
        let decode = |bytes: &[u8]| decode_check(Bytes::copy_from_slice(bytes));
        let mut g = Gen::seeded(0x9bc);
        // Random bytes, and mutations of a well-formed request.
        let http = HttpRequest {
            method: Bytes::from_static(b"GET"),
            path: Bytes::from_static(b"/api/v2/x?y=1"),
            headers: vec![HeaderEntry {
                key: Bytes::from_static(b"cookie"),
                value: Bytes::from_static(b"_barong_session=a"),
            }],
            header_map: None,
        };
        let valid = CheckRequest {
            attributes: Some(AttributeContext {
                source: None,
                request: Some(Request { http: Some(http) }),
            }),
        }
        .encode_to_vec();
        assert_eq!(decode(&valid).unwrap().method, "GET");
        for _ in super::rounds(50_000) {
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
            let _ = decode(&bytes);
            let noise: Vec<u8> = (0..g.below(64)).map(|_| g.next() as u8).collect();
            let _ = decode(&noise);
        }
    }
}
