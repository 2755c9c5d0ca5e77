//! The one shape of every error this service writes itself: `{"errors":["<code>"]}` as JSON
//! with the status (Barong's, and decisions.md #21 for the decision fronts).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// `{"errors":["<code>"]}` with `status`. Codes are our own constants, never client text, so
/// they need no escaping.
pub fn error_response(status: StatusCode, code: &str) -> Response {
    let body = format!(r#"{{"errors":["{code}"]}}"#);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
