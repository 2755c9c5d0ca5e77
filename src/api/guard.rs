//! Guards in front of the auth API: the same gate the decision fronts use.
//!
//! Identity and public routes are reachable without identity, but restrictions still apply
//! to them (blocklogin only matters on the routes that open a session), exactly as they would
//! behind Envoy. The guard resolves the client's address once and leaves it in the request
//! for the handler ([`ClientAddr`]).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::App;
use crate::fronts;
use crate::gate::Denial;

/// The client's address as the guard resolved it (see `net::client_ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Restrictions (whitelist, maintenance, blacklist, blocklogin) for the request's public path.
pub async fn restrictions(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let Ok(ip) = app.client_ip.resolve(peer.ip(), request.headers()) else {
        return fronts::denial_response(Denial::INVALID_FORWARDED_FOR);
    };
    let public_path = app.public_path_of(request.uri().path());
    let facts = fronts::facts(
        &app,
        request.method().as_str(),
        &public_path,
        request.uri().query(),
        ip,
        request.headers(),
    );
    let policy = app.gate.policy.current();
    if let Err(denial) = app.gate.check_restrictions(&policy, &facts) {
        return fronts::denial_response(denial);
    }
    drop(policy);
    request.extensions_mut().insert(ClientAddr(ip));
    next.run(request).await
}
