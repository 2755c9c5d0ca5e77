//! The shipped nginx example (config/nginx/portcullis.conf) with a real nginx in front.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::support::upstream::Upstream;
use crate::support::{Client, Server, TestEnv, UA, random_suffix, repo_path, verify_with_jwks};

struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nginx_binary() -> &'static str {
    for candidate in [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ] {
        if std::path::Path::new(candidate).exists() {
            return candidate;
        }
    }
    panic!(
        "nginx is not installed: the integration tests need it (apt-get install nginx; .ci/run does)"
    );
}

async fn start_nginx(portcullis: &Server, backend: &Upstream) -> Nginx {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("pc-nginx-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let example = std::fs::read_to_string(repo_path("config/nginx/portcullis.conf")).unwrap();
    let site = example
        .replace("portcullis:8080", &portcullis.addr.to_string())
        .replace("peatio:9000", &backend.addr.to_string())
        .replace("listen 8000;", &format!("listen 127.0.0.1:{port};"));
    assert_ne!(
        site, example,
        "the example's addresses changed; update this test"
    );
    std::fs::write(dir.join("site.conf"), site).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\nerror_log {d}/error.log warn;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               include {d}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx { child, port, dir };
    TestEnv::eventually(5000, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    nginx
}

#[tokio::test]
async fn nginx_example_config_guards_a_backend() {
    let env = TestEnv::new().await;
    let portcullis = env.start().await;
    let backend = Upstream::start().await;
    let nginx = start_nginx(&portcullis, &backend).await;
    let base = format!("http://127.0.0.1:{}", nginx.port);
    let client = Client::new();
    let user = env.user("member").await;

    // Login through nginx.
    let login = client
        .post(format!("{base}/api/v2/auth/identity/sessions"))
        .header("user-agent", UA)
        .json(&serde_json::json!({ "email": user.email, "password": user.password }))
        .send()
        .await;
    assert_eq!(login.status, 200, "{}", login.text());
    let session = crate::support::Session {
        cookie: login.cookie("_barong_session").unwrap(),
        csrf: login.json()["csrf_token"].as_str().unwrap().to_string(),
    };

    // Allowed: the backend sees a Bearer token, the rewritten path, none of the credentials.
    let seen = client
        .post(format!("{base}/api/v2/peatio/market/orders?market=btcusd"))
        .session(&session)
        .header("x-csrf-token", &session.csrf)
        .body("side=buy")
        .send()
        .await;
    assert_eq!(seen.status, 200, "{}", seen.text());
    let seen = seen.json();
    assert_eq!(seen["path"], "/api/v2/market/orders");
    assert_eq!(seen["query"], "market=btcusd");
    assert_eq!(seen["body_length"], 8);
    let claims = verify_with_jwks(
        &portcullis,
        seen["headers"]["authorization"].as_str().unwrap(),
    )
    .await;
    assert_eq!(claims["uid"], user.uid.as_str());
    for name in ["cookie", "x-csrf-token", "x-auth-apikey"] {
        assert!(
            seen["headers"].get(name).is_none(),
            "{name} reached the backend"
        );
    }

    // Denied: the client gets Portcullis' real status and body through nginx.
    client
        .get(format!("{base}/api/v2/peatio/account/balances"))
        .send()
        .await
        .assert_error(401, "authz.invalid_session");
    client
        .post(format!("{base}/api/v2/peatio/market/orders"))
        .session(&session)
        .send()
        .await
        .assert_error(401, "authz.missing_csrf_token");
    client
        .get(format!("{base}/api/v2/peatio/account/balances"))
        .header("x-auth-apikey", "only-one")
        .send()
        .await
        .assert_error(422, "authz.invalid_api_key_headers");

    // A bot with an API key.
    let bot = env.user_with("member", "active", true).await;
    let key = env.api_key(&bot.uid).await;
    let seen = client
        .get(format!("{base}/api/v2/peatio/account/balances"))
        .headers(&key.headers())
        .send()
        .await;
    assert_eq!(seen.status, 200, "{}", seen.text());
    assert!(seen.json()["headers"].get("x-auth-signature").is_none());

    // Maintenance: 471 reaches the client, not nginx's 403.
    env.sql("UPDATE restrictions SET state = 'enabled' WHERE category = 'maintenance' AND scope = 'all'").await;
    TestEnv::eventually(2000, || async {
        client
            .get(format!("{base}/api/v2/peatio/public/markets"))
            .send()
            .await
            .status
            == 471
    })
    .await;
    let maintenance = client
        .get(format!("{base}/api/v2/peatio/public/markets"))
        .send()
        .await;
    maintenance.assert_error(471, "authz.restrict.maintenance");
}

/// The review's attacks through the shipped nginx config, from raw sockets: what nginx would
/// forward is what Portcullis judged, or the request is refused; and a client's junk in
/// X-Forwarded-For never turns it into nginx.
#[tokio::test]
async fn nginx_forwards_only_what_was_judged_from_whoever_really_asked() {
    use crate::support::raw::{get, send_from};
    let env = TestEnv::new().await;
    env.sql(
        "INSERT INTO permissions (role, verb, path, action, topic) VALUES
           ('trader', 'ALL', 'api/v2/peatio', 'ACCEPT', NULL),
           ('trader', 'ALL', 'api/v2/peatio/account/withdraws', 'DROP', NULL)",
    )
    .await;
    env.restrict("blacklist", "ip", "127.0.0.2", Some(433))
        .await;
    // nginx (on 127.0.0.1) is the one trusted proxy; 127.0.0.2 and up are internet clients.
    let portcullis = env
        .start_with("[network]\ntrusted_proxies = [\"127.0.0.1/32\"]")
        .await;
    let backend = Upstream::start().await;
    let nginx = start_nginx(&portcullis, &backend).await;
    let front: std::net::SocketAddr = format!("127.0.0.1:{}", nginx.port).parse().unwrap();
    let trader = env.user_with("trader", "active", true).await;
    let key = env.api_key(&trader.uid).await;
    let signed = |path: &str, method: &str| {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n"
        );
        for (name, value) in key.headers() {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.into_bytes()
    };

    // The DROP holds on the plain path, and balances are allowed.
    let dropped = send_from(
        "127.0.0.3",
        front,
        &signed("/api/v2/peatio/account/withdraws", "POST"),
    )
    .await;
    assert_eq!(dropped.status, 401, "{dropped:?}");
    assert!(
        dropped.body.contains("authz.invalid_permission"),
        "{dropped:?}"
    );
    let allowed = send_from(
        "127.0.0.3",
        front,
        &signed("/api/v2/peatio/account/balances", "GET"),
    )
    .await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert!(
        allowed
            .head
            .to_ascii_lowercase()
            .contains("x-upstream: echo"),
        "{allowed:?}"
    );

    // nginx cuts its $uri at a raw '#': judged as balances, it would forward withdraws.
    for attack in [
        "/api/v2/peatio/account/withdraws#/../balances",
        "/api/v2/peatio/account/withdraws%23/../balances",
        "/api/v2/peatio/public/../account/withdraws",
        "/api/v2/peatio/account;/withdraws",
    ] {
        let answer = send_from("127.0.0.3", front, &signed(attack, "POST")).await;
        assert!(
            !answer.head.to_ascii_lowercase().contains("x-upstream"),
            "{attack} reached the backend: {answer:?}"
        );
        assert!(
            answer.status == 400 || answer.status == 401,
            "{attack}: {answer:?}"
        );
    }
    let cut = send_from(
        "127.0.0.3",
        front,
        &get("/api/v2/peatio/management#/../public/markets", &[]),
    )
    .await;
    assert_eq!(cut.status, 400, "{cut:?}");
    assert!(cut.body.contains("authz.invalid_path"), "{cut:?}");

    // A blacklisted client that sends one non-ASCII byte in X-Forwarded-For is still itself
    // (nginx appends its real address to that line).
    let junk = send_from(
        "127.0.0.2",
        front,
        &get("/api/v2/peatio/public/markets", &[b"X-Forwarded-For: \x80"]),
    )
    .await;
    assert_eq!(junk.status, 433, "{junk:?}");
    assert!(junk.body.contains("authz.restrict.blacklist"), "{junk:?}");
    let forged = send_from(
        "127.0.0.2",
        front,
        &get(
            "/api/v2/peatio/public/markets",
            &[b"X-Forwarded-For: 8.8.8.8"],
        ),
    )
    .await;
    assert_eq!(forged.status, 433, "{forged:?}");
    let innocent = send_from(
        "127.0.0.3",
        front,
        &get("/api/v2/peatio/public/markets", &[b"X-Forwarded-For: \x80"]),
    )
    .await;
    assert_eq!(innocent.status, 200, "{innocent:?}");
}
