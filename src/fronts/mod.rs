//! The decision fronts: thin adapters that turn a host's request into gate facts and the
//! gate's answer into what that host understands. No front re-implements a check.
//!
//! - `barong`: Envoy ext_authz as OpenDAX configures it for Barong (`ANY <prefix>/<path>`).
//! - `nginx`: `auth_request` (only 200, 401 and 403 are understood by nginx).
//! - `forward_auth`: Traefik's forwardAuth.
//! - `grpc`: Envoy's gRPC ext_authz (`Authorization/Check`).
//! - `proxy`: the built-in reverse proxy; `upstream`: its routes and upstream connections.

pub mod barong;
mod endpoints;
pub mod forward_auth;
pub mod grpc;
pub mod nginx;
pub mod proxy;
pub mod upstream;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};

use crate::config::{self, DecisionCallers};
use crate::gate::{Denial, Facts, Gate, steps};
use crate::jwt::Bearer;
use crate::net::client_ip::{ClientIpResolver, UnreadableForwardedFor};
use crate::net::path::{self, Forwarding};
use crate::telemetry::HotMetrics;

pub use crate::net::headers::{X_AUTHZ_ERROR, X_AUTHZ_STATUS};
pub use crate::net::respond::error_response;
pub use endpoints::endpoints;

/// What the decision fronts use: the gate, the client-address resolver, and the few settings
/// that shape an answer. Cheap to clone; handlers take it as axum state.
#[derive(Clone)]
pub struct DecisionState(Arc<Decider>);

pub struct Decider {
    pub gate: Arc<Gate>,
    pub client_ip: Arc<ClientIpResolver>,
    /// `decision.*`: the prefix, who may call, how Envoy is shown a 5xx.
    pub decision: config::Decision,
    /// `api.mount`, under which a missing route is Barong's catch-all.
    pub mount: String,
    /// The session cookie's name (`session.cookie_name`).
    pub cookie_name: String,
    pub hot_metrics: Arc<HotMetrics>,
}

impl DecisionState {
    pub fn new(decider: Decider) -> DecisionState {
        DecisionState(Arc::new(decider))
    }
}

impl std::ops::Deref for DecisionState {
    type Target = Decider;
    fn deref(&self) -> &Decider {
        &self.0
    }
}

/// Lets a request reach a decision front only from the callers `decision.callers` allows
/// (by default the trusted proxies the fronts exist for); anyone else finds no such route.
/// Where Portcullis is the edge, an open decision front would hand any session holder a
/// bearer token on request, and let any trusted peer's gRPC `source` be believed.
pub async fn proxies_only(
    State(front): State<DecisionState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if front.decision.callers == DecisionCallers::Anyone || front.client_ip.is_trusted(peer.ip()) {
        return next.run(request).await;
    }
    metrics::counter!("portcullis_decisions_total", "front" => "any", "outcome" => "caller_not_trusted")
        .increment(1);
    route_not_found(&front, request.uri().path())
}

/// No route serves `path`. Under the auth API's mount this is Barong's Grape catch-all, whose
/// body clients may match on; elsewhere it is our own code.
pub fn route_not_found(front: &Decider, path: &str) -> Response {
    let mount = front.mount.trim_end_matches('/');
    if path
        .strip_prefix(mount)
        .is_some_and(|rest| rest.starts_with('/'))
    {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": "Route is not found"})),
        )
            .into_response();
    }
    error_response(StatusCode::NOT_FOUND, "gateway.route_not_found")
}

/// `{"errors":["<code>"]}` with the denial's status, as JSON (decisions.md #21).
pub fn denial_response(denial: Denial) -> Response {
    error_response(denial.status, denial.code)
}

/// 200, empty body, and the bearer token (if the path was not a pass rule).
pub fn allow_response(bearer: Option<&Bearer>) -> Response {
    let mut response = StatusCode::OK.into_response();
    if let Some(bearer) = bearer {
        response
            .headers_mut()
            .insert(header::AUTHORIZATION, bearer.header_value());
    }
    response
}

/// A header that carries part of the original request: `None` when absent or blank. Bytes
/// that are not text are kept as a path no rule accepts, so they are refused as a bad path
/// rather than taken for a missing header.
pub fn original_header(headers: &HeaderMap, name: http::HeaderName) -> Option<&str> {
    let value = headers.get(name)?;
    let text = std::str::from_utf8(value.as_bytes()).unwrap_or("\u{0}");
    (!text.trim().is_empty()).then_some(text)
}

/// The original request described by a method header and a URI header (nginx's
/// `X-Original-*`, Traefik's `X-Forwarded-*`). `None` when either is missing: without the
/// original method a request cannot be judged (guessing GET would skip CSRF and let GET-only
/// rows grant every verb). The front proxy forwards the path as it sees fit, so only paths no
/// normaliser changes are judged ([`Forwarding::AsIs`]).
pub fn original_from_headers(
    headers: &HeaderMap,
    method: http::HeaderName,
    uri: http::HeaderName,
) -> Option<Original<'_>> {
    let method = original_header(headers, method)?;
    let (raw_path, query) = path::split_query(original_header(headers, uri)?);
    Some(Original {
        method,
        raw_path,
        query,
        forwarding: Forwarding::AsIs,
    })
}

/// The original request a front asks about, as the front proxy described it.
pub struct Original<'a> {
    /// The method as the front sent it (any letter case; unknown methods are refused).
    pub method: &'a str,
    /// The path, still encoded, without the query.
    pub raw_path: &'a str,
    pub query: Option<&'a str>,
    /// Who forwards the request once it is allowed (see `net::path::Forwarding`).
    pub forwarding: Forwarding,
}

/// The common path of every decision front: canonical method, judged path, resolved client,
/// the gate, the outcome recorded. Returns the bearer to forward (`None` on a pass rule).
pub async fn decide(
    front: &Decider,
    label: &'static str,
    original: &Original<'_>,
    client: Result<IpAddr, UnreadableForwardedFor>,
    headers: &HeaderMap,
) -> Result<Option<Bearer>, Denial> {
    let started = std::time::Instant::now();
    let refused = |denial: Denial| {
        metrics::counter!("portcullis_decisions_total", "front" => label, "outcome" => denial.code)
            .increment(1);
        Err(denial)
    };
    let admitted = match steps::admit(
        original.method,
        original.raw_path,
        original.forwarding,
        client,
    ) {
        Ok(admitted) => admitted,
        Err(denial) => return refused(denial),
    };
    let facts = Facts::from_headers(
        admitted.verb,
        &admitted.path,
        original.query,
        admitted.ip,
        headers,
        &front.cookie_name,
    );
    let result = front.gate.authorize(&facts).await.map(|grant| grant.bearer);
    let hot = front.hot_metrics.front(label);
    if let Some((_, seconds)) = hot {
        seconds.record(started.elapsed().as_secs_f64());
    }
    match (&result, hot) {
        (Ok(_), Some((allowed, _))) => allowed.increment(1),
        (Ok(_), None) => {}
        (Err(denial), _) => metrics::counter!(
            "portcullis_decisions_total", "front" => label, "outcome" => denial.code
        )
        .increment(1),
    }
    result
}
