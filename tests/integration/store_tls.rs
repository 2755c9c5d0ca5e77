//! How the stores are reached, with real servers. TLS to Postgres (`sslmode=require`) and
//! Redis (`rediss://`): the machine's Postgres with its own certificate, and a private
//! redis-server with a CA made here; the server's certificate is always verified, and a CA that
//! did not sign it stops the start. And a Redis that asks for a password (`redis.password`,
//! Barong's `BARONG_REDIS_PASSWORD`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::redis_server::RedisServer;
use crate::support::{Server, TestEnv, random_suffix};

/// Runs `openssl` with `args` in `dir`, failing the test on an error.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (scripts/services.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`) and a certificate it signed for localhost (`server.pem`, `server.key`).
fn make_ca_and_server_cert(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=portcullis-test-ca",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn temp_dir(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pc-{what}-{}", random_suffix()))
}

/// Sessions live in Redis: a login, then a decision on its session, through `server`.
async fn sessions_work(env: &TestEnv, server: &Server) {
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let allowed = crate::support::Client::new()
        .get(server.decision("/api/v2/peatio/account/balances"))
        .session(&session)
        .send()
        .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
}

struct TlsRedis {
    server: RedisServer,
    port: u16,
    dir: PathBuf,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        self.server.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start_tls_redis() -> TlsRedis {
    let dir = temp_dir("redis-tls");
    make_ca_and_server_cert(&dir);
    let server = RedisServer::start_in(Some(&dir), |port| {
        [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.pem",
            "--tls-auth-clients",
            "no",
        ]
        .map(String::from)
        .to_vec()
    })
    .await;
    TlsRedis {
        port: server.port,
        server,
        dir,
    }
}

#[tokio::test]
async fn redis_over_tls_is_verified_and_used() {
    let redis = start_tls_redis().await;
    let env = TestEnv::new().await;
    let url = format!("rediss://localhost:{}/0", redis.port);
    let ca = redis.dir.join("ca.pem");
    let server = Server::start(env.settings(&format!(
        "[redis]\nurl = \"{url}\"\ntls_ca_file = \"{}\"",
        ca.display()
    )))
    .await;
    // Sessions live in Redis: a login and a decision on it go through TLS.
    sessions_work(&env, &server).await;

    // A CA that did not sign the server's certificate: no connection, so no start.
    let other = temp_dir("other-ca");
    make_ca_and_server_cert(&other);
    let wrong = env.settings(&format!(
        "[redis]\nurl = \"{url}\"\ntls_ca_file = \"{}\"",
        other.join("ca.pem").display()
    ));
    let refused = portcullis::app::App::build(wrong, None).await;
    assert!(refused.is_err(), "connected to a Redis it could not verify");
    let _ = std::fs::remove_dir_all(other);
}

/// The machine's Postgres serves TLS with Debian's self-signed certificate for localhost.
const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// The name the local PostgreSQL's certificate is for (its first DNS name), which must lead
/// to this machine: Debian makes it for the host name at install time.
fn snakeoil_host() -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in", SNAKEOIL])
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    let host = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .find_map(|part| part.strip_prefix("DNS:"))
        .unwrap_or("localhost")
        .to_string();
    let local = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), 5432))
        .map(|mut addrs| addrs.any(|a| a.ip().is_loopback()))
        .unwrap_or(false);
    assert!(
        local,
        "the local PostgreSQL's certificate is for {host:?}, which is not this machine"
    );
    host
}

#[tokio::test]
async fn postgres_over_tls_is_verified_and_used() {
    assert!(
        Path::new(SNAKEOIL).exists(),
        "the local PostgreSQL has no TLS certificate at {SNAKEOIL} (Debian's ssl-cert package)"
    );
    let env = TestEnv::new().await;
    let db = env.db_url.rsplit('/').next().unwrap().to_string();
    let host = snakeoil_host();
    let tls_url = format!("postgres://postgres@{host}:5432/{db}?sslmode=require");
    let server = Server::start(env.settings(&format!(
        "[database]\nurl = \"{tls_url}\"\ntls_ca_file = \"{SNAKEOIL}\""
    )))
    .await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    assert!(!session.cookie.is_empty());
    // The gateway's own connections to this database are encrypted.
    let encrypted = env
        .count(&format!(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.datname = '{db}' AND a.application_name = 'portcullis' AND s.ssl"
        ))
        .await;
    assert!(encrypted > 0, "no TLS connection from Portcullis");

    // A CA that did not sign the server's certificate: the pool cannot connect.
    let other = temp_dir("pg-other-ca");
    make_ca_and_server_cert(&other);
    let wrong = env.settings(&format!(
        "[database]\nurl = \"{tls_url}\"\ntls_ca_file = \"{}\"",
        other.join("ca.pem").display()
    ));
    let store = portcullis::store::Store::new(&wrong.database).unwrap();
    assert!(
        store.client().await.is_err(),
        "connected to a Postgres it could not verify"
    );
    let _ = std::fs::remove_dir_all(other);
}

#[tokio::test]
async fn a_redis_that_asks_for_a_password_gets_the_password_setting() {
    let redis = RedisServer::start_with(&["--requirepass", "redis-test-pass"]).await;
    let env = TestEnv::new().await;
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    // Without it: refused (NOAUTH), so no start.
    let without = env.settings(&format!("[redis]\nurl = \"{url}\""));
    assert!(
        portcullis::app::App::build(without, None).await.is_err(),
        "started against a Redis that refused it"
    );
    // With it, sessions live there: a login and a decision on it.
    let server = Server::start(env.settings(&format!(
        "[redis]\nurl = \"{url}\"\npassword = \"redis-test-pass\""
    )))
    .await;
    sessions_work(&env, &server).await;
}
