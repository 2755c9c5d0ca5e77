//! The KYC callback (`POST /public/kyc`), attacked as an outsider would: forged and missing
//! signatures, bodies far over the cap (announced, streamed, or trickled), junk with a valid
//! signature, floods from one network; and KYCAID's own callbacks, recorded once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Client, Response, Server, TestEnv, random_suffix};

const PATH: &str = "/api/v2/auth/public/kyc";
const TOKEN: &str = "portcullis-test-kycaid-token";
const ROWS: &str = "SELECT count(*) FROM kyc_callbacks";

/// A server that knows KYCAID's token; `kyc` continues the `[kyc]` table, then any others.
async fn start(env: &TestEnv, kyc: &str) -> Server {
    env.start_with(&format!(
        "[kyc]\nkycaid_authorization_token = \"{TOKEN}\"\n{kyc}"
    ))
    .await
}

/// A callback as KYCAID sends it when a verification completes.
fn completed(request_id: &str) -> Value {
    json!({
        "type": "VERIFICATION_COMPLETED",
        "request_id": request_id,
        "verification_id": "270128a807f3c24bfd1b8da4a4af7d2080c4",
        "applicant_id": "723f46ab04feb64f442946f2952a67eaecf7",
        "form_id": "203148eb10810e24b2c1afaa4b9759008d352",
        "form_token": "d2177cdf067d425a221b5d045dc616bf81f9",
        "external_applicant_id": "ID0123456789",
        "status": "completed",
        "verified": true,
        "verifications": {
            "profile": { "verified": true, "comment": "" },
            "document": { "verified": true, "comment": "", "decline_reasons": [] }
        }
    })
}

fn request_id() -> String {
    format!("{}{}", random_suffix(), random_suffix())
}

/// Posts `body` as is, with `signature` in `x-data-integrity` when given.
async fn post(server: &Server, body: &[u8], signature: Option<&str>) -> Response {
    let mut request = Client::new()
        .post(server.url(PATH))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-data-integrity", signature);
    }
    request.send().await
}

/// Posts `body` signed as KYCAID would sign it with `token`.
async fn post_signed_with(server: &Server, token: &str, body: &[u8]) -> Response {
    let signature = portcullis::authn::kycaid::sign(token, body);
    post(server, body, Some(&signature)).await
}

async fn post_signed(server: &Server, body: &[u8]) -> Response {
    post_signed_with(server, TOKEN, body).await
}

#[tokio::test]
async fn kycaids_published_example_is_recorded_once_with_only_its_ids_and_outcome() {
    // KYCAID's own example callback, token and signature (docs.kycaid.com).
    let body = r#"{"request_id":"61a7dbcc012d9042e909cf006e7b412d6ba5","type":"VERIFICATION_STATUS_CHANGED","applicant_id":"4141cc1b18dba048470b2961cb4592f480fe","verification_id":"2cf795e713be1040e50b202164ee17bfdfbe","form_id":"58bed87600dd9944f02ba0c9cd8b32d6bd4c","verification_status":"pending"}"#;
    let signature = "f7681b097b77928fc031d614709976796057c306cf77fdd449bb414937bd87678d908d7efaa65e9b1dd65b9eeea2121ea75bd9007f44fe8fcd7c9ac6cdeeef0e";
    let env = TestEnv::new().await;
    let server = env
        .start_with("[kyc]\nkycaid_authorization_token = \"28c6f7cc0345a04eee0b535039b1c5a62547\"")
        .await;

    let first = post(&server, body.as_bytes(), Some(signature)).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let redelivered = post(&server, body.as_bytes(), Some(signature)).await;
    assert_eq!(redelivered.status, 200, "{}", redelivered.text());

    assert_eq!(env.count(ROWS).await, 1);
    let client = env.store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT to_jsonb(k) - 'id' - 'received_at' FROM kyc_callbacks k",
            &[],
        )
        .await
        .unwrap();
    let kept: Value = row.get(0);
    assert_eq!(
        kept,
        json!({
            "request_id": "61a7dbcc012d9042e909cf006e7b412d6ba5",
            "type": "VERIFICATION_STATUS_CHANGED",
            "applicant_id": "4141cc1b18dba048470b2961cb4592f480fe",
            "verification_id": "2cf795e713be1040e50b202164ee17bfdfbe",
            "verification_status": "pending",
            "verified": null,
        })
    );
}

#[tokio::test]
async fn a_completed_verification_keeps_its_outcome_and_drops_the_rest() {
    let env = TestEnv::new().await;
    let server = start(&env, "").await;
    let id = request_id();
    let body = completed(&id).to_string();
    assert_eq!(post_signed(&server, body.as_bytes()).await.status, 200);
    let client = env.store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT type, verification_status, verified FROM kyc_callbacks WHERE request_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let (kind, status, verified): (String, String, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (kind.as_str(), status.as_str(), verified),
        ("VERIFICATION_COMPLETED", "completed", true)
    );
    // Nothing else of the body has a place to go: the free-form payload column is gone.
    let columns = client
        .query(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_name = 'kyc_callbacks' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap();
    let columns: Vec<String> = columns.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        columns,
        [
            "id",
            "request_id",
            "type",
            "applicant_id",
            "verification_id",
            "verification_status",
            "verified",
            "received_at"
        ]
    );
}

#[tokio::test]
async fn forged_callbacks_are_refused_and_not_stored() {
    let env = TestEnv::new().await;
    let server = start(&env, "").await;
    let body = completed(&request_id()).to_string();
    let body = body.as_bytes();

    post(&server, body, None)
        .await
        .assert_error(401, "public.kyc.missing_signature");
    for forged in ["", "not hex at all", &"0".repeat(128), &"ab".repeat(200)] {
        post(&server, body, Some(forged))
            .await
            .assert_error(401, "public.kyc.invalid_signature");
    }
    // Signed with a token guessed wrong.
    post_signed_with(&server, "28c6f7cc0345a04eee0b535039b1c5a62547", body)
        .await
        .assert_error(401, "public.kyc.invalid_signature");
    // KYCAID's signature of one callback, replayed on a changed one.
    let genuine = portcullis::authn::kycaid::sign(TOKEN, body);
    let changed = String::from_utf8_lossy(body).replace("\"verified\":true", "\"verified\":false");
    post(&server, changed.as_bytes(), Some(&genuine))
        .await
        .assert_error(401, "public.kyc.invalid_signature");
    // The same JSON re-serialised (other spacing) is other bytes: the signature covers bytes.
    let respaced = serde_json::to_string_pretty(&completed("x")).unwrap();
    let of_compact = portcullis::authn::kycaid::sign(TOKEN, completed("x").to_string().as_bytes());
    post(&server, respaced.as_bytes(), Some(&of_compact))
        .await
        .assert_error(401, "public.kyc.invalid_signature");

    assert_eq!(env.count(ROWS).await, 0);
}

#[tokio::test]
async fn signed_junk_and_odd_identifiers_are_refused_and_not_stored() {
    let env = TestEnv::new().await;
    let server = start(&env, "").await;
    let mut bodies: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        b"".to_vec(),
        b"{\"request_id\":".to_vec(),
        b"[1,2,3]".to_vec(),
        b"\"a string\"".to_vec(),
        b"request_id=abc&type=VERIFICATION_COMPLETED&applicant_id=def".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
        "[".repeat(4000).into_bytes(),
    ];
    for (member, value) in [
        ("request_id", Value::Null),
        ("request_id", json!("")),
        ("request_id", json!("a".repeat(65))),
        ("type", json!(["VERIFICATION_COMPLETED"])),
        ("applicant_id", json!("../../../etc/passwd")),
        ("applicant_id", json!("<script>alert(1)</script>")),
        ("applicant_id", json!("ид-пользователя")),
        ("verification_id", json!("x".repeat(5000))),
        ("verification_id", json!("line\nbreak")),
        ("status", json!("completed; DROP TABLE kyc_callbacks")),
        ("verified", json!("maybe")),
        ("verified", json!(1)),
    ] {
        let mut body = completed(&request_id());
        body[member] = value;
        bodies.push(body.to_string().into_bytes());
    }
    for body in &bodies {
        let response = post_signed(&server, body).await;
        assert_eq!(
            (response.status, response.errors()),
            (422, vec!["public.kyc.invalid_payload".to_string()]),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(env.count(ROWS).await, 0);
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused_unread_and_at_once() {
    let env = TestEnv::new().await;
    // A server that waited for these bodies would wait far longer than the test allows.
    let server = start(
        &env,
        "[server]\nbody_idle_timeout = 30\nbody_read_timeout = 60",
    )
    .await;

    // 9 KiB, validly signed: the signature does not buy a larger body.
    let mut padded = completed(&request_id());
    padded["comment"] = json!("x".repeat(9 * 1024));
    post_signed(&server, padded.to_string().as_bytes())
        .await
        .assert_error(413, "public.kyc.body_too_large");

    // The review's attack: 9 MB posted whole, over and over.
    let nine_mb = vec![b'x'; 9 * 1024 * 1024];
    for _ in 0..3 {
        let (answer, took) = exchange(&server, &head(Some(nine_mb.len())), &nine_mb, false).await;
        assert_refused_at_once(&answer, took);
    }
    // 9 MB announced, 1 KiB sent, the rest never: answered without waiting for it.
    let (answer, took) =
        exchange(&server, &head(Some(nine_mb.len())), &nine_mb[..1024], true).await;
    assert_refused_at_once(&answer, took);
    // No length announced (chunked): cut off as the cap is crossed, not at the end.
    let chunk = format!("2000\r\n{}\r\n", "x".repeat(0x2000));
    let (answer, took) = exchange(&server, &head(None), chunk.repeat(2).as_bytes(), true).await;
    assert_refused_at_once(&answer, took);

    assert_eq!(env.count(ROWS).await, 0);
    // And the server is still serving callbacks.
    let ok = post_signed(&server, completed(&request_id()).to_string().as_bytes()).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
}

/// A request head for the callback: with a Content-Length, or chunked.
fn head(length: Option<usize>) -> String {
    let framing = match length {
        Some(n) => format!("Content-Length: {n}"),
        None => "Transfer-Encoding: chunked".into(),
    };
    format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         X-Data-Integrity: {}\r\n{framing}\r\n\r\n",
        "ab".repeat(64)
    )
}

/// Sends `head` and `body` on a raw socket (keeping it open afterwards when `stall`), while
/// reading the answer; returns the answer as text and how long it took to come.
async fn exchange(server: &Server, head: &str, body: &[u8], stall: bool) -> (String, Duration) {
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let mut request = head.as_bytes().to_vec();
    request.extend_from_slice(body);
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        // The server may stop reading and close: a failed write is expected.
        let _ = writer.write_all(&request).await;
        if stall {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        drop(writer);
    });
    let answer = read_response(&mut reader, Duration::from_secs(10)).await;
    let took = started.elapsed();
    sender.abort();
    (answer, took)
}

/// Reads one HTTP/1.1 response (head and Content-Length body), or what came before the
/// connection ended or `limit` passed.
async fn read_response(reader: &mut tokio::net::tcp::OwnedReadHalf, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !response_complete(&received) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, reader.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buffer[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

fn response_complete(received: &[u8]) -> bool {
    let text = String::from_utf8_lossy(received);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= length
}

#[track_caller]
fn assert_refused_at_once(answer: &str, took: Duration) {
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(answer.contains("public.kyc.body_too_large"), "{answer:?}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

#[tokio::test]
async fn callbacks_are_limited_per_client_network() {
    let env = TestEnv::new().await;
    let server = start(
        &env,
        "[rate_limits]\nkyc_callback_per_ip = { max = 3, window = 60 }",
    )
    .await;
    // Loopback is a trusted proxy by default: X-Forwarded-For names the client.
    let from = |client: &'static str| {
        let body = completed(&request_id()).to_string();
        let signature = portcullis::authn::kycaid::sign(TOKEN, body.as_bytes());
        Client::new()
            .post(server.url(PATH))
            .header("x-forwarded-for", client)
            .header("x-data-integrity", &signature)
            .body(body)
            .send()
    };
    // Three hosts of one IPv6 /64 share its allowance: one host usually holds a whole /64.
    for client in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
        assert_eq!(from(client).await.status, 200);
    }
    let limited = from("2001:db8:1:2::3").await;
    limited.assert_error(429, "public.kyc.too_many_attempts");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Forged callbacks count too (they cost a read and an HMAC each).
    for _ in 0..3 {
        let unsigned = Client::new()
            .post(server.url(PATH))
            .header("x-forwarded-for", "203.0.113.9")
            .body(completed(&request_id()).to_string())
            .send()
            .await;
        unsigned.assert_error(401, "public.kyc.missing_signature");
    }
    from("203.0.113.9")
        .await
        .assert_error(429, "public.kyc.too_many_attempts");
    // Another /64 and another IPv4 address are not held back.
    assert_eq!(from("2001:db8:1:3::1").await.status, 200);
    assert_eq!(from("198.51.100.7").await.status, 200);

    assert_eq!(env.count(ROWS).await, 5);
}

#[tokio::test]
async fn a_local_provider_takes_no_callbacks() {
    let env = TestEnv::new().await;
    let server = start(&env, "provider = \"local\"").await;
    let body = completed(&request_id()).to_string();
    post_signed(&server, body.as_bytes())
        .await
        .assert_error(422, "public.kyc.provider_disabled");
    post(&server, b"{}", None)
        .await
        .assert_error(422, "public.kyc.provider_disabled");
    assert_eq!(env.count(ROWS).await, 0);
}

#[tokio::test]
async fn kycaid_without_a_token_refuses_every_callback() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let body = completed(&request_id()).to_string();
    // Signed with the empty key it would be checked against: still refused.
    post_signed_with(&server, "", body.as_bytes())
        .await
        .assert_error(503, "public.kyc.not_configured");
    post(&server, body.as_bytes(), None)
        .await
        .assert_error(503, "public.kyc.not_configured");
    assert_eq!(env.count(ROWS).await, 0);
}

#[tokio::test]
async fn the_openapi_document_describes_the_signed_callback() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let doc = Client::new()
        .get(server.url("/api/v2/auth/swagger_doc"))
        .send()
        .await
        .json();
    let operation = &doc["paths"][PATH]["post"];
    assert_eq!(
        operation["parameters"],
        json!([{
            "name": "x-data-integrity",
            "in": "header",
            "required": true,
            "description": operation["parameters"][0]["description"],
            "schema": { "type": "string" },
        }])
    );
    let statuses: Vec<&String> = operation["responses"].as_object().unwrap().keys().collect();
    assert_eq!(statuses, ["200", "401", "408", "413", "422", "429", "503"]);
    assert!(
        operation["responses"]["401"]["description"]
            .as_str()
            .unwrap()
            .contains("public.kyc.invalid_signature")
    );
}
