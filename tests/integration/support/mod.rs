//! Test support: a fresh database and Redis namespace per test, Portcullis served in-process
//! on a random port, a tiny HTTP client, and helpers that create users, keys and sessions
//! through the real store. Nothing here mocks our own storage.

pub mod fakes;
pub mod http;
pub mod kycaid;
pub mod load;
pub mod moto;
pub mod multipart;
pub mod postgres_server;
pub mod rabbit;
pub mod raw;
pub mod redis_server;
pub mod smtp;
pub mod twilio;
pub mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use base64::Engine;
use portcullis::app::App;
use portcullis::config::Settings;
use portcullis::crypto::SecretBox;
use portcullis::services::accounts::{self, Application, OperatorAccount};
use portcullis::services::api_keys;
use portcullis::store::{self, Store};

pub use self::http::{Client, Response};

pub fn database_base_url() -> String {
    std::env::var("PORTCULLIS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("PORTCULLIS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A port nothing listens on now, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn random_suffix() -> String {
    portcullis::crypto::random_hex::<6>()
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// One RSA key per test process (generating one costs ~100 ms).
fn test_key_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("portcullis-test-key-{}.pem", random_suffix()));
        std::fs::write(&path, portcullis::jwt::SigningKey::generate().private_pem()).unwrap();
        path
    })
}

/// A database, a Redis namespace and base settings of one test.
pub struct TestEnv {
    pub db_url: String,
    pub redis_prefix: String,
    pub encryption_key: String,
    pub store: Store,
    base_overrides: String,
}

impl TestEnv {
    /// A migrated database with the default policies, and an empty Redis namespace.
    pub async fn new() -> TestEnv {
        Self::with(|_| {}).await
    }

    /// Like `new`, with extra TOML merged into every server's settings.
    pub async fn with_config(extra: &str) -> TestEnv {
        let extra = extra.to_string();
        Self::with(move |base| {
            base.push('\n');
            base.push_str(&extra);
        })
        .await
    }

    /// Like `new`, on the PostgreSQL server at `base_url` (a test's own).
    pub async fn on_database(base_url: &str) -> TestEnv {
        Self::with_base(base_url, |_| {}).await
    }

    async fn with(adjust: impl FnOnce(&mut String)) -> TestEnv {
        Self::with_base(&database_base_url(), adjust).await
    }

    async fn with_base(base_url: &str, adjust: impl FnOnce(&mut String)) -> TestEnv {
        let db_name = format!("pc_test_{}", random_suffix());
        let db_url = format!("{base_url}/{db_name}");
        let redis_prefix = format!("pctest:{}:", random_suffix());
        let encryption_key = base64::engine::general_purpose::STANDARD
            .encode(portcullis::crypto::random_bytes::<32>());
        let mut overrides = format!(
            r#"
            [database]
            url = "{db_url}"
            pool_size = 4
            [redis]
            url = "{redis}"
            key_prefix = "{redis_prefix}"
            [jwt]
            private_key_path = "{key}"
            [encryption]
            key = "{encryption_key}"
            [geoip]
            database_path = "{geoip}"
            [session]
            secure_cookie = false
            [policies]
            dir = "{policies}"
            [cache]
            policy_debounce_ms = 10
            [mail]
            delivery = "none"
            [events]
            publish = false
            "#,
            redis = redis_url(),
            key = test_key_path().display(),
            geoip = repo_path("tests/data/GeoLite2-Country-Test.mmdb").display(),
            policies = repo_path("policies").display(),
        );
        adjust(&mut overrides);
        let settings = Settings::from_toml(&overrides).expect("test settings are valid");
        portcullis::app::prepare_database(&settings)
            .await
            .expect("database prepared");
        TestEnv {
            store: Store::new(&settings.database).unwrap(),
            db_url,
            redis_prefix,
            encryption_key,
            base_overrides: overrides,
        }
    }

    /// The settings a server of this environment runs with, plus `extra` TOML.
    pub fn settings(&self, extra: &str) -> Settings {
        let toml = merge_toml(&self.base_overrides, extra);
        Settings::from_toml(&toml).expect("test settings are valid")
    }

    pub fn secrets(&self) -> SecretBox {
        let key = base64::engine::general_purpose::STANDARD
            .decode(&self.encryption_key)
            .unwrap();
        SecretBox::new(&key.try_into().unwrap())
    }

    pub async fn start(&self) -> Server {
        self.start_with("").await
    }

    pub async fn start_with(&self, extra: &str) -> Server {
        Server::start(self.settings(extra)).await
    }

    /// A server whose settings `adjust` changes, checked by the compiler rather than parsed
    /// from TOML at run time: `env.start_adjusted(|s| s.api_keys.replay_guard = false)`.
    pub async fn start_adjusted(&self, adjust: impl FnOnce(&mut Settings)) -> Server {
        let mut settings = self.settings("");
        adjust(&mut settings);
        Server::start(settings).await
    }

    pub async fn sql(&self, statement: &str) {
        let client = self.store.client().await.unwrap();
        client.batch_execute(statement).await.unwrap();
    }

    pub async fn count(&self, query: &str) -> i64 {
        let client = self.store.client().await.unwrap();
        client.query_one(query, &[]).await.unwrap().get(0)
    }

    /// An enabled restriction (its code defaults as Barong's would).
    pub async fn restrict(&self, category: &str, scope: &str, value: &str, code: Option<i32>) {
        let code = code.map(|c| c.to_string()).unwrap_or_else(|| {
            portcullis::gate::restrictions::effective_code(category, scope, None).to_string()
        });
        self.sql(&format!(
            "INSERT INTO restrictions (category, scope, value, code) VALUES ('{category}', '{scope}', '{value}', {code})
             ON CONFLICT (category, scope, value) DO UPDATE SET state = 'enabled', code = EXCLUDED.code"
        ))
        .await;
    }

    /// A user created through the same path as `portcullis users create`.
    pub async fn user(&self, role: &str) -> TestUser {
        self.user_with(role, "active", false).await
    }

    pub async fn user_with(&self, role: &str, state: &str, otp: bool) -> TestUser {
        let email = format!("user-{}@example.com", random_suffix());
        let password = "Iequ4geiEWQw!".to_string();
        let settings = self.settings("");
        let request = OperatorAccount {
            application: Application {
                email: &email,
                password: &password,
                username: None,
                data: None,
                role,
            },
            state: state.parse().expect("a state an account may start in"),
            level: 1,
        };
        let uid = accounts::create_with_settings(&self.store, &settings, &request)
            .await
            .expect("user created")
            .uid;
        let client = self.store.client().await.unwrap();
        let row = store::users::find_by_uid(&client, &uid)
            .await
            .unwrap()
            .unwrap();
        let mut otp_secret = None;
        if otp {
            let secret = portcullis::crypto::random_bytes::<20>().to_vec();
            let sealed = self
                .secrets()
                .seal(&portcullis::authn::totp::secret_context(&uid), &secret);
            store::users::set_otp(&client, row.id, true, Some(&sealed))
                .await
                .unwrap();
            otp_secret = Some(secret);
        }
        TestUser {
            id: row.id,
            uid,
            email,
            password,
            otp_secret,
        }
    }

    /// An HMAC key for `uid`, created as `portcullis api-keys create` does.
    pub async fn api_key(&self, uid: &str) -> TestKey {
        let key = api_keys::create(&self.store, &self.secrets(), uid, api_keys::ALGORITHM, "")
            .await
            .expect("api key created");
        TestKey {
            kid: key.kid,
            secret: key.secret,
        }
    }

    /// A service account owned by nobody, active, with `role`.
    pub async fn service_account(&self, role: &str) -> String {
        let uid = portcullis::domain::new_service_account_uid();
        let client = self.store.client().await.unwrap();
        store::service_accounts::insert(
            &client,
            &store::service_accounts::NewServiceAccount {
                uid: &uid,
                owner_id: None,
                email: &format!("{}@service.example.com", uid.to_lowercase()),
                role,
                level: 1,
                state: "active",
            },
        )
        .await
        .unwrap();
        uid
    }

    /// Waits until `check` holds (polling), failing after `timeout_ms`.
    pub async fn eventually<F, Fut>(timeout_ms: u64, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
        loop {
            if check().await {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "condition not met within {timeout_ms} ms"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let db_url = self.db_url.clone();
        let prefix = self.redis_prefix.clone();
        // Drop runs outside async context: clean up on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = store::drop_database(&db_url).await;
                if let Ok(client) = redis::Client::open(redis_url())
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}*"))
                        .query_async(&mut conn)
                        .await
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<(), _> =
                            redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                    }
                }
            });
        })
        .join();
    }
}

/// Appends `extra` to `base`, merging tables that appear in both (TOML forbids repeating one).
fn merge_toml(base: &str, extra: &str) -> String {
    let mut base: toml::Table = toml::from_str(base).expect("base toml");
    let extra: toml::Table = toml::from_str(extra).expect("extra toml");
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(more)) => existing.extend(more),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
    toml::to_string(&base).unwrap()
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub uid: String,
    pub email: String,
    pub password: String,
    pub otp_secret: Option<Vec<u8>>,
}

impl TestUser {
    /// The current TOTP code.
    pub fn otp_code(&self) -> String {
        self.otp_code_steps_ahead(0)
    }

    /// The code `ahead` 30-second steps from now: the server accepts one step either way, and
    /// each step once, so a test that needs a second code right after the first uses the next
    /// step's instead of waiting half a minute.
    pub fn otp_code_steps_ahead(&self, ahead: i64) -> String {
        let secret = self.otp_secret.as_ref().expect("user has 2FA");
        let step = time::OffsetDateTime::now_utc().unix_timestamp() / 30 + ahead;
        format!(
            "{:06}",
            portcullis::authn::totp::code_at(secret, step as u64)
        )
    }
}

pub struct TestKey {
    pub kid: String,
    pub secret: String,
}

/// A nonce for a request signed now: the milliseconds since the epoch, but never the same
/// twice in this test binary. Two requests in the same millisecond would otherwise share one,
/// and the replay guard would rightly refuse the second as `authz.nonce_expired`.
pub fn unique_nonce() -> String {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let previous = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(now);
    now.max(previous + 1).to_string()
}

impl TestKey {
    /// The three API-key headers for a request signed now (with a [`unique_nonce`]).
    pub fn headers(&self) -> Vec<(String, String)> {
        self.headers_with_nonce(&unique_nonce())
    }

    pub fn headers_with_nonce(&self, nonce: &str) -> Vec<(String, String)> {
        vec![
            ("X-Auth-Apikey".into(), self.kid.clone()),
            ("X-Auth-Nonce".into(), nonce.to_string()),
            (
                "X-Auth-Signature".into(),
                portcullis::authn::api_keys::sign(&self.secret, nonce, &self.kid),
            ),
        ]
    }
}

/// Portcullis served in-process on a random port.
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    /// Dropping the server drops this sender, which stops it.
    _stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub const UA: &str = "portcullis-tests/1.0";

impl Server {
    pub async fn start(settings: Settings) -> Server {
        Self::start_with_metrics(settings, None).await
    }

    pub async fn start_with_metrics(
        settings: Settings,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Server {
        let app = App::build(settings, metrics).await.expect("app builds");
        app.start_background().await.expect("background starts");
        // The change listener's first connection resyncs every cache (and reloads the policy):
        // wait for it, so that a test's first requests do not race with that clear.
        TestEnv::eventually(5_000, || {
            let app = app.clone();
            async move { app.gate.policy.current().generation >= 2 }
        })
        .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(portcullis::server::serve_until(
            app.clone(),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            app,
            _stop: stop,
            serving,
        }
    }

    /// Stops accepting, as SIGTERM does; the handle finishes when the drain does.
    pub fn shut_down(self) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        drop(self._stop);
        self.serving
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The URL of an auth API route: `server.api("identity/sessions")`.
    pub fn api(&self, route: &str) -> String {
        self.url(&format!("/api/v2/auth/{route}"))
    }

    /// `/api/v2/auth/identity/<route>`.
    pub fn identity(&self, route: &str) -> String {
        self.api(&format!("identity/{route}"))
    }

    /// `/api/v2/auth/public/<route>`.
    pub fn public(&self, route: &str) -> String {
        self.api(&format!("public/{route}"))
    }

    /// `/api/v2/auth/resource/<route>` (the resource API's tests, issue 10, start here).
    #[allow(dead_code)]
    pub fn resource(&self, route: &str) -> String {
        self.api(&format!("resource/{route}"))
    }

    /// `/api/v2/auth/admin/<route>` (the admin API's tests, issue 11, start here).
    #[allow(dead_code)]
    pub fn admin(&self, route: &str) -> String {
        self.api(&format!("admin/{route}"))
    }

    /// The decision endpoint's URL for an original path.
    pub fn decision(&self, original: &str) -> String {
        self.url(&format!("/api/v2/auth{original}"))
    }

    /// The status of Envoy's decision on Peatio's balances with `session`.
    pub async fn balances_status(&self, session: &Session) -> u16 {
        Client::new()
            .get(self.decision("/api/v2/peatio/account/balances"))
            .session(session)
            .send()
            .await
            .status
    }

    /// Logs in and returns the session.
    pub async fn login(&self, user: &TestUser) -> Session {
        let mut body = serde_json::json!({ "email": user.email, "password": user.password });
        if user.otp_secret.is_some() {
            body["otp_code"] = user.otp_code().into();
        }
        let response = Client::new()
            .post(self.url("/api/v2/auth/identity/sessions"))
            .header("user-agent", UA)
            .json(&body)
            .send()
            .await;
        assert_eq!(response.status, 200, "login failed: {}", response.text());
        let cookie = response.cookie("_barong_session").expect("session cookie");
        let csrf = response.json()["csrf_token"].as_str().unwrap().to_string();
        Session { cookie, csrf }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    pub fn cookie_header(&self) -> String {
        format!("_barong_session={}", self.cookie)
    }
}

/// Decodes a JWT's payload without verifying (tests verify separately).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Verifies a bearer token the way an upstream would: with jsonwebtoken and the JWKS.
pub async fn verify_with_jwks(server: &Server, bearer: &str) -> serde_json::Value {
    let token = bearer.strip_prefix("Bearer ").expect("Bearer prefix");
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(
        Client::new()
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .json(),
    )
    .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["peatio", "barong"]);
    validation.set_issuer(&["barong"]);
    validation.sub = Some("session".into());
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("token verifies with the published key")
        .claims
}
