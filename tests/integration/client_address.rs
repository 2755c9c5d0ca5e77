//! Who the client is: an address the client can choose would walk around restrictions, rate
//! limits and session binding. Attacked with raw header bytes and with connections from
//! distinct loopback addresses (127.0.0.1 plays the trusted proxy, 127.0.0.2 and up are
//! clients on the internet).

use crate::support::raw::{get, send_from};
use crate::support::{Client, Server, TestEnv};

const PUBLIC: &str = "/api/v2/auth/api/v2/peatio/public/markets";
/// An auth API route behind the restrictions guard, open to anyone.
const PING: &str = "/api/v2/auth/identity/ping";

/// A server that trusts only 127.0.0.1, as a deployment trusts only its own proxy.
async fn behind_one_proxy(env: &TestEnv) -> Server {
    env.start_with("[network]\ntrusted_proxies = [\"127.0.0.1/32\"]")
        .await
}

async fn wait_for_policy(server: &Server, source: &str, request: &[u8], status: u16) {
    let addr = server.addr;
    TestEnv::eventually(3000, || async move {
        send_from(source, addr, request).await.status == status
    })
    .await;
}

#[tokio::test]
async fn a_direct_client_cannot_choose_its_address() {
    let env = TestEnv::new().await;
    env.restrict("blacklist", "ip", "127.0.0.2", Some(433))
        .await;
    let server = behind_one_proxy(&env).await;
    let forged: &[&[u8]] = &[
        b"X-Forwarded-For: 81.2.69.160",
        b"CF-Connecting-IP: 81.2.69.160",
        b"True-Client-IP: 81.2.69.160",
        b"X-Real-IP: 81.2.69.160",
        b"Forwarded: for=81.2.69.160",
    ];
    let request = get(PING, forged);
    wait_for_policy(&server, "127.0.0.2", &request, 433).await;
    let answer = send_from("127.0.0.2", server.addr, &request).await;
    assert_eq!(answer.status, 433, "{answer:?}");
    assert!(
        answer.body.contains("authz.restrict.blacklist"),
        "{answer:?}"
    );
    // Another client on the internet is not blacklisted.
    assert_eq!(
        send_from("127.0.0.3", server.addr, &request).await.status,
        200
    );
}

#[tokio::test]
async fn one_unreadable_byte_never_makes_the_proxy_the_client() {
    let env = TestEnv::new().await;
    env.restrict("blacklist", "ip", "81.2.69.160", Some(433))
        .await;
    let server = behind_one_proxy(&env).await;
    // What nginx sends when the client wrote `X-Forwarded-For: \x80`: the client's line with
    // the real address appended. The real address is read; the proxy is not the client.
    let appended = get(PUBLIC, &[b"X-Forwarded-For: \x80, 81.2.69.160"]);
    wait_for_policy(&server, "127.0.0.1", &appended, 433).await;
    let answer = send_from("127.0.0.1", server.addr, &appended).await;
    assert_eq!(answer.status, 433, "{answer:?}");
    assert!(
        answer.body.contains("authz.restrict.blacklist"),
        "{answer:?}"
    );

    // An entry the trusted proxy itself wrote and that cannot be read: refused, not allowed
    // as if the proxy were the client.
    let unreadable = get(PUBLIC, &[b"X-Forwarded-For: 81.2.69.160, \xff\xfe"]);
    let answer = send_from("127.0.0.1", server.addr, &unreadable).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.body.contains("authz.invalid_forwarded_for"),
        "{answer:?}"
    );
    // The same on the auth API, behind the restrictions guard.
    let login = b"POST /api/v2/auth/identity/sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                  X-Forwarded-For: 8.8.8.8, \x80\r\nContent-Type: application/json\r\n\
                  Content-Length: 2\r\n\r\n{}";
    let answer = send_from("127.0.0.1", server.addr, login).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.body.contains("authz.invalid_forwarded_for"),
        "{answer:?}"
    );
    // And from a client that is not a proxy, whatever it wrote is ignored.
    let answer = send_from(
        "127.0.0.2",
        server.addr,
        &get(PING, &[b"X-Forwarded-For: 81.2.69.160, \xff\xfe"]),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn rotating_addresses_inside_one_ipv6_64_gains_nothing() {
    let env = TestEnv::new().await;
    let server = env
        .start_with("[rate_limits]\nlogin_per_ip = { max = 3, window = 60 }")
        .await;
    let attempt = |n: u32| {
        Client::new()
            .post(server.identity("sessions"))
            .header("x-forwarded-for", &format!("2001:db8:1:2::{n:x}"))
            .json(&serde_json::json!({ "email": format!("x{n}@example.com"), "password": "x" }))
            .send()
    };
    for n in 1..=3 {
        attempt(n)
            .await
            .assert_error(401, "identity.session.invalid_params");
    }
    let limited = attempt(0xbeef).await;
    limited.assert_error(429, "identity.session.too_many_attempts");
    assert!(limited.header("retry-after").is_some());
    // Another /64 has its own budget.
    let other = Client::new()
        .post(server.identity("sessions"))
        .header("x-forwarded-for", "2001:db8:1:3::1")
        .json(&serde_json::json!({ "email": "y@example.com", "password": "x" }))
        .send()
        .await;
    other.assert_error(401, "identity.session.invalid_params");
}

/// The decision fronts answer the proxies they exist for: where Portcullis is the edge, an open
/// decision endpoint would turn any session into a bearer token on request.
#[tokio::test]
async fn decision_fronts_answer_only_trusted_proxies_unless_opened() {
    let env = TestEnv::new().await;
    let server = behind_one_proxy(&env).await;
    let nginx = get(
        "/api/v2/auth/_/nginx",
        &[
            b"X-Original-Method: GET",
            b"X-Original-URI: /api/v2/peatio/public/markets",
        ],
    );
    for (front, request) in [("barong", get(PUBLIC, &[])), ("nginx", nginx.clone())] {
        let outsider = send_from("127.0.0.2", server.addr, &request).await;
        assert_eq!(outsider.status, 404, "{front}: {outsider:?}");
        assert!(
            outsider.body.contains("Route is not found"),
            "{front}: {outsider:?}"
        );
        let proxy = send_from("127.0.0.1", server.addr, &request).await;
        assert_eq!(proxy.status, 200, "{front}: {proxy:?}");
    }
    let grpc = b"POST /envoy.service.auth.v3.Authorization/Check HTTP/1.1\r\nHost: x\r\n\
                 Connection: close\r\nContent-Type: application/grpc\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0";
    assert_eq!(send_from("127.0.0.2", server.addr, grpc).await.status, 404);
    // The auth API itself stays open to everyone.
    assert_eq!(
        send_from("127.0.0.2", server.addr, &get(PING, &[]))
            .await
            .status,
        200
    );
    // Barong's behaviour, by choice.
    let open = env
        .start_with(
            "[network]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[decision]\ncallers = \"anyone\"",
        )
        .await;
    assert_eq!(send_from("127.0.0.2", open.addr, &nginx).await.status, 200);
}

/// The built-in proxy passes a trusted proxy's X-Forwarded-For chain on, extended; a direct
/// client's own chain is dropped, so an upstream that trusts private addresses (Rails does)
/// cannot be led along it.
#[tokio::test]
async fn the_proxy_passes_on_only_a_trusted_chain() {
    let env = TestEnv::new().await;
    let upstream = crate::support::upstream::Upstream::start().await;
    let server = env
        .start_with(&format!(
            "[network]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
             [[routes]]\nprefix = \"/api/v2/peatio\"\nupstream = \"{}\"",
            upstream.url()
        ))
        .await;
    let request = get(
        "/api/v2/peatio/public/markets",
        &[b"X-Forwarded-For: 10.0.0.1, 10.0.0.2"],
    );
    let direct = send_from("127.0.0.2", server.addr, &request).await;
    assert_eq!(direct.status, 200, "{direct:?}");
    assert!(
        direct.body.contains(r#""x-forwarded-for":"127.0.0.2""#),
        "{direct:?}"
    );
    assert!(
        direct.body.contains(r#""x-real-ip":"127.0.0.2""#),
        "{direct:?}"
    );
    let proxied = send_from("127.0.0.1", server.addr, &request).await;
    assert!(
        proxied
            .body
            .contains(r#""x-forwarded-for":"10.0.0.1, 10.0.0.2, 127.0.0.1""#),
        "{proxied:?}"
    );
    assert!(
        proxied.body.contains(r#""x-real-ip":"10.0.0.2""#),
        "{proxied:?}"
    );
}
