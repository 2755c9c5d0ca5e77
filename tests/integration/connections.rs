//! Connection exhaustion, attacked with raw sockets: every state a connection can be left in
//! has a deadline, one direct client cannot take every slot, and a flood of idle sockets never
//! locks a real client out.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::raw::connect_from;
use crate::support::{Client, TestEnv};

/// Reads until the server closes; the time that took, or `None` if it stayed open `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut sink)).await {
        Ok(_) => Some(started.elapsed()),
        Err(_) => None,
    }
}

/// One HTTP/1.1 GET over a raw stream; the status line.
async fn get_status(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn sockets_that_send_nothing_or_half_a_preface_are_closed() {
    let env = TestEnv::new().await;
    let server = env.start_with("[server]\nheader_read_timeout = 1").await;

    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut half_h2 = TcpStream::connect(server.addr).await.unwrap();
    half_h2.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let mut slowloris = TcpStream::connect(server.addr).await.unwrap();
    slowloris
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    for (what, stream) in [
        ("no first byte", &mut silent),
        ("a partial HTTP/2 preface", &mut half_h2),
        ("headers that never end", &mut slowloris),
    ] {
        let closed = closed_within(stream, Duration::from_secs(5)).await;
        assert!(closed.is_some(), "a connection with {what} was kept open");
    }
}

#[tokio::test]
async fn a_flood_of_idle_sockets_never_locks_a_real_client_out() {
    let env = TestEnv::new().await;
    let server = env
        .start_with("[server]\nheader_read_timeout = 30\nmax_connections = 20")
        .await;
    // Every slot taken by sockets that send nothing (from loopback: a trusted proxy, so the
    // per-peer cap does not stop them; only the global cap is in play).
    let mut flood = Vec::new();
    for _ in 0..20 {
        flood.push(TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // A real client is served at once: the longest-silent socket makes room.
    let started = Instant::now();
    let status = tokio::time::timeout(
        Duration::from_secs(5),
        Client::new().get(server.url("/health")).send(),
    )
    .await
    .expect("a real client was locked out by idle sockets")
    .status;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // And again, with the flood renewed behind it.
    for _ in 0..20 {
        flood.push(TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let status = tokio::time::timeout(
        Duration::from_secs(5),
        Client::new().get(server.url("/health")).send(),
    )
    .await
    .expect("a real client was locked out by a renewed flood")
    .status;
    assert_eq!(status, 200);
    // The pushed-out sockets were closed by the server, not left dangling.
    let mut closed = 0;
    for stream in flood.iter_mut().take(5) {
        if closed_within(stream, Duration::from_secs(2))
            .await
            .is_some()
        {
            closed += 1;
        }
    }
    assert!(
        closed >= 2,
        "evicted sockets stay open ({closed} of 5 closed)"
    );
}

#[tokio::test]
async fn one_direct_client_cannot_take_every_slot_but_proxies_may() {
    let env = TestEnv::new().await;
    // Loopback is not a trusted proxy here: every 127.0.0.x is a direct client.
    let server = env
        .start_with(
            "[server]\nheader_read_timeout = 30\nmax_connections_per_peer = 3\n\
             [network]\ntrusted_proxies = []",
        )
        .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", server.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = connect_from("127.0.0.1", server.addr).await;
    let refused = closed_within(&mut fourth, Duration::from_secs(2)).await;
    assert!(
        refused.is_some(),
        "a fourth connection from one peer was kept"
    );
    // Another client is served.
    let mut other = connect_from("127.0.0.2", server.addr).await;
    assert_eq!(get_status(&mut other, "/health").await, "HTTP/1.1 200 OK");
    // The held connections still work: the cap refuses, it does not evict.
    assert_eq!(get_status(&mut held[0], "/health").await, "HTTP/1.1 200 OK");

    // A trusted proxy (nginx, Envoy) carries every client's requests: no per-peer cap.
    let behind_proxy = env
        .start_with("[server]\nheader_read_timeout = 30\nmax_connections_per_peer = 3")
        .await;
    let mut proxied = Vec::new();
    for _ in 0..6 {
        proxied.push(connect_from("127.0.0.1", behind_proxy.addr).await);
    }
    assert_eq!(
        get_status(proxied.last_mut().unwrap(), "/health").await,
        "HTTP/1.1 200 OK"
    );
}

#[tokio::test]
async fn request_bodies_must_keep_arriving() {
    let env = TestEnv::new().await;
    let server = env
        .start_with("[server]\nbody_idle_timeout = 1\nbody_read_timeout = 3")
        .await;
    let head = "POST /api/v2/auth/identity/sessions HTTP/1.1\r\nHost: x\r\n\
                Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n";

    // Announces 100 kB, sends 10 bytes, then nothing.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(b"{\"email\":").await.unwrap();
    let started = Instant::now();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(6), stalled.read_to_end(&mut response)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a stalled body held the connection"
    );
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request.timeout"), "{text}");

    // A trickle that never pauses long enough for the idle timer: the total deadline ends it.
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    trickle.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut cut = false;
    for _ in 0..40 {
        if trickle.write_all(b" ").await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut byte = [0u8; 1];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(1), trickle.read(&mut byte)).await
        {
            // Answered (or closed): the body was cut off.
            let _ = n;
            cut = true;
            break;
        }
    }
    assert!(cut, "a trickling body was never cut off");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn idle_http2_connections_are_closed() {
    use hyper::client::conn::http2;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let env = TestEnv::new().await;
    let server = env
        .start_with("[server]\nheader_read_timeout = 1\nidle_timeout = 2")
        .await;

    // A complete preface and SETTINGS, then never a request.
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (_sender, connection) =
        http2::handshake::<_, _, Empty<Bytes>>(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let silent = tokio::spawn(connection);
    let ended = tokio::time::timeout(Duration::from_secs(5), silent).await;
    assert!(
        ended.is_ok(),
        "an HTTP/2 connection with no request stayed open"
    );

    // One request, then idle: closed after idle_timeout, not kept forever.
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/health", server.addr))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(6), driver).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection stayed open");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed before idle_timeout: {:?}",
        started.elapsed()
    );
}
