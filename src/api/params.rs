//! Request parameters as Grape sees them: the query string, merged with a form-encoded or
//! JSON body, into one map. Rack-style `a[b]=c` keys become nested objects.

use axum::extract::{FromRequest, Request};
use http::header::CONTENT_TYPE;
use hyper::body::Body as _;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::net::form::form_pairs;

#[derive(Debug, Default, Clone)]
pub struct Params(pub Map<String, Value>, Documented);

/// The route's documented parameters, where the router attached them (debug builds): reading
/// a parameter the route's `Doc` does not list is a programming error that any test reaching
/// the handler reports, so the OpenAPI document cannot miss a parameter a handler reads.
#[derive(Debug, Default, Clone, Copy)]
pub struct Documented(Option<&'static [crate::routes::Param]>);

impl Documented {
    fn check(self, name: &str) {
        if let Some(params) = self.0 {
            debug_assert!(
                params.iter().any(|p| p.name == name),
                "handler reads the undocumented parameter {name:?}: add it to the route's Doc"
            );
        }
    }
}

/// Attached to a request by the router (debug builds) so that [`Params`] knows the route's
/// documented parameters.
#[derive(Debug, Clone, Copy)]
pub struct RouteParams(pub &'static [crate::routes::Param]);

impl Params {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.1.check(name);
        self.0.get(name)
    }

    /// The parameter as text: strings as they are, numbers and booleans as they print.
    pub fn text(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_null())
    }

    /// Present and not blank (Grape's `allow_blank: false`).
    pub fn filled(&self, name: &str) -> Option<String> {
        self.text(name).filter(|s| !s.trim().is_empty())
    }

    /// An optional integer, as Grape coerces one: absent is `None`, blank is 422
    /// `{prefix}.empty_{name}`, anything else that is not an integer 422
    /// `{prefix}.non_integer_{name}`.
    pub fn integer(&self, prefix: &str, name: &str) -> Result<Option<i64>, ApiError> {
        match self.text(name) {
            None => Ok(None),
            Some(text) if text.trim().is_empty() => {
                Err(ApiError::unprocessable(format!("{prefix}.empty_{name}")))
            }
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::unprocessable(format!("{prefix}.non_integer_{name}"))),
        }
    }

    pub fn from_query(query: Option<&str>) -> Params {
        let mut params = Params::default();
        if let Some(q) = query {
            params.merge_form(q);
        }
        params
    }

    /// The query's parameters of `request`, checked against its route's documented ones,
    /// for a handler that reads the body itself (`api::multipart`).
    pub fn of_route(request: &Request) -> Params {
        let mut params = Params::from_query(request.uri().query());
        params.1 = Documented(request.extensions().get::<RouteParams>().map(|r| r.0));
        params
    }

    /// Adds a field read from the body (`a[b]` keys nest, as in a form).
    pub fn insert(&mut self, key: &str, value: Value) {
        insert_nested(&mut self.0, key, value);
    }

    fn merge_form(&mut self, body: &str) {
        for (key, value) in form_pairs(body) {
            insert_nested(&mut self.0, &key, Value::String(value));
        }
    }
}

/// `captcha_response[geetest_challenge]` → `{"captcha_response":{"geetest_challenge":...}}`.
fn insert_nested(map: &mut Map<String, Value>, key: &str, value: Value) {
    if let Some(open) = key.find('[')
        && key.ends_with(']')
        && open > 0
    {
        let outer = &key[..open];
        let inner = &key[open + 1..key.len() - 1];
        if !inner.is_empty() && !inner.contains('[') {
            let entry = map
                .entry(outer.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(nested) = entry {
                nested.insert(inner.to_string(), value);
            }
            return;
        }
    }
    map.insert(key.to_string(), value);
}

/// The largest body the parameter reader takes (`server.max_body_bytes`), put on each request
/// by the router: a body announced longer is refused with 413 before a byte of it is read,
/// instead of being read up to the limit (or waited for until the body timeout).
#[derive(Debug, Clone, Copy)]
pub struct BodyCap(pub usize);

fn too_large() -> ApiError {
    ApiError::new(
        http::StatusCode::PAYLOAD_TOO_LARGE,
        "request.body_too_large",
    )
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Params, ApiError> {
        if let Some(BodyCap(cap)) = req.extensions().get::<BodyCap>().copied()
            && req.body().size_hint().lower() > cap as u64
        {
            return Err(too_large());
        }
        let mut params = Params::from_query(req.uri().query());
        params.1 = Documented(req.extensions().get::<RouteParams>().map(|r| r.0));
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(body_error)?;
        if body.is_empty() {
            return Ok(params);
        }
        if content_type.starts_with("application/json") {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(map)) => params.0.extend(map),
                Ok(Value::Null) => {}
                _ => return Err(ApiError::bad_request("request.invalid_json")),
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded")
            || content_type.is_empty()
        {
            let text = std::str::from_utf8(&body)
                .map_err(|_| ApiError::bad_request("request.invalid_encoding"))?;
            params.merge_form(text);
        } else {
            return Err(ApiError::new(
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "request.unsupported_media_type",
            ));
        }
        Ok(params)
    }
}

/// Why the body could not be read: too large (413), or too slow (408, see
/// `server::bodies`). A client that went away gets the same 408; nobody reads it.
fn body_error(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
    match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => too_large(),
        _ => ApiError::new(http::StatusCode::REQUEST_TIMEOUT, "request.timeout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_nest() {
        let p = Params::from_query(Some(
            "email=a%40b.c&password=p+w&captcha_response[geetest_seccode]=x",
        ));
        assert_eq!(p.text("email").as_deref(), Some("a@b.c"));
        assert_eq!(p.text("password").as_deref(), Some("p w"));
        assert_eq!(p.get("captcha_response").unwrap()["geetest_seccode"], "x");
        assert!(p.filled("missing").is_none());
    }

    const DOCUMENTED: &[crate::routes::Param] = &[crate::routes::param(
        "email",
        crate::routes::In::Body,
        true,
        "",
    )];

    #[test]
    fn documented_parameters_read_freely() {
        let mut p = Params::from_query(Some("email=a%40b.c"));
        p.1 = Documented(Some(DOCUMENTED));
        assert_eq!(p.text("email").as_deref(), Some("a@b.c"));
    }

    #[test]
    #[should_panic(expected = "undocumented parameter \"password\"")]
    fn reading_an_undocumented_parameter_fails_the_test_that_reaches_it() {
        let mut p = Params::from_query(Some("password=x"));
        p.1 = Documented(Some(DOCUMENTED));
        let _ = p.filled("password");
    }

    #[test]
    fn blank_is_not_filled() {
        let p = Params::from_query(Some("a=&b=%20"));
        assert!(p.has("a"));
        assert!(p.filled("a").is_none());
        assert!(p.filled("b").is_none());
    }
}
