//! What the endpoints that edit the gate's rules (`permissions`, `restrictions`) answer to a
//! write, as Barong does. Their parameters are read with `api::readers`.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// Barong's answer to a rules write (`status 200` at the end of the Grape block): 200 with
/// the body `200`.
pub fn written() -> Response {
    (StatusCode::OK, axum::Json(200)).into_response()
}
