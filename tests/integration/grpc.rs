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
    // The test client connects from 127.0.0.1: once that is not a trusted proxy, the claimed
    // source is ignored and the connection's own address decides.
    let wary = env
        .start_with("[network]\ntrusted_proxies = []\ngateway = \"none\"")
        .await;
    assert_eq!(
        check(&wary, public).await,
        json!({ "status": {}, "ok_response": {} })
    );
}

#[tokio::test]
async fn calls_that_are_not_checks_are_refused_with_a_grpc_status() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let url = server.url("/envoy.service.auth.v3.Authorization/Check");
    let call = |content_type: &'static str, body: &'static [u8]| {
        Client::new()
            .post(url.clone())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let not_grpc = call("application/json", b"{}").await;
    assert_eq!(not_grpc.header("grpc-status"), Some("3"));
    // A frame announcing 16 bytes and carrying 2.
    let cut = call("application/grpc", &[0, 0, 0, 0, 16, 0x0a, 0x00]).await;
    assert_eq!(cut.header("grpc-status"), Some("3"));
    // A whole frame holding a broken message (field 1 claims 5 bytes, has 1).
    let broken = call("application/grpc", &[0, 0, 0, 0, 3, 0x0a, 0x05, 0x22]).await;
    assert_eq!(
        (broken.header("grpc-status"), broken.header("grpc-message")),
        (Some("3"), Some("malformed CheckRequest"))
    );
    let compressed = call("application/grpc", &[1, 0, 0, 0, 0]).await;
    assert_eq!(compressed.header("grpc-status"), Some("12"));
}
