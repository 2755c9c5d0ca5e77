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
