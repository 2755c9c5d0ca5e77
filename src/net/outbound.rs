//! Calls Portcullis makes to other services (captcha verification, Auth0 key sets, SMS
//! providers, KYCAID): one pooled HTTP/1 client with TLS (rustls on aws-lc-rs, Mozilla's roots), every
//! call bounded by a timeout and every answer by a size ([`MAX_ANSWER`]): a service that answers
//! with gigabytes (compromised, misconfigured, or an attacker's URL) cannot exhaust memory.
//! Plain `http://` works too, so tests can point these at local fakes.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The largest answer read from another service. Their answers are a few kilobytes (a key set,
/// a verdict); anything over this is refused as an error.
pub const MAX_ANSWER: usize = 1024 * 1024;

#[derive(Debug)]
pub struct OutboundError(pub String);

impl std::fmt::Display for OutboundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutboundError {}

/// An answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct Outbound {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Outbound {
    pub fn new() -> Outbound {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Outbound {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Answer, OutboundError> {
        let request = http::Request::get(url)
            .header(http::header::USER_AGENT, "portcullis")
            .body(Full::new(Bytes::new()))
            .map_err(|e| OutboundError(format!("bad request to {url}: {e}")))?;
        self.send(request, timeout).await
    }

    /// POSTs `pairs` as `application/x-www-form-urlencoded`.
    pub async fn post_form(
        &self,
        url: &str,
        pairs: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Answer, OutboundError> {
        self.post_form_as(url, None, pairs, timeout).await
    }

    /// POSTs `pairs` as a form, with `Authorization: <authorization>` when given (see
    /// [`basic_auth`]). The header is marked sensitive, so no debug output of the request
    /// shows it.
    pub async fn post_form_as(
        &self,
        url: &str,
        authorization: Option<&str>,
        pairs: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Answer, OutboundError> {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let mut request = http::Request::post(url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::USER_AGENT, "portcullis")
            .body(Full::new(Bytes::from(body.join("&"))))
            .map_err(|e| OutboundError(format!("bad request to {url}: {e}")))?;
        if let Some(authorization) = authorization {
            let mut value = http::HeaderValue::from_str(authorization)
                .map_err(|_| OutboundError(format!("bad Authorization for {url}")))?;
            value.set_sensitive(true);
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        self.send(request, timeout).await
    }

    /// Sends `body` (of `content_type`, when given) with `method` and extra `headers`. A header
    /// that carries a credential is marked sensitive by the caller, so that nothing derived
    /// from this request prints it.
    pub async fn request(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(http::header::HeaderName, http::HeaderValue)],
        content_type: Option<&str>,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, OutboundError> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::USER_AGENT, "portcullis");
        if let Some(content_type) = content_type {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
        }
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| OutboundError(format!("bad request to {}: {e}", host_of(url))))?;
        self.send(request, timeout).await
    }

    async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Answer, OutboundError> {
        let host = request.uri().host().unwrap_or("").to_string();
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| OutboundError(format!("{host}: {e}")))?;
            let status = response.status().as_u16();
            let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| OutboundError(format!("{host}: {e}")))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| OutboundError(format!("{host}: no answer within {timeout:?}")))?
    }
}

impl Default for Outbound {
    fn default() -> Self {
        Self::new()
    }
}

/// `Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The host part of `url`, for error messages (a URL may carry a path or query not worth
/// repeating in logs).
fn host_of(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned))
        .unwrap_or_default()
}

fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}
