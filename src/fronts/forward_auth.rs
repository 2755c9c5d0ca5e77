//! Traefik forwardAuth: the original request travels in `X-Forwarded-Method`,
//! `X-Forwarded-Uri` (path and query) and `X-Forwarded-For`. Traefik copies a 2xx answer's
//! `Authorization` to the upstream (with `authResponseHeaders`) and returns any other answer
//! to the client as it is, so denials keep their real status and body.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use http::StatusCode;

use super::{allow_response, decide, denial_response};
use crate::app::App;
use crate::gate::Denial;
use crate::net::headers::{X_FORWARDED_METHOD, X_FORWARDED_URI};
use crate::net::path::split_query;

pub async fn handle(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let headers = request.headers();
    let text = |name: http::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(uri) = text(X_FORWARDED_URI).filter(|u| u.starts_with('/')) else {
        return denial_response(Denial {
            status: StatusCode::BAD_REQUEST,
            code: "authz.invalid_request",
        });
    };
    let verb = text(X_FORWARDED_METHOD)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let (raw_path, query) = split_query(uri);
    match decide(
        &app,
        "forward_auth",
        &verb,
        raw_path,
        query,
        peer.ip(),
        headers,
    )
    .await
    {
        Ok(bearer) => allow_response(bearer.as_deref()),
        Err(denial) => denial_response(denial),
    }
}
