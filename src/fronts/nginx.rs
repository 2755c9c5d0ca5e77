//! nginx `auth_request`. The sub-request is a GET carrying the original request in
//! `X-Original-Method` and `X-Original-URI`. nginx understands only 2xx, 401 and 403 from it,
//! so a denial answers 401 (when the real status is 401) or 403, with the real status and
//! code in `X-Authz-Status` / `X-Authz-Error`. The example configuration hands those to
//! [`denied`], which answers the client with the real status and body.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use http::{HeaderValue, StatusCode};

use super::{
    DecisionState, X_AUTHZ_ERROR, X_AUTHZ_STATUS, allow_response, decide, denial_response,
    error_response, original_from_headers,
};
use crate::gate::Denial;
use crate::net::headers::{X_ORIGINAL_METHOD, X_ORIGINAL_URI};

pub async fn handle(
    State(front): State<DecisionState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let headers = request.headers();
    // nginx forwards its own normalised `$uri`, cut at a raw '#'.
    let Some(original) = original_from_headers(headers, X_ORIGINAL_METHOD, X_ORIGINAL_URI) else {
        return deny(Denial::INVALID_REQUEST);
    };
    let client = front.client_ip.resolve(peer.ip(), headers);
    match decide(&front, "nginx", &original, client, headers).await {
        Ok(bearer) => allow_response(bearer.as_ref()),
        Err(denial) => deny(denial),
    }
}

fn deny(denial: Denial) -> Response {
    let shown = if denial.status == StatusCode::UNAUTHORIZED {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FORBIDDEN
    };
    let mut response = denial_response(Denial {
        status: shown,
        ..denial
    });
    let headers = response.headers_mut();
    headers.insert(X_AUTHZ_STATUS, HeaderValue::from(denial.status.as_u16()));
    headers.insert(X_AUTHZ_ERROR, HeaderValue::from_static(denial.code));
    response
}

/// Renders a denial nginx captured: the status from `X-Authz-Status` and the code from
/// `X-Authz-Error`, both validated (this endpoint only ever echoes a well-formed denial).
pub async fn denied(request: Request) -> Response {
    let headers = request.headers();
    let status = headers
        .get(X_AUTHZ_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (400..=599).contains(s))
        .and_then(|s| StatusCode::from_u16(s).ok());
    let code = headers
        .get(X_AUTHZ_ERROR)
        .and_then(|v| v.to_str().ok())
        .filter(|c| {
            c.starts_with("authz.")
                && c.len() < 64
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
        });
    match (status, code) {
        (Some(status), Some(code)) => error_response(status, code),
        _ => error_response(StatusCode::FORBIDDEN, "authz.invalid_request"),
    }
}
