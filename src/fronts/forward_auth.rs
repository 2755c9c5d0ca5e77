//! Traefik forwardAuth: the original request travels in `X-Forwarded-Method`,
//! `X-Forwarded-Uri` (path and query) and `X-Forwarded-For`. Traefik sets them from the real
//! request only with `trustForwardHeader: false` (the shipped example); with `true`, a client
//! behind a trusted hop could choose the URI and method that get judged. Traefik copies a 2xx answer's
//! `Authorization` to the upstream (with `authResponseHeaders`) and returns any other answer
//! to the client as it is, so denials keep their real status and body.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;

use super::{DecisionState, allow_response, decide, denial_response, original_from_headers};
use crate::gate::Denial;
use crate::net::headers::{X_FORWARDED_METHOD, X_FORWARDED_URI};

pub async fn handle(
    State(front): State<DecisionState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let headers = request.headers();
    // Traefik forwards the request line as it came (cleaned or not, depending on its version
    // and `sanitizePath`).
    let Some(original) = original_from_headers(headers, X_FORWARDED_METHOD, X_FORWARDED_URI) else {
        return denial_response(Denial::INVALID_REQUEST);
    };
    let client = front.client_ip.resolve(peer.ip(), headers);
    match decide(&front, "forward_auth", &original, client, headers).await {
        Ok(bearer) => allow_response(bearer.as_ref()),
        Err(denial) => denial_response(denial),
    }
}
