//! The decision fronts (Barong/Envoy, nginx, forward-auth) and the built-in proxy.

use std::time::Duration;

use crate::support::upstream::Upstream;
use crate::support::{Client, TestEnv, UA, verify_with_jwks};

const BALANCES: &str = "/api/v2/peatio/account/balances";

#[tokio::test]
async fn nginx_front_speaks_only_200_401_403_and_carries_the_real_answer() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let client = Client::new();
    let nginx = server.url("/api/v2/auth/_/nginx");

    let ok = client
        .get(&nginx)
        .session(&session)
        .header("x-original-method", "POST")
        .header(
            "x-original-uri",
            "/api/v2/peatio/market/orders?market=btcusd",
        )
        .header("x-csrf-token", &session.csrf)
        .send()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    verify_with_jwks(&server, ok.header("authorization").unwrap()).await;

    // The original method counts: POST without the CSRF header.
    let denied = client
        .get(&nginx)
        .session(&session)
        .header("x-original-method", "POST")
        .header("x-original-uri", BALANCES)
        .send()
        .await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("x-authz-status"), Some("401"));
    assert_eq!(
        denied.header("x-authz-error"),
        Some("authz.missing_csrf_token")
    );

    // 422 and 471 become 403 for nginx, with the real status alongside.
    let bad_headers = client
        .get(&nginx)
        .header("x-original-method", "GET")
        .header("x-original-uri", BALANCES)
        .header("x-auth-apikey", "abc")
        .send()
        .await;
    assert_eq!(bad_headers.status, 403);
    assert_eq!(bad_headers.header("x-authz-status"), Some("422"));
    assert_eq!(
        bad_headers.header("x-authz-error"),
        Some("authz.invalid_api_key_headers")
    );

    let missing = client.get(&nginx).send().await;
    assert_eq!(missing.status, 403);
    assert_eq!(missing.header("x-authz-status"), Some("400"));

    // The renderer the example config uses for denials.
    let rendered = client
        .get(server.url("/api/v2/auth/_/nginx/denied"))
        .header("x-authz-status", "471")
        .header("x-authz-error", "authz.restrict.maintenance")
        .send()
        .await;
    rendered.assert_error(471, "authz.restrict.maintenance");
    assert_eq!(rendered.header("content-type"), Some("application/json"));
    let forged = client
        .get(server.url("/api/v2/auth/_/nginx/denied"))
        .header("x-authz-status", "200")
        .header("x-authz-error", "<script>")
        .send()
        .await;
    forged.assert_error(403, "authz.invalid_request");
}

#[tokio::test]
async fn forward_auth_front_reads_traefiks_headers_and_keeps_real_statuses() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let client = Client::new();
    let url = server.url("/api/v2/auth/_/forward-auth");
    let ok = client
        .get(&url)
        .session(&session)
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", BALANCES)
        .send()
        .await;
    assert_eq!(ok.status, 200);
    assert!(ok.header("authorization").unwrap().starts_with("Bearer "));
    client
        .get(&url)
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", BALANCES)
        .header("x-auth-apikey", "")
        .send()
        .await
        .assert_error(422, "authz.invalid_api_key_headers");
    client
        .get(&url)
        .send()
        .await
        .assert_error(400, "authz.invalid_request");
}

#[tokio::test]
async fn barong_front_never_answers_5xx_to_envoy() {
    let env = TestEnv::new().await;
    env.sql("INSERT INTO restrictions (category, scope, value, code) VALUES ('blacklist', 'ip', '4.4.4.4', 503)")
        .await;
    let server = env.start().await;
    let denied = Client::new()
        .get(server.decision(BALANCES))
        .header("x-forwarded-for", "4.4.4.4")
        .send()
        .await;
    denied.assert_error(403, "authz.restrict.blacklist");
    assert_eq!(denied.header("x-authz-status"), Some("503"));
    assert_eq!(denied.header("content-type"), Some("application/json"));
    // The built-in proxy has no such constraint: it answers the real status.
    let upstream = Upstream::start().await;
    let proxy = env
        .start_with(&format!(
            "[[routes]]\nprefix = \"/api/v2/peatio\"\nupstream = \"{}\"",
            upstream.url()
        ))
        .await;
    Client::new()
        .get(proxy.url(BALANCES))
        .header("x-forwarded-for", "4.4.4.4")
        .send()
        .await
        .assert_error(503, "authz.restrict.blacklist");
}

#[tokio::test]
async fn proxy_forwards_with_a_bearer_and_strips_client_credentials() {
    let env = TestEnv::new().await;
    let upstream = Upstream::start().await;
    let server = env
        .start_with(&format!(
            "[[routes]]\nprefix = \"/api/v2/peatio\"\nupstream = \"{}\"\nrewrite = \"/api/v2\"",
            upstream.url()
        ))
        .await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let client = Client::new();

    let body = vec![b'x'; 3 * 1024 * 1024];
    let response = client
        .post(server.url("/api/v2/peatio/account/withdraws?currency=btc&amount=1"))
        .header(
            "cookie",
            &format!("theme=dark; {}; lang=en", session.cookie_header()),
        )
        .header("user-agent", UA)
        .header("x-csrf-token", &session.csrf)
        .header("authorization", "Bearer forged")
        .header("x-forwarded-for", "127.0.0.9")
        .body(body.clone())
        .send()
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-upstream"), Some("echo"));
    let seen = response.json();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/api/v2/account/withdraws");
    assert_eq!(seen["query"], "currency=btc&amount=1");
    assert_eq!(seen["body_length"], body.len());
    assert_eq!(seen["body_sha256"], portcullis::crypto::sha256_hex(&body));
    let headers = &seen["headers"];
    let bearer = headers["authorization"].as_str().unwrap();
    assert_ne!(bearer, "Bearer forged");
    let claims = verify_with_jwks(&server, bearer).await;
    assert_eq!(claims["uid"], user.uid.as_str());
    assert_eq!(headers["cookie"], "theme=dark; lang=en");
    assert!(headers.get("x-csrf-token").is_none());
    assert_eq!(headers["x-forwarded-for"], "127.0.0.9, 127.0.0.1");
    assert_eq!(headers["x-real-ip"], "127.0.0.9");
    assert_eq!(headers["host"], upstream.addr.to_string());

    // Headers an upstream might read instead of what the gate judged never reach it; a
    // lower-case method goes on by its canonical name.
    let mut overriding = client
        .request("post", server.url("/api/v2/peatio/account/withdraws"))
        .session(&session)
        .header("x-csrf-token", &session.csrf);
    for (name, value) in [
        ("forwarded", "for=6.6.6.6"),
        ("cf-connecting-ip", "6.6.6.6"),
        ("true-client-ip", "6.6.6.6"),
        ("x-client-ip", "6.6.6.6"),
        ("x-original-url", "/api/v2/admin"),
        ("x-rewrite-url", "/api/v2/admin"),
        ("x-http-method-override", "DELETE"),
        ("x-method-override", "DELETE"),
    ] {
        overriding = overriding.header(name, value);
    }
    let seen = overriding.send().await.json();
    assert_eq!(seen["method"], "POST");
    for name in [
        "forwarded",
        "cf-connecting-ip",
        "true-client-ip",
        "x-client-ip",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-method-override",
    ] {
        assert!(
            seen["headers"].get(name).is_none(),
            "{name} reached the upstream"
        );
    }
    // A websocket handshake carrying the session cookie from another site's page is refused.
    let hijack = client
        .get(server.url("/api/v2/peatio/public/ws"))
        .session(&session)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("origin", "https://evil.example")
        .send()
        .await;
    hijack.assert_error(403, "gateway.origin_not_allowed");

    // API-key headers never reach the upstream either.
    let bot = env.user_with("member", "active", true).await;
    let key = env.api_key(&bot.uid).await;
    let seen = client
        .get(server.url("/api/v2/peatio/account/balances"))
        .headers(&key.headers())
        .send()
        .await
        .json();
    for name in ["x-auth-apikey", "x-auth-nonce", "x-auth-signature"] {
        assert!(seen["headers"].get(name).is_none(), "{name} leaked");
    }
    assert_eq!(
        crate::support::jwt_claims(&seen["headers"]["authorization"].as_str().unwrap()[7..])["uid"],
        bot.uid.as_str()
    );

    // Public paths pass without a token; denials never reach the upstream.
    let public = client
        .get(server.url("/api/v2/peatio/public/markets"))
        .send()
        .await
        .json();
    assert!(public["headers"].get("authorization").is_none());
    client
        .get(server.url("/api/v2/peatio/account/balances"))
        .send()
        .await
        .assert_error(401, "authz.invalid_session");
    // The upstream receives the normalised path the rules saw.
    let seen = client
        .get(server.url("/api/v2/peatio/public/../public/./markets"))
        .send()
        .await
        .json();
    assert_eq!(seen["path"], "/api/v2/public/markets");
    client
        .get(server.url("/api/v2/unrouted"))
        .send()
        .await
        .assert_error(404, "gateway.route_not_found");
}

#[tokio::test]
async fn proxy_reports_unavailable_and_slow_upstreams() {
    let env = TestEnv::new().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let upstream = Upstream::start().await;
    let server = env
        .start_with(&format!(
            "[[routes]]\nprefix = \"/down\"\nupstream = \"http://{closed}\"\n\
             [[routes]]\nprefix = \"/api/v2/peatio\"\nupstream = \"{}\"\ntimeout = 1",
            upstream.url()
        ))
        .await;
    env.sql("INSERT INTO authz_rules (kind, path) VALUES ('pass', 'down')")
        .await;
    TestEnv::eventually(2000, || async {
        Client::new().get(server.url("/down/x")).send().await.status == 502
    })
    .await;
    Client::new()
        .get(server.url("/down/x"))
        .send()
        .await
        .assert_error(502, "gateway.upstream_unavailable");
    Client::new()
        .get(server.url("/api/v2/peatio/public/slow"))
        .send()
        .await
        .assert_error(504, "gateway.upstream_timeout");
}

/// An upstream that refuses connections leaves its route's rotation after `max_fails` in a
/// row, so the requests go to the others; after `fail_timeout` the next request tries it again,
/// and once it answers it is back.
#[tokio::test]
async fn a_refusing_upstream_leaves_the_rotation_and_comes_back() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new().await;
    let live = Upstream::start().await;
    let gone = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = env
        .start_with(&format!(
            "[[routes]]\nprefix = \"/api/v2/peatio\"\nupstream = [\"{}\", \"http://{gone}\"]\n\
             max_fails = 2\nfail_timeout = 1",
            live.url()
        ))
        .await;
    let client = Client::new();
    let statuses = |n: usize| {
        let client = &client;
        let server = &server;
        async move {
            let mut statuses = Vec::new();
            for _ in 0..n {
                let response = client
                    .get(server.url("/api/v2/peatio/public/markets"))
                    .send()
                    .await;
                statuses.push((response.status, response.text()));
            }
            statuses
        }
    };
    // Half the turns are the refusing one's, until it has refused twice.
    let first = statuses(4).await;
    let refused = first.iter().filter(|(status, _)| *status == 502).count();
    assert_eq!(refused, 2, "{first:?}");
    let then = statuses(8).await;
    assert!(then.iter().all(|(status, _)| *status == 200), "{then:?}");

    // It comes back on the same port, answering for itself.
    let revived = tokio::net::TcpListener::bind(gone).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = revived.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nback")
                .await;
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let after = statuses(6).await;
    assert!(after.iter().all(|(status, _)| *status == 200), "{after:?}");
    assert!(after.iter().any(|(_, body)| body == "back"), "{after:?}");
}

/// Proxied paths skip the router only where no endpoint could answer: a route whose prefix
/// covers an endpoint (here `/health`, and the decision endpoint's `{*path}`) leaves the
/// endpoint answering, as when the proxy was only the router's fallback; the paths beside it
/// are proxied.
#[tokio::test]
async fn an_endpoint_wins_over_a_proxy_route_that_covers_its_path() {
    let env = TestEnv::new().await;
    let upstream = Upstream::start().await;
    let server = env
        .start_with(&format!(
            "[[routes]]\nprefix = \"/health\"\nupstream = \"{0}\"\n\
             [[routes]]\nprefix = \"/api/v2/auth/api\"\nupstream = \"{0}\"\n\
             [[routes]]\nprefix = \"/api/v2/peatio\"\nupstream = \"{0}\"",
            upstream.url()
        ))
        .await;
    let health = Client::new().get(server.url("/health")).send().await;
    assert_eq!(health.status, 200);
    assert_eq!(health.header("x-upstream"), None, "{}", health.text());
    assert_eq!(health.json()["postgres"], true, "{}", health.text());
    let decision = Client::new()
        .get(server.decision("/api/v2/peatio/public/markets"))
        .send()
        .await;
    assert_eq!(decision.status, 200);
    assert_eq!(decision.header("x-upstream"), None, "{}", decision.text());
    // Under the same prefixes, paths no endpoint matches go to the upstream.
    env.sql("INSERT INTO authz_rules (kind, path) VALUES ('pass', 'health')")
        .await;
    TestEnv::eventually(2000, || async {
        Client::new()
            .get(server.url("/health/x"))
            .send()
            .await
            .status
            == 200
    })
    .await;
    for path in ["/health/x", "/api/v2/peatio/public/markets"] {
        let proxied = Client::new().get(server.url(path)).send().await;
        assert_eq!(proxied.status, 200, "{path}: {}", proxied.text());
        assert_eq!(proxied.header("x-upstream"), Some("echo"), "{path}");
        assert_eq!(proxied.json()["path"], path);
    }
}

/// The proxy keeps upstream connections: one carries request after request, whatever the
/// answer's framing; one whose answer the client abandoned is closed, not reused; and one the
/// upstream closed while it sat idle is replaced without the client noticing.
#[tokio::test]
async fn proxy_reuses_upstream_connections_only_when_their_answer_was_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new().await;
    let upstream = Upstream::start().await;
    // Answers one request per connection, then closes it without saying so.
    let one_shot = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let one_shot_addr = one_shot.local_addr().unwrap();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = one_shot.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
        }
    });
    let server = env
        .start_with(&format!(
            "[[routes]]\nprefix = \"/api/v2/peatio\"\nupstream = \"{}\"\n\
             [[routes]]\nprefix = \"/api/v2/oneshot\"\nupstream = \"http://{one_shot_addr}\"",
            upstream.url()
        ))
        .await;
    env.sql("INSERT INTO authz_rules (kind, path) VALUES ('pass', 'api/v2/oneshot')")
        .await;
    let client = Client::new();
    let peer = |response: crate::support::Response| {
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()["peer"].as_u64().unwrap()
    };

    // Sequential requests ride one connection, after a length-framed answer and after a
    // chunked one alike.
    let first = peer(
        client
            .get(server.url("/api/v2/peatio/public/markets"))
            .send()
            .await,
    );
    let chunked = client
        .get(server.url("/api/v2/peatio/public/chunked"))
        .send()
        .await;
    assert_eq!(
        (chunked.status, chunked.text().as_str()),
        (200, "one two three")
    );
    for _ in 0..3 {
        let again = peer(
            client
                .get(server.url("/api/v2/peatio/public/markets"))
                .send()
                .await,
        );
        assert_eq!(
            again, first,
            "a new upstream connection for a sequential request"
        );
    }

    // A client that hangs up in the middle of a long answer takes that connection with it.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /api/v2/peatio/public/big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut some = vec![0u8; 4096];
    let n = stream.read(&mut some).await.unwrap();
    assert!(some[..n].starts_with(b"HTTP/1.1 200"));
    drop(stream);
    let mut after = Vec::new();
    for _ in 0..3 {
        after.push(peer(
            client
                .get(server.url("/api/v2/peatio/public/markets"))
                .send()
                .await,
        ));
    }
    assert!(after.iter().all(|p| *p == after[0]), "{after:?}");

    // An upstream that closes each connection after one answer: every request still succeeds.
    TestEnv::eventually(2000, || async {
        client
            .get(server.url("/api/v2/oneshot/x"))
            .send()
            .await
            .status
            == 200
    })
    .await;
    let before = served.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..5 {
        let response = client.get(server.url("/api/v2/oneshot/x")).send().await;
        assert_eq!((response.status, response.text().as_str()), (200, "ok"));
    }
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), before + 5);
}

/// A websocket through the proxy's `/api/v2/ranger` route to the test upstream's echo: the
/// connection, once the 101 has been read.
async fn open_websocket(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /api/v2/ranger/public/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

#[tokio::test]
async fn proxy_passes_protocol_upgrades_through() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new().await;
    let upstream = Upstream::start().await;
    let server = env
        .start_with(&format!(
            "[[routes]]\nprefix = \"/api/v2/ranger\"\nupstream = \"{}\"",
            upstream.url()
        ))
        .await;
    let mut stream = open_websocket(server.addr).await;
    stream.write_all(b"ping over the tunnel").await.unwrap();
    let mut echoed = [0u8; 20];
    stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping over the tunnel");

    // Any other upgrade (h2c here) goes on as a plain request: the upstream never sees the
    // Upgrade header, and an upstream that switches protocols anyway is not tunnelled.
    let echoed = Client::new()
        .get(server.url("/api/v2/ranger/public/markets"))
        .header("connection", "Upgrade, HTTP2-Settings")
        .header("upgrade", "h2c")
        .header("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA")
        .send()
        .await;
    assert_eq!(echoed.status, 200, "{}", echoed.text());
    let headers = &echoed.json()["headers"];
    assert!(headers.get("upgrade").is_none(), "{headers}");
    assert!(headers.get("http2-settings").is_none(), "{headers}");
    Client::new()
        .get(server.url("/api/v2/ranger/public/ws"))
        .header("connection", "Upgrade")
        .header("upgrade", "h2c")
        .send()
        .await
        .assert_error(502, "gateway.upstream_unavailable");
}

/// Active health checks: an upstream whose health path stops answering 2xx leaves the
/// rotation (though it still takes connections), and comes back once it answers 2xx again.
#[tokio::test]
async fn an_upstream_failing_its_health_check_leaves_the_rotation_until_it_passes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new().await;
    let live = Upstream::start().await;
    // The other upstream answers "sick" to every request; its /health says 200 or 503.
    let healthy = Arc::new(AtomicBool::new(true));
    let sick = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sick_addr = sick.local_addr().unwrap();
    tokio::spawn({
        let healthy = healthy.clone();
        async move {
            while let Ok((mut stream, _)) = sick.accept().await {
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let probe = buf[..n].starts_with(b"GET /health ");
                let answer: &[u8] = match (probe, healthy.load(Ordering::SeqCst)) {
                    (true, false) => b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    _ => b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nsick",
                };
                let _ = stream.write_all(answer).await;
            }
        }
    });
    let server = env
        .start_with(&format!(
            "[[routes]]\nprefix = \"/api/v2/peatio\"\nupstream = [\"{}\", \"http://{sick_addr}\"]\n\
             health_check = \"/health\"\nhealth_interval = 1",
            live.url()
        ))
        .await;
    let bodies = |n: usize| {
        let server = &server;
        async move {
            let mut bodies = Vec::new();
            for _ in 0..n {
                let response = Client::new()
                    .get(server.url("/api/v2/peatio/public/markets"))
                    .send()
                    .await;
                assert_eq!(response.status, 200);
                bodies.push(response.text());
            }
            bodies
        }
    };
    assert!(bodies(4).await.iter().any(|body| body == "sick"));
    healthy.store(false, Ordering::SeqCst);
    // Out within a check interval (and a little).
    TestEnv::eventually(2_500, || async {
        bodies(6).await.iter().all(|body| body != "sick")
    })
    .await;
    healthy.store(true, Ordering::SeqCst);
    TestEnv::eventually(2_500, || async {
        bodies(4).await.iter().any(|body| body == "sick")
    })
    .await;
}

/// Requests piling up on a slow upstream each end at their route's timeout, and meanwhile the
/// node answers everything else as fast as before.
#[tokio::test]
async fn a_slow_upstream_cannot_exhaust_the_gateway() {
    let env = TestEnv::new().await;
    let upstream = Upstream::start().await;
    let server = env
        .start_with(&format!(
            "[[routes]]\nprefix = \"/api/v2/peatio\"\nupstream = \"{}\"\ntimeout = 1",
            upstream.url()
        ))
        .await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let slow: Vec<_> = (0..150)
        .map(|_| {
            let url = server.url("/api/v2/peatio/public/slow");
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let answer = Client::new().get(url).send().await;
                (answer.status, answer.errors(), started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // While they wait: decisions, and the auth API, answer at once.
    for _ in 0..20 {
        let started = std::time::Instant::now();
        assert_eq!(server.balances_status(&session).await, 200);
        let ping = Client::new().get(server.public("ping")).send().await;
        assert_eq!(ping.status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "took {:?}",
            started.elapsed()
        );
    }
    for request in slow {
        let (status, errors, took) = request.await.unwrap();
        assert_eq!(
            (status, errors),
            (504, vec!["gateway.upstream_timeout".to_string()])
        );
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }
}

/// SIGTERM: no new connection is taken, a long poll in flight gets its answer, a websocket
/// keeps working, and the node is gone once they are done or the grace period is over.
#[tokio::test]
async fn shutdown_drains_long_polls_and_websockets_up_to_the_grace_period() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new().await;
    let upstream = Upstream::start().await;
    let server = env
        .start_with(&format!(
            "[server]\nshutdown_grace = 4\n\
             [[routes]]\nprefix = \"/api/v2/ranger\"\nupstream = \"{}\"",
            upstream.url()
        ))
        .await;
    let addr = server.addr;
    // A long poll: the upstream answers after three seconds.
    let long_poll = tokio::spawn({
        let url = server.url("/api/v2/ranger/public/slow");
        async move { Client::new().get(url).send().await.status }
    });
    let mut websocket = open_websocket(addr).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopped = std::time::Instant::now();
    let serving = server.shut_down();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "a new connection is refused"
    );
    // The websocket still carries messages during the grace period.
    websocket.write_all(b"after the signal").await.unwrap();
    let mut echoed = [0u8; 16];
    websocket.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"after the signal");
    // The long poll is answered.
    assert_eq!(long_poll.await.unwrap(), 200);
    assert!(!serving.is_finished(), "the websocket is still open");
    // The open websocket holds the node until the grace period ends, and no longer.
    serving.await.unwrap().unwrap();
    let took = stopped.elapsed();
    assert!(
        took >= Duration::from_millis(3_900) && took < Duration::from_secs(6),
        "drained in {took:?}"
    );
}

#[tokio::test]
async fn health_and_jwks_are_served() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let health = Client::new().get(server.url("/health")).send().await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["postgres"], true);
    assert_eq!(health.json()["redis"], true);
    let jwks = Client::new()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .json();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["kid"], server.app.issuer().kid().as_ref());
}

#[tokio::test]
async fn the_opendax_layout_works_by_configuration() {
    // Envoy routes /api/v2/barong/* to Portcullis rewritten to /api/v2/*; rules see the public form.
    let env =
        TestEnv::with_config("[api]\nmount = \"/api/v2\"\npublic_prefix = \"/api/v2/barong\"")
            .await;
    let server = env.start().await;
    let user = env.user("member").await;
    let login = Client::new()
        .post(server.url("/api/v2/identity/sessions"))
        .header("user-agent", UA)
        .json(&serde_json::json!({ "email": user.email, "password": user.password }))
        .send()
        .await;
    assert_eq!(login.status, 200, "{}", login.text());
    let session = crate::support::Session {
        cookie: login.cookie("_barong_session").unwrap(),
        csrf: login.json()["csrf_token"].as_str().unwrap().to_string(),
    };
    // The default policies were expanded for this layout.
    let pass = Client::new()
        .post(server.decision("/api/v2/barong/identity/sessions"))
        .send()
        .await;
    assert_eq!(pass.status, 200, "{}", pass.text());
    let member = Client::new()
        .get(server.decision("/api/v2/barong/resource/users/me"))
        .session(&session)
        .send()
        .await;
    assert_eq!(member.status, 200, "{}", member.text());
    Client::new()
        .get(server.decision("/api/v2/barong/management/users"))
        .send()
        .await
        .assert_error(401, "authz.permission_denied");
    // Anything else under the mount is Barong's Grape catch-all, body and all; outside it,
    // our own code.
    let unknown = Client::new()
        .get(server.url("/api/v2/identity/no_such_thing"))
        .send()
        .await;
    assert_eq!(
        (unknown.status, unknown.json()),
        (404, serde_json::json!({ "error": "Route is not found" }))
    );
    Client::new()
        .get(server.url("/elsewhere"))
        .send()
        .await
        .assert_error(404, "gateway.route_not_found");
}

#[tokio::test]
async fn metrics_count_decisions_for_allowed_networks() {
    let handle =
        portcullis::telemetry::init_metrics().expect("the only test that installs a recorder");
    let env = TestEnv::new().await;
    let server =
        crate::support::Server::start_with_metrics(env.settings(""), Some(handle.clone())).await;
    Client::new()
        .get(server.decision("/api/v2/peatio/public/markets"))
        .send()
        .await;
    let metrics = Client::new().get(server.url("/metrics")).send().await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text().contains("portcullis_decisions_total"),
        "{}",
        metrics.text()
    );
    // Not from a network in metrics_allow: as if there were no such route.
    let closed = crate::support::Server::start_with_metrics(
        env.settings("[telemetry]\nmetrics_allow = [\"10.0.0.0/8\"]"),
        Some(handle),
    )
    .await;
    Client::new()
        .get(closed.url("/metrics"))
        .send()
        .await
        .assert_error(404, "gateway.route_not_found");
}

#[tokio::test]
async fn rotation_keys_are_published_next_to_the_signing_key() {
    let env = TestEnv::new().await;
    let next = portcullis::jwt::SigningKey::generate();
    let path =
        std::env::temp_dir().join(format!("pc-next-{}.pem", crate::support::random_suffix()));
    std::fs::write(&path, next.public_pem()).unwrap();
    let server = env
        .start_with(&format!(
            "[jwt]\nadditional_public_keys = [\"{}\"]",
            path.display()
        ))
        .await;
    let jwks = Client::new()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        vec![server.app.issuer().kid().as_ref(), next.kid.as_str()]
    );
    std::fs::remove_file(path).unwrap();
}
