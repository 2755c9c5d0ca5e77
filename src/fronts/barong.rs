//! Barong's decision endpoint, exactly as Envoy's ext_authz calls it in OpenDAX:
//! `<METHOD> <prefix>/<original path and query>` → 200, empty body, `Authorization: Bearer`;
//! or the denial's status and `{"errors":["authz.…"]}`.
//!
//! Envoy treats a 5xx from the authorization service as an error (and with
//! `failure_mode_allow` lets the request through), so a 5xx denial is answered with
//! `decision.envoy_status_for_5xx` instead; the real status is in `X-Authz-Status`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use http::{HeaderValue, StatusCode};

use super::{DecisionState, Original, X_AUTHZ_STATUS, allow_response, decide, denial_response};
use crate::net::path::Forwarding;

pub async fn handle(
    State(front): State<DecisionState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let prefix = &front.decision.prefix;
    let original = Original {
        method: request.method().as_str(),
        raw_path: request
            .uri()
            .path()
            .strip_prefix(prefix.as_str())
            .unwrap_or(""),
        query: request.uri().query(),
        // Envoy forwards the path it sent us (normalised only with `normalize_path`).
        forwarding: Forwarding::AsIs,
    };
    let client = front.client_ip.resolve(peer.ip(), request.headers());
    match decide(&front, "barong", &original, client, request.headers()).await {
        Ok(bearer) => allow_response(bearer.as_ref()),
        Err(denial) => {
            let real = denial.status;
            let mut shown = denial;
            if real.is_server_error() {
                shown.status = StatusCode::from_u16(front.decision.envoy_status_for_5xx)
                    .unwrap_or(StatusCode::FORBIDDEN);
            }
            let mut response = denial_response(shown);
            response
                .headers_mut()
                .insert(X_AUTHZ_STATUS, HeaderValue::from(real.as_u16()));
            response
        }
    }
}
