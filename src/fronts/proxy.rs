//! The built-in reverse proxy: match a configured route on the public path, ask the gate,
//! forward with a fresh `Authorization: Bearer <JWT>`, stream both bodies, and pass protocol
//! upgrades (websockets) through.
//!
//! The upstream never sees our session cookie, the API-key headers, the CSRF header or the
//! client's own Authorization header; it receives the normalised path the rules were checked
//! against, so `..` or `//` tricks cannot reach a path the rules did not see.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use hyper_util::rt::TokioIo;

pub use super::upstream::Upstreams;
use super::{
    Decider, DecisionState, Original, decide, denial_response, error_response, route_not_found,
};
use crate::authn::sessions::{cookie_value, strip_cookie};
use crate::gate::Denial;
use crate::jwt::Bearer;
use crate::net::headers;
use crate::net::method;
use crate::net::path::{Forwarding, forward_path};

/// What the proxy uses: the decision fronts' state, the upstreams, and the CORS origins a
/// websocket handshake may come from. Cheap to clone.
#[derive(Clone)]
pub struct ProxyState(Arc<Proxy>);

pub struct Proxy {
    pub front: DecisionState,
    pub upstreams: Upstreams,
    pub cors: Arc<crate::net::cors::Cors>,
}

impl ProxyState {
    pub fn new(proxy: Proxy) -> ProxyState {
        ProxyState(Arc::new(proxy))
    }

    /// Starts the active health checks of the routes that ask for them, one task a route.
    pub fn start_health_checks(&self) {
        for index in self.0.upstreams.checked() {
            let state = self.clone();
            tokio::spawn(async move { state.0.upstreams.check_health(index).await });
        }
    }
}

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    headers::KEEP_ALIVE,
    headers::PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let present = present_of(headers, &HOP_BY_HOP);
    if present == 0 {
        return;
    }
    if let Some(connection) = headers.get(header::CONNECTION) {
        // Other names listed in Connection are hop-by-hop too. The usual tokens (keep-alive,
        // close, upgrade) name no other header, so the common answer allocates nothing.
        let listed: Vec<HeaderName> = connection
            .to_str()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|token| {
                !["keep-alive", "close", "upgrade"]
                    .iter()
                    .any(|usual| token.eq_ignore_ascii_case(usual))
            })
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    remove_present(headers, &HOP_BY_HOP, present);
}

/// Which of `names` (at most 32) `headers` holds, as a bit set: one pass over the few headers
/// a request carries, instead of a hash lookup per absent name (measured with callgrind: the
/// lookups were most of `rewrite_headers`' cost).
fn present_of(headers: &HeaderMap, names: &[HeaderName]) -> u32 {
    debug_assert!(names.len() <= 32);
    let mut present = 0u32;
    for name in headers.keys() {
        if let Some(i) = names.iter().position(|n| n == name) {
            present |= 1 << i;
        }
    }
    present
}

/// Removes the `names` whose bit is set in `present` (from [`present_of`]).
fn remove_present(headers: &mut HeaderMap, names: &[HeaderName], present: u32) {
    for (i, name) in names.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

/// A websocket handshake: the only protocol upgrade the proxy tunnels. Any other (`h2c`, TLS
/// upgrades, made-up protocols) is forwarded as a plain request without its `Upgrade`, so no
/// tunnel opens whose requests the gate would never see.
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let upgrade_is_websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    upgrade_is_websocket
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// Headers some upstreams read in place of the request's own address, path or method
/// (RFC 7239 `Forwarded` in Rack 3, CDN client headers, Symfony and IIS URL overrides,
/// `Rack::MethodOverride`). The gate never judged them, so a client may not send them on.
const OVERRIDES: [HeaderName; 14] = [
    header::FORWARDED,
    HeaderName::from_static("cf-connecting-ip"),
    headers::TRUE_CLIENT_IP,
    HeaderName::from_static("client-ip"),
    HeaderName::from_static("x-client-ip"),
    HeaderName::from_static("x-cluster-client-ip"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
    headers::X_ORIGINAL_URI,
    headers::X_ORIGINAL_METHOD,
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
    HeaderName::from_static("x-forwarded-prefix"),
];

/// The client's credentials: the upstream gets the minted token instead.
const CREDENTIALS: [HeaderName; 6] = [
    headers::X_AUTH_APIKEY,
    headers::X_AUTH_NONCE,
    headers::X_AUTH_SIGNATURE,
    headers::X_CSRF_TOKEN,
    header::PROXY_AUTHORIZATION,
    header::AUTHORIZATION,
];

/// A websocket handshake carrying the session cookie must come from a page of ours: the same
/// origin as the request, or one listed in `cors.origins`. SameSite=Lax keeps other sites'
/// pages out, but not a sibling subdomain's (cross-site websocket hijacking).
fn websocket_origin_allowed(proxy: &Proxy, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if cookie_value(headers, &proxy.front.cookie_name).is_none() {
        return true;
    }
    crate::net::cors::same_origin(origin, headers) || proxy.cors.lists(origin)
}

/// Turns the client's headers into the upstream's, in place: hop-by-hop headers, the client's
/// credentials and the headers that would override what the gate judged go; the minted token
/// and the forwarding headers come.
fn rewrite_headers(
    front: &Decider,
    headers: &mut HeaderMap,
    bearer: Option<&Bearer>,
    peer: IpAddr,
    client_ip: IpAddr,
    authority: &str,
    websocket: bool,
) {
    let upgrade_value = headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(headers);
    let credentials = present_of(headers, &CREDENTIALS);
    remove_present(headers, &CREDENTIALS, credentials);
    let overrides = present_of(headers, &OVERRIDES);
    remove_present(headers, &OVERRIDES, overrides);
    if let Some(bearer) = bearer {
        headers.insert(header::AUTHORIZATION, bearer.header_value());
    }
    if headers.contains_key(header::COOKIE) {
        let cookie_name = &front.cookie_name;
        let kept: Vec<String> = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| strip_cookie(v, cookie_name))
            .collect();
        headers.remove(header::COOKIE);
        if !kept.is_empty()
            && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
        {
            headers.insert(header::COOKIE, value);
        }
    }
    let trusted_peer = front.client_ip.is_trusted(peer);
    let peer_value = headers::ip_value(peer);
    // A trusted proxy's chain is kept and extended; anyone else's claims are dropped, so an
    // upstream that trusts private addresses (Rails does) cannot be led along a forged chain.
    let forwarded_for = match headers
        .get(headers::X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .filter(|_| trusted_peer)
    {
        Some(previous) => {
            let chain = format!("{previous}, {}", peer_value.to_str().unwrap_or_default());
            HeaderValue::try_from(chain).ok()
        }
        None => Some(peer_value.clone()),
    };
    if let Some(value) = forwarded_for {
        headers.insert(headers::X_FORWARDED_FOR, value);
    }
    let real_ip = if client_ip == peer {
        peer_value
    } else {
        headers::ip_value(client_ip)
    };
    headers.insert(headers::X_REAL_IP, real_ip);
    if !headers.contains_key(headers::X_FORWARDED_PROTO) || !trusted_peer {
        headers.insert(headers::X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(headers::X_FORWARDED_HOST, host);
    }
    if let Ok(value) = HeaderValue::from_str(authority) {
        headers.insert(header::HOST, value);
    }
    if websocket && let Some(value) = upgrade_value {
        headers.insert(header::UPGRADE, value);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// The fallback handler: routes to upstreams, or 404.
pub async fn handle(
    State(proxy): State<ProxyState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    proxy.forward(peer, request).await
}

impl ProxyState {
    /// Forwards `request` from `peer` to the route its path is under, or answers 404. What the
    /// router's fallback does, also called directly for the paths that may skip the router
    /// (`server::direct`).
    pub async fn forward(&self, peer: SocketAddr, request: Request) -> Response {
        forward(&self.0, peer, request).await
    }
}

async fn forward(proxy: &Proxy, peer: SocketAddr, mut request: Request) -> Response {
    let front = &proxy.front;
    let path = forward_path(request.uri().path());
    let Some(route) = proxy.upstreams.find(&path) else {
        return route_not_found(front, &path);
    };
    let original = Original {
        method: request.method().as_str(),
        raw_path: request.uri().path(),
        query: request.uri().query(),
        forwarding: Forwarding::Normalised,
    };
    let client = front.client_ip.resolve(peer.ip(), request.headers());
    let bearer = match decide(front, "proxy", &original, client, request.headers()).await {
        Ok(bearer) => bearer,
        Err(denial) => return denial_response(denial),
    };
    // `decide` accepted both, so neither is an error here.
    let (Ok(client_ip), Some(method)) = (client, method::canonical(request.method().as_str()))
    else {
        return denial_response(Denial::INVALID_REQUEST);
    };

    let websocket = is_websocket_upgrade(request.headers());
    if websocket && !websocket_origin_allowed(proxy, request.headers()) {
        return error_response(StatusCode::FORBIDDEN, "gateway.origin_not_allowed");
    }
    let target = route.next_target();
    // Origin form: the pool's connection already names the upstream.
    let path_and_query = match request.uri().query() {
        Some(q) => format!("{}?{q}", route.upstream_path(&path)),
        None => route.upstream_path(&path),
    };
    let Ok(uri) = path_and_query.parse::<Uri>() else {
        return error_response(StatusCode::BAD_REQUEST, "gateway.invalid_path");
    };
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut request));

    let (mut parts, body) = request.into_parts();
    rewrite_headers(
        front,
        &mut parts.headers,
        bearer.as_ref(),
        peer.ip(),
        client_ip,
        &target.authority,
        websocket,
    );
    let mut outgoing = http::Request::new(body);
    // The canonical name of the method the gate judged (a client's `post` goes on as POST).
    *outgoing.method_mut() = if parts.method.as_str() == method {
        parts.method
    } else {
        http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::GET)
    };
    *outgoing.uri_mut() = uri;
    *outgoing.headers_mut() = parts.headers;
    // The connection's slot stays taken while a tunnel runs on it.
    let hold = parts.extensions.remove::<crate::routes::ConnectionHold>();

    let sent = tokio::time::timeout(route.timeout, target.send(outgoing)).await;
    let mut response = match sent {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => {
            tracing::warn!(upstream = %target.authority, error = %err, "upstream unavailable");
            metrics::counter!("portcullis_upstream_errors_total", "kind" => "unavailable")
                .increment(1);
            return error_response(StatusCode::BAD_GATEWAY, "gateway.upstream_unavailable");
        }
        Err(_) => {
            tracing::warn!(upstream = %target.authority, "upstream timed out");
            metrics::counter!("portcullis_upstream_errors_total", "kind" => "timeout").increment(1);
            return error_response(StatusCode::GATEWAY_TIMEOUT, "gateway.upstream_timeout");
        }
    };

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        // Only a websocket handshake we forwarded may switch protocols; an upstream that
        // switches unasked would leave the client with a tunnel nobody decided on.
        let Some(client_upgrade) = client_upgrade else {
            tracing::warn!(upstream = %target.authority, "upstream switched protocols unasked");
            metrics::counter!("portcullis_upstream_errors_total", "kind" => "unasked_upgrade")
                .increment(1);
            return error_response(StatusCode::BAD_GATEWAY, "gateway.upstream_unavailable");
        };
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let _hold = hold;
            match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok((client, upstream)) => {
                    let mut client = TokioIo::new(client);
                    let mut upstream = TokioIo::new(upstream);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
                Err(err) => tracing::debug!(error = %err, "upgrade failed"),
            }
        });
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Body::empty());
    }

    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_including_those_listed_in_connection() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("close, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));

        // The usual answer: Connection names no other header.
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Keep-Alive"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["content-type"]);
    }

    #[test]
    fn only_the_present_names_are_removed() {
        let mut h = HeaderMap::new();
        h.insert("x-auth-apikey", HeaderValue::from_static("k"));
        h.insert("authorization", HeaderValue::from_static("Bearer client"));
        h.insert("x-http-method-override", HeaderValue::from_static("DELETE"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        let present = present_of(&h, &CREDENTIALS);
        assert_eq!(present, 0b10_0001);
        remove_present(&mut h, &CREDENTIALS, present);
        let present = present_of(&h, &OVERRIDES);
        remove_present(&mut h, &OVERRIDES, present);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["accept"]);
    }
}
