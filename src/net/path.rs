//! Request paths as rules see them, and as upstreams receive them.
//!
//! Rules match raw string prefixes (Barong), so the path they see must be the path the
//! upstream will act on: percent-decoded, dot segments resolved, repeated slashes collapsed.
//! Otherwise `/api/v2/public/../admin` or `/api/v2//admin` would slip past a DROP on
//! `api/v2/admin` and still reach the admin handler behind a normalising upstream.

use percent_encoding::percent_decode_str;

/// True when the path needs no decoding and no normalisation: no `%`, no `\\`, no empty
/// segment, no segment starting with a dot. Nearly every real request; the fast path.
fn is_plain(raw_path: &str) -> bool {
    let bytes = raw_path.as_bytes();
    bytes.first() == Some(&b'/')
        && !bytes.iter().any(|b| matches!(b, b'%' | b'\\' | 0))
        && !bytes
            .windows(2)
            .any(|w| w[0] == b'/' && (w[1] == b'/' || w[1] == b'.'))
}

/// The public path rules match: no leading or trailing slash, decoded, normalised.
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
/// keeping a trailing slash; what the built-in proxy forwards.
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

/// True for paths Portcullis refuses to interpret: an encoded slash or backslash (`%2F`,
/// `%5C`), a backslash, a NUL, or a dot segment with `;` parameters (`..;`). Upstreams disagree
/// on what these mean (some decode `%2F` before routing, some treat `\` as `/`, Java servers
/// read `..;` as `..`), so a rule could approve one path while the upstream serves another.
/// Such requests are refused (400 `authz.invalid_path`).
pub fn is_ambiguous(raw_path: &str) -> bool {
    if is_plain(raw_path) {
        return false;
    }
    let bytes = raw_path.as_bytes();
    if raw_path.contains('\\') || raw_path.contains('\0') {
        return true;
    }
    for window in bytes.windows(3) {
        let code = &window[1..];
        if window[0] == b'%'
            && (code.eq_ignore_ascii_case(b"2f")
                || code.eq_ignore_ascii_case(b"5c")
                || code == b"00")
        {
            return true;
        }
    }
    raw_path.split('/').any(|segment| {
        let decoded = percent_decode_str(segment).decode_utf8_lossy();
        match decoded.split_once(';') {
            Some((head, _)) => head == "." || head == "..",
            None => false,
        }
    })
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
        assert_eq!(
            rule_path("/api/v2/peatio/public/%2e%2e/admin"),
            "api/v2/peatio/admin"
        );
        assert_eq!(
            rule_path("/api/v2/peatio/public%2F..%2Fadmin"),
            "api/v2/peatio/admin"
        );
        assert_eq!(rule_path("/../../etc"), "etc");
        assert_eq!(rule_path("/a/./b"), "a/b");
        assert_eq!(rule_path("/caf%C3%A9"), "café");
        assert_eq!(rule_path("/"), "");
        assert_eq!(rule_path(""), "");
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
    fn ambiguous_paths_are_recognised() {
        for bad in [
            "/api/v2/peatio/admin/x/..%2F..%2Fpublic",
            "/a%2fb",
            "/a%5Cb",
            "/a\\b",
            "/a%00b",
            "/api/v2/peatio/public/..;/admin",
            "/api/v2/peatio/public/%2e%2e;x/admin",
            "/.;/x",
        ] {
            assert!(is_ambiguous(bad), "{bad}");
        }
        for fine in [
            "/api/v2/peatio/markets",
            "/a/../b",
            "/a;b/c",
            "/%41",
            "/a%2",
            "/%",
        ] {
            assert!(!is_ambiguous(fine), "{fine}");
        }
    }

    #[test]
    fn query_is_split_off() {
        assert_eq!(split_query("/a?b=1"), ("/a", Some("b=1")));
        assert_eq!(split_query("/a"), ("/a", None));
    }
}
