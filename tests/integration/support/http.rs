//! A small HTTP/1 client for tests (hyper-util), so tests read like the requests they send.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new() -> Client {
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    pub fn request(&self, method: &str, url: impl Into<String>) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            url: url.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    pub fn get(&self, url: impl Into<String>) -> RequestBuilder {
        self.request("GET", url)
    }

    pub fn post(&self, url: impl Into<String>) -> RequestBuilder {
        self.request("POST", url)
    }

    pub fn delete(&self, url: impl Into<String>) -> RequestBuilder {
        self.request("DELETE", url)
    }
}

pub struct RequestBuilder {
    client: Client,
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Bytes,
}

impl RequestBuilder {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    pub fn headers(mut self, pairs: &[(String, String)]) -> Self {
        for (name, value) in pairs {
            self = self.header(name, value);
        }
        self
    }

    /// The session cookie and the user agent it is bound to.
    pub fn session(self, session: &super::Session) -> Self {
        self.header("cookie", &session.cookie_header())
            .header("user-agent", super::UA)
    }

    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.body = Bytes::from(serde_json::to_vec(value).unwrap());
        self.header("content-type", "application/json")
    }

    pub fn form(mut self, body: &str) -> Self {
        self.body = Bytes::from(body.to_string());
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub async fn send(self) -> Response {
        let mut request = http::Request::builder()
            .method(self.method)
            .uri(&self.url)
            .body(Full::new(self.body))
            .unwrap();
        *request.headers_mut() = self.headers;
        let response = self
            .client
            .inner
            .request(request)
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let collected = response.into_body().collect().await.expect("body read");
        let trailers = collected.trailers().cloned();
        let body = collected.to_bytes();
        Response {
            status,
            headers,
            trailers,
            body,
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    /// Trailers, when the server sent any (HTTP/1.1 needs `te: trailers` on the request).
    pub trailers: Option<HeaderMap>,
    pub body: Bytes,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `{"errors":[...]}` codes.
    pub fn errors(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors in {:?}", self.text()))
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect()
    }

    /// Asserts status and the single error code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.errors()),
            (status, vec![code.to_string()]),
            "body: {}",
            self.text()
        );
    }

    /// The value of cookie `name` set by the response.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}
