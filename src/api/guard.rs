//! Guards in front of the auth API: the same gate the decision fronts use.
//!
//! Identity and public routes are reachable without identity, but restrictions still apply
//! to them (blocklogin only matters on the routes that open a session), exactly as they would
//! behind Envoy. The guard resolves the client's address once and leaves it in the request
//! for the handler ([`ClientAddr`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::authn::api_keys::ApiKeyHeaders;
use crate::gate::{Denial, Facts, Gate};
use crate::net::client_ip::ClientIpResolver;
use crate::net::path::rule_path;
use crate::net::respond::error_response;

/// The client's address as the guard resolved it (see `net::client_ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// What the guard uses. Cheap to clone.
#[derive(Clone)]
pub struct GuardState(Arc<Guarding>);

pub struct Guarding {
    pub gate: Arc<Gate>,
    pub client_ip: Arc<ClientIpResolver>,
    /// `api.mount`: where this service serves the auth API.
    pub mount: String,
    /// `api.public_prefix`: where clients see it, as rules name it.
    pub public_prefix: String,
}

impl GuardState {
    pub fn new(guarding: Guarding) -> GuardState {
        GuardState(Arc::new(guarding))
    }
}

impl Guarding {
    /// The public path (as rules see it) of a request to our own API at `request_path`.
    pub fn public_path_of(&self, request_path: &str) -> String {
        let rest = request_path
            .strip_prefix(self.mount.as_str())
            .unwrap_or(request_path);
        rule_path(&format!("{}{}", self.public_prefix, rest))
    }
}

/// Restrictions (whitelist, maintenance, blacklist, blocklogin) for the request's public path.
pub async fn restrictions(
    State(guard): State<GuardState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let refuse = |denial: Denial| error_response(denial.status, denial.code);
    let Ok(ip) = guard.0.client_ip.resolve(peer.ip(), request.headers()) else {
        return refuse(Denial::INVALID_FORWARDED_FOR);
    };
    let public_path = guard.0.public_path_of(request.uri().path());
    // Restrictions look at the address and the path only.
    let facts = Facts {
        verb: request.method().as_str(),
        path: &public_path,
        query: None,
        ip,
        user_agent: "",
        session_id: None,
        csrf_token: None,
        api_key: ApiKeyHeaders::default(),
    };
    let policy = guard.0.gate.policy.current();
    if let Err(denial) = guard.0.gate.check_restrictions(&policy, &facts) {
        return refuse(denial);
    }
    drop(policy);
    request.extensions_mut().insert(ClientAddr(ip));
    next.run(request).await
}
