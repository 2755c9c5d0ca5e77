//! Raw sockets, for requests no well-behaved client would send: bytes that are not text in a
//! header, a `#` in the request line, a client address of our choosing (127.0.0.x).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection from a chosen loopback address (127.0.0.x), as a distinct client would be.
pub async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// A raw answer: the status and the body (the bytes after the head; not de-chunked).
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends `request` (a whole HTTP/1.1 request, `Connection: close` expected) from `source` and
/// reads the answer to the end.
pub async fn send_from(source: &str, server: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = connect_from(source, server).await;
    stream.write_all(request).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawResponse {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A GET with extra raw header lines (each without its CRLF).
pub fn get(path: &str, headers: &[&[u8]]) -> Vec<u8> {
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n").into_bytes();
    for header in headers {
        request.extend_from_slice(header);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request
}
