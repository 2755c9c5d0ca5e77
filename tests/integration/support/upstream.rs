//! A stand-in upstream: answers every request with what it received, as JSON, so tests can
//! assert exactly which headers, path and body reached the service behind the gateway.
//! `/slow` waits before answering; `/ws` switches protocols and echoes bytes; `/chunked`
//! answers in chunks without a length; `/big` streams 16 MiB. Each answer names the port the
//! request came from (`peer`), so tests can tell which connection carried it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Upstream {
    pub addr: SocketAddr,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(echo);
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Upstream { addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn echo(ConnectInfo(peer): ConnectInfo<SocketAddr>, mut request: Request) -> Response {
    let path = request.uri().path().to_string();
    if path.ends_with("/chunked") {
        let chunks = ["one ", "two ", "three"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c)));
        return Body::from_stream(futures_util::stream::iter(chunks)).into_response();
    }
    if path.ends_with("/big") {
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let chunks = std::iter::repeat_n(chunk, 256).map(Ok::<_, std::io::Error>);
        return Body::from_stream(futures_util::stream::iter(chunks)).into_response();
    }
    if path.ends_with("/slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if path.ends_with("/ws") {
        let upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("upgrade", "echo")
            .header("connection", "upgrade")
            .body(Body::empty())
            .unwrap();
    }
    let method = request.method().to_string();
    let query = request.uri().query().map(str::to_string);
    let mut headers = serde_json::Map::new();
    for (name, value) in request.headers() {
        let value = value.to_str().unwrap_or("").to_string();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| *v = format!("{}, {value}", v.as_str().unwrap()).into())
            .or_insert(value.into());
    }
    let body: Bytes = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap();
    let digest = portcullis::crypto::sha256_hex(&body);
    (
        [("x-upstream", "echo")],
        axum::Json(serde_json::json!({
            "method": method,
            "path": path,
            "query": query,
            "headers": headers,
            "body_length": body.len(),
            "body_sha256": digest,
            "peer": peer.port(),
        })),
    )
        .into_response()
}
