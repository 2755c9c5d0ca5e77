//! Request paths as rules see them, and as upstreams receive them.
//!
//! Rules match raw string prefixes (Barong), so the path they see must be the path the
//! upstream will act on. Two situations:
//!
//! - **The built-in proxy** forwards the path itself: it resolves dot segments and repeated
//!   slashes, forwards that, and the rules see the same path decoded ([`Forwarding::Normalised`]).
//! - **A front proxy** (nginx, Envoy, Traefik) forwards the request after asking us, and each
//!   one rewrites paths its own way: nginx cuts at a raw `#` and resolves `..`, Envoy resolves
//!   them only with `normalize_path`, Traefik depending on its version, a Java upstream strips
//!   `;parameters`. Portcullis cannot know which, so it judges only paths that every one of
//!   them leaves alone, and refuses the rest ([`Forwarding::AsIs`]).
//!
//! In both cases the path may hold only RFC 3986 path characters, every `%` must encode a byte,
//! and what the encoding hides must be plain text: no `/`, `\`, `;`, `#`, `?`, `%` or control
//! character behind a `%`, and valid UTF-8. Anything else is refused (400 `authz.invalid_path`):
//! upstreams disagree on what it means.

use percent_encoding::percent_decode_str;

/// The path is refused: some proxy or upstream could read it differently from the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPath;

/// Who forwards the request once it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    /// Portcullis itself, with [`forward_path`]: `..`, `.` and `//` are resolved first.
    Normalised,
    /// Another proxy, as it received the path: only paths no normaliser would change.
    AsIs,
}

/// Bytes a path may hold unencoded: RFC 3986 `pchar` and `/`, without `;` (a parameter
/// delimiter to Java servers, which drop what follows it before routing).
const fn path_byte_table() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        b += 1;
    }
    table
}

static PATH_BYTE: [bool; 256] = path_byte_table();

/// True when the path is already in final form: legal bytes, no `%`, no empty segment, no
/// segment starting with a dot. Nearly every real request; the fast path.
fn is_plain(raw_path: &str) -> bool {
    let bytes = raw_path.as_bytes();
    bytes.first() == Some(&b'/')
        && bytes.iter().all(|b| PATH_BYTE[*b as usize] && *b != b'%')
        && !bytes
            .windows(2)
            .any(|w| w[0] == b'/' && (w[1] == b'/' || w[1] == b'.'))
}

/// Bytes that must never come out of a `%` escape: they change how the path splits or reads.
fn hidden_byte_is_refused(b: u8) -> bool {
    b < 0x20 || matches!(b, 0x7f | b'/' | b'\\' | b';' | b'#' | b'?' | b'%')
}

/// Decodes one segment, or refuses it.
fn decode_segment(segment: &str) -> Result<String, InvalidPath> {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(InvalidPath)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(InvalidPath);
            }
            let value = u8::from_str_radix(std::str::from_utf8(hex).map_err(|_| InvalidPath)?, 16)
                .map_err(|_| InvalidPath)?;
            if hidden_byte_is_refused(value) {
                return Err(InvalidPath);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| InvalidPath)
}

/// Whether `path` is `prefix` itself or continues it at a segment boundary (`/api/v2/peatio`
/// covers `/api/v2/peatio/x`, not `/api/v2/peatiox`).
pub fn is_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The path rules match (no leading or trailing slash, decoded), or why it is refused.
pub fn judge(raw_path: &str, forwarding: Forwarding) -> Result<String, InvalidPath> {
    if is_plain(raw_path) {
        return Ok(raw_path.trim_matches('/').to_string());
    }
    let bytes = raw_path.as_bytes();
    if bytes.first() != Some(&b'/') || !bytes.iter().all(|b| PATH_BYTE[*b as usize]) {
        return Err(InvalidPath);
    }
    let inner = &raw_path[1..];
    // One trailing slash is harmless everywhere (`/markets/` routes like `/markets`).
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    let mut segments: Vec<String> = Vec::new();
    for segment in inner.split('/') {
        let decoded = decode_segment(segment)?;
        match (decoded.as_str(), forwarding) {
            ("" | "." | "..", Forwarding::AsIs) => return Err(InvalidPath),
            ("" | ".", Forwarding::Normalised) => {}
            ("..", Forwarding::Normalised) => {
                segments.pop();
            }
            _ => segments.push(decoded),
        }
    }
    Ok(segments.join("/"))
}

/// The public path (as rules name it) of a request to our own API: `request_path` under
/// `mount` (where this service serves the API) moved under `public_prefix` (where clients
/// see it).
pub fn public_path(mount: &str, public_prefix: &str, request_path: &str) -> String {
    let rest = request_path.strip_prefix(mount).unwrap_or(request_path);
    rule_path(&format!("{public_prefix}{rest}"))
}

/// The public path rules match, for a path Portcullis itself wrote (configuration, its own
/// routes): decoded, normalised, no leading or trailing slash. Request paths go through
/// [`judge`] instead, which refuses what this would silently rewrite.
/// `/api/v2/peatio//public/./x/../markets/` → `api/v2/peatio/public/markets`.
pub fn rule_path(raw_path: &str) -> String {
    if is_plain(raw_path) {
        return raw_path.trim_matches('/').to_string();
    }
    let decoded = percent_decode_str(raw_path).decode_utf8_lossy();
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    segments.join("/")
}

/// The raw (still encoded) path with dot segments resolved and empty segments dropped,
/// keeping a trailing slash; what the built-in proxy forwards. For a path [`judge`] accepted
/// with [`Forwarding::Normalised`], it decodes to exactly the judged path.
pub fn forward_path(raw_path: &str) -> String {
    if is_plain(raw_path) {
        return raw_path.to_string();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        let decoded = percent_decode_str(segment).decode_utf8_lossy();
        match decoded.as_ref() {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(raw_path.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || (raw_path.ends_with('/') && !segments.is_empty()) {
        out.push('/');
    }
    out
}

/// Splits `path?query` into its two parts.
pub fn split_query(uri: &str) -> (&str, Option<&str>) {
    match uri.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (uri, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_a_prefix_means_at_a_segment_boundary() {
        assert!(is_under("/api/v2/peatio", "/api/v2/peatio"));
        assert!(is_under(
            "/api/v2/peatio/account/balances",
            "/api/v2/peatio"
        ));
        assert!(is_under("/api/v2/peatio/", "/api/v2/peatio"));
        assert!(!is_under("/api/v2/peatiox", "/api/v2/peatio"));
        assert!(!is_under("/api/v2/auth/api/v2/peatio", "/api/v2/peatio"));
        assert!(!is_under("/api/v2", "/api/v2/peatio"));
    }

    fn normalised(raw: &str) -> Result<String, InvalidPath> {
        judge(raw, Forwarding::Normalised)
    }

    fn as_is(raw: &str) -> Result<String, InvalidPath> {
        judge(raw, Forwarding::AsIs)
    }

    #[test]
    fn rule_paths_are_decoded_and_normalised() {
        assert_eq!(rule_path("/api/v2/peatio/markets"), "api/v2/peatio/markets");
        assert_eq!(
            rule_path("/api/v2/peatio/markets/"),
            "api/v2/peatio/markets"
        );
        assert_eq!(rule_path("/api/v2//peatio///admin"), "api/v2/peatio/admin");
        assert_eq!(
            rule_path("/api/v2/peatio/public/../admin"),
            "api/v2/peatio/admin"
        );
        assert_eq!(rule_path("/../../etc"), "etc");
        assert_eq!(rule_path("/a/./b"), "a/b");
        assert_eq!(rule_path("/caf%C3%A9"), "café");
        assert_eq!(rule_path("/"), "");
        assert_eq!(rule_path(""), "");
    }

    #[test]
    fn the_proxy_judges_the_normalised_path() {
        assert_eq!(
            normalised("/api/v2/peatio/markets").unwrap(),
            "api/v2/peatio/markets"
        );
        assert_eq!(
            normalised("/api/v2//peatio///admin").unwrap(),
            "api/v2/peatio/admin"
        );
        assert_eq!(
            normalised("/api/v2/peatio/public/%2e%2e/admin").unwrap(),
            "api/v2/peatio/admin"
        );
        assert_eq!(normalised("/caf%C3%A9/").unwrap(), "café");
        assert_eq!(normalised("/a%20b").unwrap(), "a b");
        assert_eq!(normalised("/").unwrap(), "");
    }

    #[test]
    fn front_proxies_get_only_paths_no_normaliser_changes() {
        assert_eq!(
            as_is("/api/v2/peatio/markets").unwrap(),
            "api/v2/peatio/markets"
        );
        assert_eq!(
            as_is("/api/v2/peatio/markets/").unwrap(),
            "api/v2/peatio/markets"
        );
        assert_eq!(as_is("/api/v2/%61dmin").unwrap(), "api/v2/admin");
        assert_eq!(as_is("/u/a@b.c:1").unwrap(), "u/a@b.c:1");
        for changed in [
            "/api/v2//admin",
            "/api/v2/public/../admin",
            "/api/v2/./admin",
            "/api/v2/public/%2e%2e/admin",
            "/api/v2/%2E/admin",
            "/api/v2/admin//",
            "//",
        ] {
            assert_eq!(as_is(changed), Err(InvalidPath), "{changed}");
        }
    }

    #[test]
    fn what_a_proxy_cuts_or_rewrites_is_refused_everywhere() {
        for bad in [
            // nginx ends $uri at a raw '#', so `withdraws#/../balances` would be judged as
            // `balances` and forwarded as `withdraws`.
            "/api/v2/peatio/account/withdraws#/../balances",
            "/a#b",
            "/a;b/c",
            "/api/v2/peatio/public/..;/admin",
            "/.;/x",
            "/a%3Bb",
            "/a%23b",
            "/a%3fb",
            "/a%2fb",
            "/a%2F..%2Fadmin",
            "/a%5Cb",
            "/a\\b",
            "/a%00b",
            "/a%0ab",
            "/a%7Fb",
            "/a%252fb",
            "/a%",
            "/a%2",
            "/a%zz",
            "/a b",
            "/a\"b",
            "/a{b}",
            "/a|b",
            "/a^b",
            "/a`b",
            "/a<b>",
            "/café",
            "/%C3",
            "/%ff",
            "relative",
            "",
        ] {
            assert_eq!(normalised(bad), Err(InvalidPath), "{bad:?}");
            assert_eq!(as_is(bad), Err(InvalidPath), "{bad:?}");
        }
    }

    #[test]
    fn forward_paths_stay_encoded_but_normalised() {
        assert_eq!(forward_path("/api/v2/x"), "/api/v2/x");
        assert_eq!(forward_path("/api/v2/x/"), "/api/v2/x/");
        assert_eq!(forward_path("/api//v2/./x/../y"), "/api/v2/y");
        assert_eq!(forward_path("/a/%2e%2e/b"), "/b");
        assert_eq!(forward_path("/a%20b"), "/a%20b");
        assert_eq!(forward_path("/"), "/");
        assert_eq!(forward_path("/.."), "/");
    }

    #[test]
    fn query_is_split_off() {
        assert_eq!(split_query("/a?b=1"), ("/a", Some("b=1")));
        assert_eq!(split_query("/a"), ("/a", None));
    }
}
