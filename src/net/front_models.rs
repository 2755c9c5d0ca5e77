//! What each front proxy forwards for a request path, decoded as the upstream reads it (`None`
//! when that proxy refuses the request itself): models of the behaviour that matters to path
//! judging (what each one cuts, decodes and resolves). The property tests in `net::fuzz` and
//! the `front_paths` fuzz target check, with them, that every front forwards exactly the path
//! the rules judged. Built for tests and for the `fuzzing` feature only.
use percent_encoding::percent_decode;

/// Resolves `.`/`..` and drops empty segments; `None` when `..` climbs above the root.
fn resolve(path: &[u8], above_root_refused: bool) -> Option<Vec<u8>> {
    let mut out: Vec<&[u8]> = Vec::new();
    for segment in path.split(|b| *b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() && above_root_refused {
                    return None;
                }
            }
            s => out.push(s),
        }
    }
    Some(out.join(&b'/'))
}

fn trim(path: &[u8]) -> Vec<u8> {
    let mut p = path;
    while let [b'/', rest @ ..] = p {
        p = rest;
    }
    while let [rest @ .., b'/'] = p {
        p = rest;
    }
    p.to_vec()
}

/// nginx with `proxy_pass http://up/prefix/;`: forwards its `$uri` — cut at a raw `#`,
/// decoded, slashes merged, dot segments resolved (above the root is a 400).
pub fn nginx(raw: &str) -> Option<Vec<u8>> {
    let cut = raw.split('#').next().unwrap_or("");
    let decoded: Vec<u8> = percent_decode(cut.as_bytes()).collect();
    resolve(&decoded, true)
}

/// Envoy with `normalize_path` and `merge_slashes` (RFC 3986 normalisation: unreserved
/// characters decoded, dot segments removed), forwarding to an upstream that decodes the
/// rest. Envoy refuses a `#` in the path.
pub fn envoy_normalising(raw: &str) -> Option<Vec<u8>> {
    if raw.contains('#') {
        return None;
    }
    let mut partly = Vec::new();
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(text) = std::str::from_utf8(hex)
            && let Ok(value) = u8::from_str_radix(text, 16)
            && (value.is_ascii_alphanumeric() || b"-._~".contains(&value))
        {
            partly.push(value);
            i += 3;
            continue;
        }
        partly.push(bytes[i]);
        i += 1;
    }
    let resolved = resolve(&partly, false)?;
    Some(percent_decode(&resolved).collect())
}

/// Envoy as stock OpenDAX runs it (no normalisation) or Traefik without path sanitising:
/// the path goes on as received and the upstream decodes it.
pub fn verbatim(raw: &str) -> Option<Vec<u8>> {
    Some(percent_decode(raw.split('#').next()?.as_bytes()).collect())
}

/// An upstream that resolves what it decoded once more (Go's `path.Clean`, Java servers
/// dropping `;parameters`), after any of the above.
pub fn normalising_upstream(forwarded: &[u8]) -> Option<Vec<u8>> {
    let without_params: Vec<u8> = forwarded
        .split(|b| *b == b'/')
        .map(|segment| segment.split(|b| *b == b';').next().unwrap_or(b"").to_vec())
        .collect::<Vec<_>>()
        .join(&b'/');
    resolve(&without_params, false)
}

/// The path as rules compare it (no leading or trailing slash).
pub fn as_rules_see(forwarded: &[u8]) -> Vec<u8> {
    trim(forwarded)
}
