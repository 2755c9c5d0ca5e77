//! Envoy's gRPC ext_authz front, called by a real gRPC client (Python grpcio with the
//! protobuf library encoding Envoy's messages from tests/grpc/ext_authz.proto), so neither
//! the wire format nor HTTP/2 comes from our own code.

use serde_json::{Value, json};

use crate::support::{Client, Server, TestEnv, UA, repo_path, verify_with_jwks};

const BALANCES: &str = "/api/v2/peatio/account/balances";

/// One Check call; the CheckResponse as JSON.
pub async fn check(server: &Server, request: Value) -> Value {
    let mut spec = request;
    spec["target"] = json!(server.addr.to_string());
    let script = repo_path("tests/grpc/check.py");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("/usr/bin/python3")
            .arg(script)
            .arg(spec.to_string())
            .output()
            .expect("python3 with grpcio (scripts/services.sh installs it)")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "check.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("check.py prints JSON")
}

pub fn denied(response: &Value) -> (i64, i64, String) {
    let denied = &response["denied_response"];
    assert_eq!(
        denied["headers"],
        json!([{ "header": { "key": "content-type", "value": "application/json" } }])
    );
    (
        response["status"]["code"].as_i64().unwrap(),
        denied["status"]["code"].as_i64().unwrap(),
        denied["body"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn grpc_checks_allow_with_a_bearer_and_deny_with_barongs_answer() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;

    let allowed = check(
        &server,
        json!({ "method": "GET", "path": format!("{BALANCES}?currency=btc"), "headers": {
            "cookie": session.cookie_header(), "user-agent": UA,
        }}),
    )
    .await;
    assert_eq!(allowed["status"], json!({}), "code 0 is OK: {allowed}");
    let headers = &allowed["ok_response"]["headers"];
    assert_eq!(headers.as_array().unwrap().len(), 1, "{allowed}");
    assert_eq!(headers[0]["header"]["key"], "authorization");
    // `append` present and false: replace whatever Authorization the client sent.
    assert_eq!(headers[0]["append"], json!({}));
    let bearer = headers[0]["header"]["value"].as_str().unwrap();
    let claims = verify_with_jwks(&server, bearer).await;
    assert_eq!(claims["uid"], user.uid);

    // The same session on a write needs its CSRF token, as on every front.
    let no_csrf = check(
        &server,
        json!({ "method": "POST", "path": BALANCES, "headers": {
            "cookie": session.cookie_header(), "user-agent": UA,
        }}),
    )
    .await;
    assert_eq!(
        denied(&no_csrf),
        (16, 401, r#"{"errors":["authz.missing_csrf_token"]}"#.into())
    );

    let anonymous = check(&server, json!({ "method": "GET", "path": BALANCES })).await;
    assert_eq!(
        denied(&anonymous),
        (16, 401, r#"{"errors":["authz.invalid_session"]}"#.into())
    );
    assert_eq!(anonymous["status"]["message"], "authz.invalid_session");

    // A pass rule: allowed without a token.
    let public = check(
        &server,
        json!({ "method": "POST", "path": "/api/v2/auth/identity/sessions" }),
    )
    .await;
    assert_eq!(public, json!({ "status": {}, "ok_response": {} }));

    let ambiguous = check(
        &server,
        json!({ "method": "GET", "path": "/api/v2/peatio/public/..%2Faccount/balances" }),
    )
    .await;
    assert_eq!(
        denied(&ambiguous),
        (7, 400, r#"{"errors":["authz.invalid_path"]}"#.into())
    );
}

#[tokio::test]
async fn grpc_checks_read_raw_header_maps_and_api_keys() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user_with("member", "active", true).await;
    let key = env.api_key(&user.uid).await;
    let headers: serde_json::Map<String, Value> = key
        .headers()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), Value::String(value)))
        .collect();
    let allowed = check(
        &server,
        json!({ "method": "GET", "path": BALANCES, "headers": headers, "raw_headers": true }),
    )
    .await;
    let bearer = allowed["ok_response"]["headers"][0]["header"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no bearer: {allowed}"));
    assert_eq!(verify_with_jwks(&server, bearer).await["uid"], user.uid);
}

#[tokio::test]
async fn envoys_source_address_is_believed_only_from_a_trusted_peer() {
    let env = TestEnv::new().await;
    env.sql(
        "INSERT INTO restrictions (category, scope, value, code) \
         VALUES ('blacklist', 'ip', '203.0.113.9', 433)",
    )
    .await;
    let trusting = env.start().await;
    let public = json!({
        "method": "GET", "path": "/api/v2/peatio/public/markets", "source": "203.0.113.9"
    });
    assert_eq!(
        denied(&check(&trusting, public.clone()).await),
        (7, 433, r#"{"errors":["authz.restrict.blacklist"]}"#.into())
    );
    // A trusted Envoy that does not say who the client is: refused, never taken for the
    // client itself (its own address could be whitelisted).
    let unsaid =
        json!({ "method": "GET", "path": "/api/v2/peatio/public/markets", "source": null });
    assert_eq!(
        denied(&check(&trusting, unsaid.clone()).await),
        (
            7,
            400,
            r#"{"errors":["authz.invalid_forwarded_for"]}"#.into()
        )
    );
    // The test client connects from 127.0.0.1: once that is not a trusted proxy, the claimed
    // source is ignored and the connection's own address decides.
    let wary = env
        .start_with("[network]\ntrusted_proxies = []\n[decision]\ncallers = \"anyone\"")
        .await;
    assert_eq!(
        check(&wary, public).await,
        json!({ "status": {}, "ok_response": {} })
    );
    assert_eq!(
        check(&wary, unsaid).await,
        json!({ "status": {}, "ok_response": {} })
    );
}

/// One POST to the v3 Check path over HTTP/2 (as Envoy calls), with its trailers.
async fn h2_post(
    addr: std::net::SocketAddr,
    content_type: &str,
    body: Vec<u8>,
) -> crate::support::Response {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::post(format!(
        "http://{addr}/envoy.service.auth.v3.Authorization/Check"
    ))
    .header("content-type", content_type)
    .header("te", "trailers")
    .body(Full::new(bytes::Bytes::from(body)))
    .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.unwrap();
    crate::support::Response {
        status,
        headers,
        trailers: collected.trailers().cloned(),
        body: collected.to_bytes(),
    }
}

/// A CheckResponse read off the wire: (rpc status code, denied HTTP status, denied body).
fn read_denial(response: &crate::support::Response) -> (i32, i32, String) {
    use portcullis::fronts::grpc::envoy::{CheckResponse, HttpResponse};
    use prost::Message as _;
    assert_eq!(response.status, 200, "{}", response.text());
    let trailers = response.trailers.as_ref().expect("grpc-status in trailers");
    assert_eq!(
        trailers.get("grpc-status").unwrap(),
        "0",
        "a denial, not a failed call"
    );
    let body = &response.body;
    assert_eq!(body[0], 0);
    let message = CheckResponse::decode(&body[5..]).expect("a CheckResponse");
    let rpc = message.status.map_or(0, |status| status.code);
    match message.http_response {
        Some(HttpResponse::Denied(denied)) => (
            rpc,
            denied.status.map_or(0, |status| status.code),
            denied.body,
        ),
        _ => (rpc, 0, String::new()),
    }
}

/// Malformed, oversized and unreadable calls are denials (a CheckResponse with 400), never
/// failed calls: Envoy's `failure_mode_allow: true` turns a failed call into an allow.
#[tokio::test]
async fn malformed_and_oversized_checks_are_denied_never_failed() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let addr = server.addr;
    let call = move |content_type: &'static str, body: Vec<u8>| h2_post(addr, content_type, body);
    let invalid = (
        7,
        400,
        r#"{"errors":["authz.invalid_request"]}"#.to_string(),
    );
    let frame = |message: Vec<u8>| {
        let mut framed = vec![0];
        framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
        framed.extend_from_slice(&message);
        framed
    };
    let not_grpc = call("application/json", b"{}".to_vec()).await;
    assert_eq!(read_denial(&not_grpc), invalid);
    // A frame announcing 16 bytes and carrying 2.
    let cut = call("application/grpc", vec![0, 0, 0, 0, 16, 0x0a, 0x00]).await;
    assert_eq!(read_denial(&cut), invalid);
    // A whole frame holding a broken message (field 1 claims 5 bytes, has 1).
    let broken = call("application/grpc", vec![0, 0, 0, 0, 3, 0x0a, 0x05, 0x22]).await;
    assert_eq!(read_denial(&broken), invalid);
    let compressed = call("application/grpc", vec![1, 0, 0, 0, 0]).await;
    assert_eq!(read_denial(&compressed), invalid);

    // The review's crash: 33,000 distinct header names (a HeaderMap holds 32,768). Now far
    // over the size bound, and at any size over the count bound: denied, no panic.
    let check_with_headers = |count: usize| {
        use bytes::Bytes;
        use portcullis::fronts::grpc::envoy::{
            Address, AttributeContext, CheckRequest, HeaderEntry, HttpRequest, Peer, Request,
            SocketAddress,
        };
        use prost::Message as _;
        let headers = (0..count)
            .map(|i| HeaderEntry {
                key: Bytes::from(format!("x-h{i}")),
                value: Bytes::from_static(b"1"),
            })
            .collect();
        let http = HttpRequest {
            method: Bytes::from_static(b"GET"),
            path: Bytes::from_static(b"/api/v2/peatio/public/markets"),
            headers,
            header_map: None,
        };
        let source = Peer {
            address: Some(Address {
                socket_address: Some(SocketAddress {
                    address: Bytes::from_static(b"203.0.113.1"),
                }),
            }),
        };
        let check = CheckRequest {
            attributes: Some(AttributeContext {
                source: Some(source),
                request: Some(Request { http: Some(http) }),
            }),
        };
        frame(check.encode_to_vec())
    };
    let huge = call("application/grpc", check_with_headers(33_000)).await;
    assert_eq!(read_denial(&huge), invalid);
    let many = call("application/grpc", check_with_headers(600)).await;
    assert_eq!(read_denial(&many), invalid);
    // A sane one on the same path is judged normally (a pass rule: allowed, no denial).
    let fine = call("application/grpc", check_with_headers(10)).await;
    assert_eq!(read_denial(&fine).0, 0);
    // The server is still up and well.
    assert_eq!(
        Client::new().get(server.url("/health")).send().await.status,
        200
    );
}
