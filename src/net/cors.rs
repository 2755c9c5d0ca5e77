//! Cross-origin resource sharing for the auth API, as Barong's rack-cors does it on `/api/*`:
//! origins from `cors.origins` (`*` or a comma list of http(s) origins), every method, any
//! request header, an optional credentials flag and a max-age.
//!
//! A request without `Origin` passes untouched. A preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) is answered here with 200 and never reaches a handler;
//! from an origin not on the list it gets no CORS headers, so the browser refuses it. Actual
//! responses from an allowed origin carry the headers whatever their status (401 and 422
//! included), so a front end can read the error codes.
//!
//! The proxied upstreams are not covered: they answer for their own CORS (Peatio has its own
//! rack-cors), and two `Access-Control-Allow-Origin` headers would make browsers refuse both.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::config::{self, CorsOrigins};

const METHODS: &str = "GET, POST, DELETE, PUT, PATCH, OPTIONS, HEAD";
const SEC_FETCH_SITE: http::HeaderName = http::HeaderName::from_static("sec-fetch-site");
/// Headers a cross-origin script may read: the admin pagination headers and our 429's hint.
const EXPOSED: &str = "Total, Page, Per-Page, Retry-After";

/// The policy, from the parsed `cors.*` settings (`config` checked the origins and that
/// credentials come with listed origins only).
#[derive(Debug, Clone)]
pub struct Cors {
    origins: CorsOrigins,
    max_age: HeaderValue,
    credentials: bool,
}

impl Cors {
    pub fn new(settings: &config::Cors) -> Cors {
        Cors {
            origins: settings.origins.clone(),
            max_age: HeaderValue::from(settings.max_age.as_secs()),
            credentials: settings.allow_credentials,
        }
    }

    /// True for a form a page of another site submits without asking: a CORS-simple body (a
    /// form or plain text, which browsers send cross-site without a preflight) from a
    /// cross-site page (`Sec-Fetch-Site: cross-site`, or, from browsers that do not say, an
    /// `Origin` other than the request's own host) that is not a listed origin. On the routes
    /// that open a session this is login CSRF: a victim logged into the attacker's account.
    /// API clients and bots send no such headers, and front ends on listed origins pass.
    pub fn is_cross_site_form(&self, headers: &HeaderMap) -> bool {
        let simple_body = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .is_none_or(|t| {
                matches!(
                    t.as_str(),
                    "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
                )
            });
        if !simple_body {
            return false;
        }
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let origin = text(header::ORIGIN);
        let cross_site = match text(SEC_FETCH_SITE) {
            Some(site) => site.eq_ignore_ascii_case("cross-site"),
            None => origin.is_some_and(|origin| !same_origin(origin, headers)),
        };
        cross_site && !origin.is_some_and(|o| self.lists(o))
    }

    /// True when `origin` is one of the listed origins (`*` lists none).
    pub fn lists(&self, origin: &str) -> bool {
        self.origins.lists(origin)
    }

    /// The `Access-Control-Allow-Origin` value for this request's origin, if it is allowed.
    fn allow_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        if self.origins.any() {
            return Some(HeaderValue::from_static("*"));
        }
        self.lists(origin.to_str().ok()?).then(|| origin.clone())
    }

    fn decorate(&self, headers: &mut HeaderMap, allow: HeaderValue) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        if !self.origins.any() {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    fn preflight(&self, request: &Request) -> Response {
        let mut response = StatusCode::OK.into_response();
        let headers = request.headers();
        let Some(allow) = headers
            .get(header::ORIGIN)
            .and_then(|origin| self.allow_origin(origin))
        else {
            return response;
        };
        let out = response.headers_mut();
        self.decorate(out, allow);
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(METHODS),
        );
        if let Some(asked) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        out.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        response
    }
}

/// True when `origin` names the host the request was sent to (a page of the same site and
/// port asked).
pub fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// The middleware around the auth API's routes.
pub async fn middleware(State(cors): State<Arc<Cors>>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return next.run(request).await;
    };
    if request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return cors.preflight(&request);
    }
    let allow = cors.allow_origin(origin);
    let mut response = next.run(request).await;
    if let Some(allow) = allow {
        let headers = response.headers_mut();
        cors.decorate(headers, allow);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &str) -> Cors {
        Cors::new(&config::Cors {
            origins: origins.parse().unwrap(),
            max_age: std::time::Duration::from_secs(3600),
            allow_credentials: false,
        })
    }

    #[test]
    fn origins_are_compared_in_their_normal_form() {
        let c = cors("https://Exchange.example, http://localhost:3000");
        let allowed = |o: &'static str| c.allow_origin(&HeaderValue::from_static(o));
        assert_eq!(
            allowed("https://exchange.example:443").unwrap(),
            "https://exchange.example:443"
        );
        assert!(allowed("http://localhost:3000").is_some());
        assert!(allowed("http://exchange.example").is_none());
        assert!(allowed("https://exchange.example.evil").is_none());
        assert!(allowed("null").is_none());
    }

    #[test]
    fn any_origin_is_answered_with_a_star_and_lists_none() {
        let c = cors("*");
        let allow = c.allow_origin(&HeaderValue::from_static("https://x.example"));
        assert_eq!(allow.unwrap(), "*");
        assert!(!c.lists("https://x.example"));
        assert!(
            cors("")
                .allow_origin(&HeaderValue::from_static("https://x.example"))
                .is_none()
        );
    }

    #[test]
    fn the_preflight_max_age_is_in_seconds() {
        assert_eq!(cors("*").max_age, "3600");
    }
}
