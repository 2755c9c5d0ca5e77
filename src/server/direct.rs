//! Proxied requests that skip the router.
//!
//! A request whose path is under a proxy route that no endpoint could match reaches the proxy
//! as the router's fallback anyway. Handing it to the proxy directly saves the router's
//! matching, its layers and their boxed futures: about 7k of the ~64k instructions a proxied
//! request cost (`bench/README.md`, issue 13, third pass). The answer is observed as every
//! routed answer is ([`super::router::observed`]).
//!
//! The router stays the one place that knows every route: it hands over the prefixes that are
//! safe ([`safe_prefixes`], from its own list of endpoint paths). A prefix under which some
//! endpoint path could match (a literal or `{param}` segment agreeing with it, a `{*rest}`
//! wildcard) keeps going through the router, so an endpoint always wins over a proxy route,
//! as it does when the proxy is only the fallback.

use std::net::SocketAddr;

use axum::extract::Request;
use axum::response::Response;

use crate::fronts::proxy::ProxyState;
use crate::net::path::is_under;
use crate::telemetry::HotMetrics;

/// The proxy, for the paths under [`DirectProxy::prefixes`].
pub struct DirectProxy {
    prefixes: Vec<String>,
    proxy: ProxyState,
    hot_metrics: std::sync::Arc<HotMetrics>,
}

impl DirectProxy {
    pub fn new(
        prefixes: Vec<String>,
        proxy: ProxyState,
        hot_metrics: std::sync::Arc<HotMetrics>,
    ) -> DirectProxy {
        DirectProxy {
            prefixes,
            proxy,
            hot_metrics,
        }
    }

    /// Whether the raw `path` (as the router would match it) is under a safe prefix.
    pub fn takes(&self, path: &str) -> bool {
        self.prefixes.iter().any(|prefix| is_under(path, prefix))
    }

    pub async fn serve(&self, peer: SocketAddr, request: Request) -> Response {
        super::router::observed(&self.hot_metrics, request, |request| {
            self.proxy.forward(peer, request)
        })
        .await
    }
}

/// The route prefixes under which no endpoint path could match a request, compared segment by
/// segment as the router matches: on the raw path, a `{…}` segment matching any one segment,
/// a `{*…}` segment any rest. Only well-formed prefixes (`/a/b`, no empty or `{` segment)
/// qualify; the others keep going through the router.
pub fn safe_prefixes<'a>(
    prefixes: impl IntoIterator<Item = &'a str>,
    endpoints: &[String],
) -> Vec<String> {
    prefixes
        .into_iter()
        .filter(|prefix| well_formed(prefix))
        .filter(|prefix| {
            !endpoints
                .iter()
                .any(|endpoint| could_match_under(endpoint, prefix))
        })
        .map(str::to_owned)
        .collect()
}

fn well_formed(prefix: &str) -> bool {
    prefix.len() > 1
        && prefix.starts_with('/')
        && prefix[1..]
            .split('/')
            .all(|segment| !segment.is_empty() && !segment.contains('{'))
}

/// Whether endpoint path `endpoint` could match the prefix itself or a path under it.
fn could_match_under(endpoint: &str, prefix: &str) -> bool {
    let prefix: Vec<&str> = prefix[1..].split('/').collect();
    let endpoint: Vec<&str> = endpoint.trim_start_matches('/').split('/').collect();
    for (i, segment) in endpoint.iter().enumerate() {
        if segment.starts_with("{*") {
            return true;
        }
        let Some(wanted) = prefix.get(i) else {
            // Longer than the prefix and agreeing with it so far: paths under it can match.
            return true;
        };
        if !segment.contains('{') && segment != wanted {
            return false;
        }
    }
    // As many segments as the prefix: the prefix itself matches. Fewer: a path under the
    // prefix has more segments than the endpoint matches.
    endpoint.len() == prefix.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(prefixes: &[&str], endpoints: &[&str]) -> Vec<String> {
        let endpoints: Vec<String> = endpoints.iter().map(|e| e.to_string()).collect();
        safe_prefixes(prefixes.iter().copied(), &endpoints)
    }

    #[test]
    fn a_prefix_no_endpoint_reaches_is_safe() {
        let endpoints = [
            "/api/v2/barong/identity/sessions",
            "/api/v2/auth/{*path}",
            "/health",
            "/envoy.service.auth.v3.Authorization/Check",
        ];
        assert_eq!(
            safe(&["/api/v2/peatio", "/api/v2/ranger/public"], &endpoints),
            ["/api/v2/peatio", "/api/v2/ranger/public"]
        );
    }

    #[test]
    fn a_prefix_an_endpoint_could_match_is_not() {
        // A literal endpoint under the prefix, the prefix itself, a parameter or a wildcard
        // segment agreeing with it.
        for endpoint in [
            "/api/v2/peatio/market/orders",
            "/api/v2/peatio",
            "/api/{version}/peatio/x",
            "/api/v2/{service}",
            "/api/{*rest}",
            "/{*rest}",
        ] {
            assert!(
                safe(&["/api/v2/peatio"], &[endpoint]).is_empty(),
                "{endpoint}"
            );
        }
        // Shorter than the prefix without a wildcard, or disagreeing on a literal: safe.
        for endpoint in ["/api/v2", "/api/{version}", "/api/v3/peatio/x", "/"] {
            assert_eq!(
                safe(&["/api/v2/peatio"], &[endpoint]),
                ["/api/v2/peatio"],
                "{endpoint}"
            );
        }
    }

    #[test]
    fn odd_prefixes_keep_going_through_the_router() {
        assert!(safe(&["/", "/api//x", "/api/{x}", "api/v2"], &[]).is_empty());
    }
}
