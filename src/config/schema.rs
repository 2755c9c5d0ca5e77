//! The settings' shape: one struct per section of `config/default.toml`, each field in the type
//! the code uses. Values are parsed into those types as they are read (durations, origins, the
//! password rule, keys, secrets, "off" as `None`), so a struct that exists holds valid values.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::{CorsOrigins, EncryptionKey, PasswordRegexp, Secret, checks, duration, optional};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub app: App,
    pub server: Server,
    pub api: Api,
    pub cors: Cors,
    pub decision: Decision,
    pub network: Network,
    pub database: Database,
    pub redis: Redis,
    pub session: Session,
    pub jwt: Jwt,
    pub api_keys: ApiKeys,
    pub geoip: GeoIp,
    pub users: Users,
    pub password: Password,
    pub encryption: Encryption,
    pub rate_limits: RateLimits,
    pub backoffice: BackOffice,
    pub captcha: Captcha,
    pub auth0: Auth0,
    pub events: Events,
    pub mail: Mail,
    pub kyc: Kyc,
    pub uploads: Uploads,
    pub phones: Phones,
    pub cache: Cache,
    pub telemetry: Telemetry,
    pub policies: Policies,
    pub routes: Vec<Route>,
    /// Things about the settings' sources an operator should hear of (logged at start, once
    /// logging is set up): environment variables that look like misspelt settings.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Development mode (`--dev`): missing keys are generated and kept on disk instead of
    /// stopping the start. Never set from a file or the environment.
    #[serde(skip)]
    pub development: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub name: String,
    pub domain: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: SocketAddr,
    #[serde(deserialize_with = "duration::seconds")]
    pub shutdown_grace: Duration,
    pub max_body_bytes: usize,
    #[serde(deserialize_with = "duration::positive_seconds")]
    pub header_read_timeout: Duration,
    #[serde(deserialize_with = "duration::positive_seconds")]
    pub idle_timeout: Duration,
    #[serde(deserialize_with = "duration::positive_seconds")]
    pub body_idle_timeout: Duration,
    #[serde(deserialize_with = "duration::positive_seconds")]
    pub body_read_timeout: Duration,
    #[serde(deserialize_with = "checks::positive")]
    pub max_connections: usize,
    #[serde(deserialize_with = "checks::positive")]
    pub max_connections_per_peer: usize,
    /// Threads that run requests; 0: one per CPU this process may use.
    pub worker_threads: usize,
}

impl Server {
    /// How many threads run requests: `worker_threads`, or one per CPU this process may use
    /// (its affinity mask and cgroup quota, as tokio counts them).
    pub fn workers(&self) -> usize {
        match self.worker_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    #[serde(deserialize_with = "checks::path_prefix")]
    pub mount: String,
    #[serde(deserialize_with = "checks::path_prefix")]
    pub public_prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// `*` or a comma list of http(s) origins (Barong's format).
    pub origins: CorsOrigins,
    #[serde(deserialize_with = "duration::seconds")]
    pub max_age: Duration,
    pub allow_credentials: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(deserialize_with = "checks::path_prefix")]
    pub prefix: String,
    #[serde(deserialize_with = "checks::status_4xx")]
    pub envoy_status_for_5xx: u16,
    pub callers: DecisionCallers,
}

/// Who may call the decision fronts (Envoy HTTP and gRPC, nginx, forward-auth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionCallers {
    /// Only peers in `network.trusted_proxies`: the proxies the fronts exist for.
    TrustedProxies,
    /// Anyone who can reach the listener (Barong's behaviour).
    Anyone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gateway {
    Cloudflare,
    Akamai,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub trusted_proxies: Vec<IpNet>,
    pub gateway: Gateway,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// May carry a password.
    pub url: Secret,
    /// A streaming replica for reads that tolerate lag (operators' listings and reports);
    /// writes, decisions and change notices stay on `url`.
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub replica_url: Option<Secret>,
    /// `None`: the system's trusted roots.
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub tls_ca_file: Option<PathBuf>,
    pub pool_size: usize,
    #[serde(rename = "timeout_ms", deserialize_with = "duration::millis")]
    pub timeout: Duration,
    pub auto_create: bool,
    pub auto_migrate: bool,
    pub load_default_policies: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redis {
    /// Standalone: the server. Cluster: seed nodes, comma-separated. Sentinel: the sentinels,
    /// comma-separated. Each may carry a password.
    pub url: Secret,
    /// Redis Cluster (Barong's `BARONG_REDIS_CLUSTER`): `url` lists seed nodes; the rest of
    /// the cluster is discovered from them.
    #[serde(default)]
    pub cluster: bool,
    /// Redis Sentinel: the name of the master set the sentinels in `url` watch. The master is
    /// asked of them at start and again after a failover.
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub sentinel_master: Option<String>,
    /// The password when the URL names none (Barong's `BARONG_REDIS_PASSWORD`).
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub password: Option<Secret>,
    /// `None`: the system's trusted roots.
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub tls_ca_file: Option<PathBuf>,
    pub key_prefix: String,
    #[serde(rename = "timeout_ms", deserialize_with = "duration::millis")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    #[serde(deserialize_with = "checks::cookie_name")]
    pub cookie_name: String,
    /// The sliding inactivity limit (positive: checked with `lifetime`).
    #[serde(deserialize_with = "duration::seconds")]
    pub expire_time: Duration,
    #[serde(deserialize_with = "duration::seconds")]
    pub lifetime: Duration,
    pub secure_cookie: bool,
    pub csrf_protection: bool,
    #[serde(deserialize_with = "duration::seconds")]
    pub renew_interval: Duration,
    /// How long a node trusts a session it read without asking Redis again; 0: never.
    /// Logouts reach every node at once by pub/sub; this bounds the staleness if one is lost.
    #[serde(rename = "cache_ttl_ms", deserialize_with = "duration::millis")]
    pub cache_ttl: Duration,
    /// Sessions cached per node (least used evicted first).
    pub cache_max: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    RS256,
    RS384,
    RS512,
}

impl JwtAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::RS384 => "RS384",
            JwtAlgorithm::RS512 => "RS512",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwt {
    pub algorithm: JwtAlgorithm,
    #[serde(deserialize_with = "duration::positive_seconds")]
    pub expire_time: Duration,
    /// `None`: the development key (only with `--dev`).
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub private_key_path: Option<PathBuf>,
    pub dev_key_path: PathBuf,
    pub additional_public_keys: Vec<PathBuf>,
    pub kid_header: bool,
    pub cache_tokens: bool,
    #[serde(deserialize_with = "checks::fraction")]
    pub reuse_fraction: f64,
    pub issue_for_pending: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeys {
    #[serde(rename = "nonce_lifetime_ms", deserialize_with = "duration::millis")]
    pub nonce_lifetime: Duration,
    pub replay_guard: bool,
    pub unknown_per_ip: Limit,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIp {
    /// `None`: geo restrictions never match.
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub database_path: Option<PathBuf>,
    pub language: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    #[serde(deserialize_with = "checks::uid_prefix")]
    pub uid_prefix: String,
    pub first_registration_superadmin: bool,
    pub default_role: String,
    pub activation_requirements: BTreeMap<String, String>,
    pub state_triggers: Vec<StateTrigger>,
    /// Titles a user may store data under (`POST /resource/data_storage`; Barong's
    /// `user_storage_titles`, empty there, so that nothing could be stored: decisions.md #24).
    pub storage_titles: Vec<String>,
}

/// Labels whose key puts a user in `state`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateTrigger {
    pub state: String,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptchaKind {
    None,
    Recaptcha,
    Geetest,
}

impl CaptchaKind {
    pub fn name(self) -> &'static str {
        match self {
            CaptchaKind::None => "none",
            CaptchaKind::Recaptcha => "recaptcha",
            CaptchaKind::Geetest => "geetest",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Captcha {
    pub kind: CaptchaKind,
    pub protected_endpoints: Vec<String>,
    pub recaptcha_site_key: String,
    pub recaptcha_secret_key: Secret,
    pub recaptcha_verify_url: String,
    pub geetest_id: String,
    pub geetest_key: Secret,
    pub geetest_api_url: String,
    #[serde(rename = "timeout_ms", deserialize_with = "duration::millis")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth0 {
    /// `None`: Auth0 login is off.
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub domain: Option<String>,
    pub client_id: String,
    /// `None`: the domain's well-known location.
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub jwks_url: Option<String>,
    #[serde(deserialize_with = "duration::seconds")]
    pub jwks_cache: Duration,
}

impl Auth0 {
    pub fn enabled(&self) -> bool {
        self.domain.is_some()
    }

    /// The key set's URL: configured, or the domain's well-known location.
    pub fn jwks_url(&self) -> String {
        match (&self.jwks_url, &self.domain) {
            (Some(url), _) => url.clone(),
            (None, domain) => format!(
                "https://{}/.well-known/jwks.json",
                domain.as_deref().unwrap_or_default()
            ),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    #[serde(deserialize_with = "checks::amqp_url")]
    pub rabbitmq_url: Secret,
    pub publish: bool,
    #[serde(deserialize_with = "checks::positive")]
    pub batch: i64,
    #[serde(rename = "retry_ms", deserialize_with = "duration::millis")]
    pub retry: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailDelivery {
    Smtp,
    Log,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mail {
    pub delivery: MailDelivery,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `None`: no SMTP authentication.
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub smtp_user: Option<String>,
    pub smtp_password: Secret,
    pub smtp_tls: SmtpTls,
    pub sender_email: String,
    pub sender_name: String,
    pub default_language: String,
    pub templates_dir: PathBuf,
    pub confirmation_url: String,
    pub reset_url: String,
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KycProvider {
    Kycaid,
    Local,
}

/// The most `kyc.callback_max_bytes` may allow: KYCAID's documented callbacks are well under
/// 1 KiB, and a body must be read whole, unauthenticated, before its signature can be checked.
pub const MAX_KYC_CALLBACK_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kyc {
    pub provider: KycProvider,
    /// KYCAID's API token: the key of the HMAC that signs its callbacks. `None`: not set.
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub kycaid_authorization_token: Option<Secret>,
    /// The largest callback body read; a longer one is refused unread.
    #[serde(deserialize_with = "checks::kyc_callback_bytes")]
    pub callback_max_bytes: usize,
    /// KYCAID's API base URL (`https://api.kycaid.com/`); tests point it at a local fake.
    pub kycaid_api_endpoint: String,
    /// The KYCAID form whose settings a verification inherits; empty: none sent.
    #[serde(default)]
    pub kycaid_form_id: String,
    /// Barong's sandbox flag. KYCAID tells sandbox from live by the token, so it changes no
    /// call; it is kept so Barong's environment parses, and reported at start.
    pub kycaid_sandbox_mode: bool,
    /// Where KYCAID posts verification results; empty: `https://<app.domain><mount>/public/kyc`.
    #[serde(default)]
    pub kycaid_callback_url: String,
    /// The longest wait for one KYCAID call.
    #[serde(rename = "request_timeout_ms", deserialize_with = "duration::millis")]
    pub request_timeout: Duration,
    /// The KYC worker's longest wait for the wake bell when the queue is drained.
    #[serde(deserialize_with = "duration::positive_seconds")]
    pub worker_idle_wait: Duration,
    /// A failed job's first retry delay; it doubles with each attempt, up to `retry_max`.
    #[serde(rename = "retry_first_ms", deserialize_with = "duration::millis")]
    pub retry_first: Duration,
    #[serde(rename = "retry_max_ms", deserialize_with = "duration::millis")]
    pub retry_max: Duration,
    /// A profile that a staff member created needs another staff member to verify it, unless
    /// the creator's role is one of `profile_verification_roles`.
    pub profile_double_verification: bool,
    pub profile_verification_roles: Vec<String>,
}

impl Kyc {
    /// KYCAID is the provider but no token is set: no callback can be verified, so every one
    /// is refused (fail closed) rather than stored unverified.
    pub fn refuses_every_callback(&self) -> bool {
        self.provider == KycProvider::Kycaid && self.kycaid_authorization_token.is_none()
    }

    /// Submissions go to KYCAID: it is the provider and its token is set. With the provider
    /// but no token, jobs stay queued until the token is configured.
    pub fn submits_to_kycaid(&self) -> bool {
        self.provider == KycProvider::Kycaid && self.kycaid_authorization_token.is_some()
    }
}

/// Where uploaded files live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// A directory on this node's disk.
    Local,
    /// An S3-compatible service (Barong's `AWS`).
    Aws,
}

impl<'de> Deserialize<'de> for StorageKind {
    /// Barong's values are case-insensitive (`AWS`, `local`); its `Google` and `AliCloud`
    /// speak S3 too, through `aws` with their endpoint.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StorageKind, D::Error> {
        let value = String::deserialize(d)?;
        match value.to_ascii_lowercase().as_str() {
            "local" => Ok(StorageKind::Local),
            "aws" | "s3" => Ok(StorageKind::Aws),
            _ => Err(serde::de::Error::custom(
                "must be local or aws (Google and AliCloud: aws with their S3 endpoint)",
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uploads {
    /// Lower-case extensions, each one whose content `domain::documents` can recognise.
    #[serde(deserialize_with = "checks::upload_extensions")]
    pub extension_whitelist: Vec<String>,
    #[serde(deserialize_with = "checks::positive")]
    pub min_size_bytes: usize,
    #[serde(deserialize_with = "checks::upload_max_mb")]
    pub max_size_mb: usize,
    #[serde(deserialize_with = "checks::positive")]
    pub doc_num_limit: usize,
    pub required_docs_expire: bool,
    pub storage: StorageKind,
    pub local_dir: PathBuf,
    pub bucket: String,
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub secret_access_key: Option<Secret>,
    pub path_style: bool,
    pub allow_http: bool,
    #[serde(deserialize_with = "duration::positive_seconds")]
    pub timeout: Duration,
}

impl Uploads {
    pub fn max_size_bytes(&self) -> usize {
        self.max_size_mb * 1024 * 1024
    }

    /// The most an upload request's body may carry: every file a user may still add at the
    /// largest size, and room for the text fields and the multipart framing.
    pub fn max_request_bytes(&self) -> usize {
        self.doc_num_limit * self.max_size_bytes() + 1024 * 1024
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phones {
    pub verification: PhoneVerification,
    /// How long a code sent by SMS (`twilio_sms`) is accepted.
    #[serde(rename = "code_lifetime", deserialize_with = "duration::seconds")]
    pub code_lifetime: Duration,
    pub twilio_api_url: String,
    pub twilio_verify_url: String,
    pub twilio_account_sid: String,
    /// `None`: not set (a Twilio provider then refuses to start).
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub twilio_auth_token: Option<Secret>,
    /// The sender of `twilio_sms` messages.
    pub twilio_phone_number: String,
    /// `None`: `twilio_verify` creates a service named after `app.name` at start.
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub twilio_service_sid: Option<String>,
    /// The `twilio_sms` message; `{{code}}` is replaced by the code.
    pub sms_content_template: String,
    #[serde(rename = "timeout_ms", deserialize_with = "duration::millis")]
    pub timeout: Duration,
}

/// How phone numbers are verified (Barong's `BARONG_PHONE_VERIFICATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneVerification {
    /// Nothing is sent; any code verifies a number the user added (development).
    Mock,
    /// Our own code, sent by SMS through Twilio's Messages API.
    TwilioSms,
    /// Twilio Verify sends and checks the code.
    TwilioVerify,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Password {
    pub regexp: PasswordRegexp,
    pub min_entropy: f64,
    pub use_dictionary: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// `None`: the development key (only with `--dev`).
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub key: Option<EncryptionKey>,
    pub dev_key_path: PathBuf,
}

/// At most `max` events per `window` (written in seconds); both positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "LimitText")]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

/// `Limit` as written, before its rule is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitText {
    max: u32,
    window: u64,
}

impl TryFrom<LimitText> for Limit {
    type Error = &'static str;
    fn try_from(text: LimitText) -> Result<Limit, &'static str> {
        if text.max == 0 || text.window == 0 {
            return Err("max and window must be positive");
        }
        Ok(Limit {
            max: text.max,
            window: Duration::from_secs(text.window),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    pub login_per_ip: Limit,
    pub login_per_account: Limit,
    pub signup_per_ip: Limit,
    pub email_code_per_ip: Limit,
    pub email_code_per_account: Limit,
    pub password_reset_per_ip: Limit,
    pub password_reset_per_account: Limit,
    pub token_per_ip: Limit,
    pub captcha_register_per_ip: Limit,
    pub kyc_callback_per_ip: Limit,
    pub phone_code_per_account: Limit,
    pub phone_verify_per_account: Limit,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    #[serde(deserialize_with = "duration::seconds")]
    pub subject_ttl: Duration,
    pub max_subjects: u64,
    pub max_api_keys: u64,
    #[serde(rename = "policy_debounce_ms", deserialize_with = "duration::millis")]
    pub policy_debounce: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    pub log_format: LogFormat,
    pub log_filter: String,
    /// `None`: no metrics endpoint.
    #[serde(default, deserialize_with = "checks::optional_path")]
    pub metrics_path: Option<String>,
    pub metrics_allow: Vec<IpNet>,
}

/// The Back Office token API (seed 003): who may sign in, token lifetimes, attempt limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackOffice {
    /// Serve `<prefix>/signin`, `/2fa/confirm`, `/refresh` and `/signout`.
    pub enabled: bool,
    #[serde(deserialize_with = "checks::path_prefix")]
    pub prefix: String,
    /// Roles that may sign in; empty: every role holding admin abilities.
    pub roles: Vec<String>,
    #[serde(rename = "access_ttl", deserialize_with = "duration::positive_seconds")]
    pub access_ttl: Duration,
    #[serde(
        rename = "refresh_ttl",
        deserialize_with = "duration::positive_seconds"
    )]
    pub refresh_ttl: Duration,
    #[serde(
        rename = "two_factor_ttl",
        deserialize_with = "duration::positive_seconds"
    )]
    pub two_factor_ttl: Duration,
    /// Sign-in attempts per account and per client address.
    pub signin: Limit,
    /// 2FA codes tried per 2FA token and per client address.
    pub two_factor: Limit,
    /// Refreshes per client address and per account.
    pub refresh: Limit,
    /// How long an account or address over a limit is refused.
    #[serde(rename = "lockout", deserialize_with = "duration::positive_seconds")]
    pub lockout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    pub dir: PathBuf,
}

/// One upstream service of the built-in proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub prefix: String,
    pub upstream: Upstreams,
    #[serde(default)]
    pub rewrite: Option<String>,
    /// How long to wait for the upstream's response head.
    #[serde(
        default = "default_route_timeout",
        deserialize_with = "duration::seconds"
    )]
    pub timeout: Duration,
    /// Consecutive failed connects after which an upstream of the route is left out of the
    /// rotation for `fail_timeout` (0: never left out).
    #[serde(default = "default_max_fails")]
    pub max_fails: u32,
    #[serde(
        default = "default_fail_timeout",
        deserialize_with = "duration::seconds"
    )]
    pub fail_timeout: Duration,
    /// A path each upstream of the route is asked for every `health_interval` (active
    /// checks): one that fails to answer 2xx or 3xx leaves the rotation until it passes again.
    #[serde(default, deserialize_with = "optional::empty_is_none")]
    pub health_check: Option<String>,
    #[serde(
        default = "default_health_interval",
        deserialize_with = "duration::seconds"
    )]
    pub health_interval: Duration,
}

fn default_health_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_route_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_max_fails() -> u32 {
    3
}

fn default_fail_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Upstreams {
    One(String),
    Many(Vec<String>),
}

impl Upstreams {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Upstreams::One(u) => vec![u.as_str()],
            Upstreams::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}
