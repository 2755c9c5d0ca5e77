//! Guards in front of the auth API: the same gate the decision fronts use.
//!
//! Identity and public routes are reachable without identity, but restrictions still apply
//! to them (blocklogin only matters on the login route), exactly as they would behind Envoy.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::App;
use crate::fronts;

/// Restrictions (whitelist, maintenance, blacklist, blocklogin) for the request's public path.
pub async fn restrictions(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let public_path = app.public_path_of(request.uri().path());
    let ip = app.client_ip.resolve(peer.ip(), request.headers());
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
    next.run(request).await
}
