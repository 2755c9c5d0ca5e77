//! Typed settings: `config/default.toml` (compiled in) < the operator's file < environment.
//!
//! This module owns every knob Portcullis has. Values are validated once at start, so the
//! rest of the code can trust them; a bad value fails the start with the key and the reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use ipnet::IpNet;
use serde::Deserialize;

/// The defaults, embedded so that the file and the binary can never disagree.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Barong's environment variable names, mapped onto our keys, so a `barong.env` keeps working.
const BARONG_ENV: &[(&str, &str)] = &[
    ("BARONG_APP_NAME", "app.name"),
    ("BARONG_DOMAIN", "app.domain"),
    ("BARONG_GATEWAY", "network.gateway"),
    ("DATABASE_URL", "database.url"),
    ("REDIS_URL", "redis.url"),
    ("BARONG_REDIS_URL", "redis.url"),
    ("BARONG_SESSION_NAME", "session.cookie_name"),
    ("BARONG_SESSION_EXPIRE_TIME", "session.expire_time"),
    ("BARONG_CSRF_PROTECTION", "session.csrf_protection"),
    ("BARONG_JWT_EXPIRE_TIME", "jwt.expire_time"),
    ("JWT_PRIVATE_KEY_PATH", "jwt.private_key_path"),
    ("BARONG_APIKEY_NONCE_LIFETIME", "api_keys.nonce_lifetime_ms"),
    ("BARONG_MAXMINDDB_PATH", "geoip.database_path"),
    ("BARONG_GEOIP_LANG", "geoip.language"),
    ("BARONG_UID_PREFIX", "users.uid_prefix"),
    (
        "BARONG_FIRST_REGISTRATION_SUPERADMIN",
        "users.first_registration_superadmin",
    ),
    ("BARONG_PASSWORD_REGEXP", "password.regexp"),
    ("BARONG_PASSWORD_MIN_ENTROPY", "password.min_entropy"),
    ("BARONG_PASSWORD_USE_DICTIONARY", "password.use_dictionary"),
    ("BARONG_CAPTCHA", "captcha.kind"),
    ("BARONG_RECAPTCHA_SITE_KEY", "captcha.recaptcha_site_key"),
    (
        "BARONG_RECAPTCHA_SECRET_KEY",
        "captcha.recaptcha_secret_key",
    ),
    ("BARONG_GEETEST_ID", "captcha.geetest_id"),
    ("BARONG_GEETEST_KEY", "captcha.geetest_key"),
    ("BARONG_AUTH0_DOMAIN", "auth0.domain"),
    ("BARONG_AUTH0_CLIENT_ID", "auth0.client_id"),
    ("EVENT_API_RABBITMQ_URL", "events.rabbitmq_url"),
    ("BARONG_SMTP_HOST", "mail.smtp_host"),
    ("BARONG_SMTP_PORT", "mail.smtp_port"),
    ("BARONG_SMTP_USER", "mail.smtp_user"),
    ("BARONG_SMTP_PASSWORD", "mail.smtp_password"),
    ("BARONG_SENDER_EMAIL", "mail.sender_email"),
    ("BARONG_SENDER_NAME", "mail.sender_name"),
    ("BARONG_DEFAULT_LANGUAGE", "mail.default_language"),
    ("BARONG_KYC_PROVIDER", "kyc.provider"),
    (
        "BARONG_KYCAID_AUTHORIZATION_TOKEN",
        "kyc.kycaid_authorization_token",
    ),
    ("BARONG_PHONE_VERIFICATION", "phones.verification"),
    ("BARONG_API_CORS_ORIGINS", "cors.origins"),
    ("BARONG_API_CORS_MAX_AGE", "cors.max_age"),
    (
        "BARONG_API_CORS_ALLOW_CREDENTIALS",
        "cors.allow_credentials",
    ),
];

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
    pub captcha: Captcha,
    pub auth0: Auth0,
    pub events: Events,
    pub mail: Mail,
    pub kyc: Kyc,
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
    pub shutdown_grace: u64,
    pub max_body_bytes: usize,
    pub header_read_timeout: u64,
    pub idle_timeout: u64,
    pub body_idle_timeout: u64,
    pub body_read_timeout: u64,
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    pub mount: String,
    pub public_prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// `*` or a comma list of http(s) origins (Barong's format).
    pub origins: String,
    pub max_age: u64,
    pub allow_credentials: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub prefix: String,
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
    pub url: String,
    pub tls_ca_file: String,
    pub pool_size: usize,
    pub timeout_ms: u64,
    pub auto_create: bool,
    pub auto_migrate: bool,
    pub load_default_policies: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redis {
    pub url: String,
    pub tls_ca_file: String,
    pub key_prefix: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub cookie_name: String,
    pub expire_time: u64,
    pub lifetime: u64,
    pub secure_cookie: bool,
    pub csrf_protection: bool,
    pub renew_interval: u64,
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
    pub expire_time: u64,
    pub private_key_path: String,
    pub dev_key_path: PathBuf,
    pub additional_public_keys: Vec<PathBuf>,
    pub kid_header: bool,
    pub cache_tokens: bool,
    pub reuse_fraction: f64,
    pub issue_for_pending: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeys {
    pub nonce_lifetime_ms: u64,
    pub replay_guard: bool,
    pub unknown_per_ip: Limit,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIp {
    pub database_path: String,
    pub language: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    pub uid_prefix: String,
    pub first_registration_superadmin: bool,
    pub default_role: String,
    pub activation_requirements: std::collections::BTreeMap<String, String>,
    pub state_triggers: Vec<StateTrigger>,
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
    pub recaptcha_secret_key: String,
    pub recaptcha_verify_url: String,
    pub geetest_id: String,
    pub geetest_key: String,
    pub geetest_api_url: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth0 {
    pub domain: String,
    pub client_id: String,
    pub jwks_url: String,
    pub jwks_cache: u64,
}

impl Auth0 {
    pub fn enabled(&self) -> bool {
        !self.domain.is_empty()
    }

    /// The key set's URL: configured, or the domain's well-known location.
    pub fn jwks_url(&self) -> String {
        if self.jwks_url.is_empty() {
            format!("https://{}/.well-known/jwks.json", self.domain)
        } else {
            self.jwks_url.clone()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    pub rabbitmq_url: String,
    pub publish: bool,
    pub batch: i64,
    pub retry_ms: u64,
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
    pub smtp_user: String,
    pub smtp_password: String,
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

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kyc {
    pub provider: KycProvider,
    /// KYCAID's API token: the key of the HMAC that signs its callbacks. A secret.
    pub kycaid_authorization_token: String,
    /// The largest callback body read; a longer one is refused unread.
    pub callback_max_bytes: usize,
}

impl Kyc {
    /// KYCAID is the provider but no token is set: no callback can be verified, so every one
    /// is refused (fail closed) rather than stored unverified.
    pub fn refuses_every_callback(&self) -> bool {
        self.provider == KycProvider::Kycaid && self.kycaid_authorization_token.is_empty()
    }
}

/// By hand, so that printing the settings never prints the token.
impl std::fmt::Debug for Kyc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = if self.kycaid_authorization_token.is_empty() {
            "(not set)"
        } else {
            "(redacted)"
        };
        f.debug_struct("Kyc")
            .field("provider", &self.provider)
            .field("kycaid_authorization_token", &token)
            .field("callback_max_bytes", &self.callback_max_bytes)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phones {
    pub verification: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Password {
    pub regexp: String,
    pub min_entropy: f64,
    pub use_dictionary: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    pub key: String,
    pub dev_key_path: PathBuf,
}

/// At most `max` events per `window` seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub max: u32,
    pub window: u64,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    pub subject_ttl: u64,
    pub max_subjects: u64,
    pub max_api_keys: u64,
    pub policy_debounce_ms: u64,
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
    pub metrics_path: String,
    pub metrics_allow: Vec<IpNet>,
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
    #[serde(default = "default_route_timeout")]
    pub timeout: u64,
}

fn default_route_timeout() -> u64 {
    60
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

/// Why the settings could not be used; printed as is at start.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "config file {}: does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment
            .merge(TypedEnv(barong_env()))
            .merge(barong_rabbitmq_env())
            .merge(TypedEnv(portcullis_env()));
        let mut settings = Self::from_figment(figment)?;
        settings.warnings =
            env_warnings(std::env::vars_os().filter_map(|(name, _)| name.into_string().ok()));
        Ok(settings)
    }

    /// Defaults with `overrides` (TOML text) merged on top; no environment. For tests and tools.
    pub fn from_toml(overrides: &str) -> Result<Settings, ConfigError> {
        let figment = Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(overrides));
        Self::from_figment(figment)
    }

    fn from_figment(figment: Figment) -> Result<Settings, ConfigError> {
        let settings: Settings = figment.extract().map_err(|err| {
            let reasons: Vec<String> = err.into_iter().map(|e| describe(&e)).collect();
            ConfigError(format!("invalid configuration: {}", reasons.join("; ")))
        })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        for (key, prefix) in [
            ("api.mount", &self.api.mount),
            ("api.public_prefix", &self.api.public_prefix),
            ("decision.prefix", &self.decision.prefix),
        ] {
            if !prefix.starts_with('/') || (prefix.len() > 1 && prefix.ends_with('/')) {
                return fail(key, "must start with '/' and not end with '/'");
            }
        }
        if let Err(why) = crate::net::cors::Cors::new(&self.cors) {
            return fail("cors.origins", &why);
        }
        for (key, value) in [
            (
                "server.header_read_timeout",
                self.server.header_read_timeout,
            ),
            ("server.idle_timeout", self.server.idle_timeout),
            ("server.body_idle_timeout", self.server.body_idle_timeout),
            ("server.body_read_timeout", self.server.body_read_timeout),
            ("server.max_connections", self.server.max_connections as u64),
            (
                "server.max_connections_per_peer",
                self.server.max_connections_per_peer as u64,
            ),
        ] {
            if value == 0 {
                return fail(key, "must be positive");
            }
        }
        if self.events.batch <= 0 {
            return fail("events.batch", "must be positive");
        }
        if !self.events.rabbitmq_url.starts_with("amqp://")
            && !self.events.rabbitmq_url.starts_with("amqps://")
        {
            return fail("events.rabbitmq_url", "must be an amqp:// or amqps:// URL");
        }
        if !(400..=499).contains(&self.decision.envoy_status_for_5xx) {
            return fail("decision.envoy_status_for_5xx", "must be a 4xx status");
        }
        if self.session.cookie_name.is_empty()
            || !self
                .session
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return fail(
                "session.cookie_name",
                "must be non-empty letters, digits, '_', '-', '.'",
            );
        }
        let name = self.session.cookie_name.to_ascii_lowercase();
        if (name.starts_with("__host-") || name.starts_with("__secure-"))
            && !self.session.secure_cookie
        {
            return fail(
                "session.cookie_name",
                "a __Host- or __Secure- cookie needs session.secure_cookie = true (browsers drop it otherwise)",
            );
        }
        if self.session.expire_time == 0 || self.session.lifetime < self.session.expire_time {
            return fail(
                "session.lifetime",
                "must be at least session.expire_time, which must be positive",
            );
        }
        if self.jwt.expire_time == 0 {
            return fail("jwt.expire_time", "must be positive");
        }
        if !(self.jwt.reuse_fraction > 0.0 && self.jwt.reuse_fraction <= 1.0) {
            return fail("jwt.reuse_fraction", "must be in (0, 1]");
        }
        let prefix = &self.users.uid_prefix;
        if !(2..=6).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_alphabetic()) {
            return fail("users.uid_prefix", "must be 2 to 6 letters");
        }
        if let Err(err) = fancy_regex::Regex::new(&self.password.regexp) {
            return fail("password.regexp", &format!("does not compile: {err}"));
        }
        if !self.encryption.key.is_empty() {
            use base64::Engine;
            match base64::engine::general_purpose::STANDARD.decode(self.encryption.key.trim()) {
                Ok(bytes) if bytes.len() == 32 => {}
                _ => return fail("encryption.key", "must be the base64 of exactly 32 bytes"),
            }
        }
        let limits = &self.rate_limits;
        for (key, limit) in [
            ("rate_limits.login_per_ip", limits.login_per_ip),
            ("rate_limits.login_per_account", limits.login_per_account),
            ("rate_limits.signup_per_ip", limits.signup_per_ip),
            ("rate_limits.email_code_per_ip", limits.email_code_per_ip),
            (
                "rate_limits.email_code_per_account",
                limits.email_code_per_account,
            ),
            (
                "rate_limits.password_reset_per_ip",
                limits.password_reset_per_ip,
            ),
            (
                "rate_limits.password_reset_per_account",
                limits.password_reset_per_account,
            ),
            ("rate_limits.token_per_ip", limits.token_per_ip),
            (
                "rate_limits.captcha_register_per_ip",
                limits.captcha_register_per_ip,
            ),
            (
                "rate_limits.kyc_callback_per_ip",
                limits.kyc_callback_per_ip,
            ),
            ("api_keys.unknown_per_ip", self.api_keys.unknown_per_ip),
        ] {
            if limit.max == 0 || limit.window == 0 {
                return fail(key, "max and window must be positive");
            }
        }
        if !(1..=MAX_KYC_CALLBACK_BYTES).contains(&self.kyc.callback_max_bytes) {
            return fail(
                "kyc.callback_max_bytes",
                &format!("must be 1 to {MAX_KYC_CALLBACK_BYTES}"),
            );
        }
        if !self.telemetry.metrics_path.is_empty() && !self.telemetry.metrics_path.starts_with('/')
        {
            return fail("telemetry.metrics_path", "must start with '/' or be empty");
        }
        for (i, route) in self.routes.iter().enumerate() {
            let key = format!("routes[{i}]");
            if !route.prefix.starts_with('/')
                || route.prefix.len() < 2
                || route.prefix.ends_with('/')
            {
                return fail(
                    &format!("{key}.prefix"),
                    "must start with '/', not end with '/', and not be '/' alone",
                );
            }
            let upstreams = route.upstream.list();
            if upstreams.is_empty() {
                return fail(&format!("{key}.upstream"), "needs at least one upstream");
            }
            for upstream in upstreams {
                match upstream.parse::<http::Uri>() {
                    Ok(uri)
                        if uri.scheme_str() == Some("http")
                            && uri.authority().is_some()
                            && (uri.path() == "/" || uri.path().is_empty()) => {}
                    _ => {
                        return fail(
                            &format!("{key}.upstream"),
                            &format!("{upstream:?} must look like http://host:port"),
                        );
                    }
                }
            }
            if let Some(rewrite) = &route.rewrite
                && !rewrite.starts_with('/')
            {
                return fail(&format!("{key}.rewrite"), "must start with '/'");
            }
        }
        Ok(())
    }
}

/// `key: reason (from SOURCE)`, naming the environment variable when one set the value.
fn describe(err: &figment::Error) -> String {
    let key = err
        .path
        .iter()
        .map(|p| p.to_lowercase())
        .collect::<Vec<_>>()
        .join(".");
    let source = match err.metadata.as_ref().and_then(|m| m.source.as_ref()) {
        Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
        _ if err
            .metadata
            .as_ref()
            .is_some_and(|m| m.name.contains("environment")) =>
        {
            let mut names: Vec<String> = BARONG_ENV
                .iter()
                .filter(|(env, k)| *k == key && std::env::var_os(env).is_some())
                .map(|(env, _)| env.to_string())
                .collect();
            let ours = format!("PORTCULLIS_{}", key.to_uppercase().replace('.', "__"));
            if std::env::var_os(&ours).is_some() {
                names.push(ours);
            }
            format!(" (from {})", names.join(", "))
        }
        _ => String::new(),
    };
    let key = if key.is_empty() {
        "configuration".into()
    } else {
        key
    };
    format!("{key}: {}{source}", err.kind)
}

/// Barong's separate RabbitMQ variables, assembled into `events.rabbitmq_url` (unless
/// EVENT_API_RABBITMQ_URL, which wins, is set).
fn barong_rabbitmq_env()
-> figment::providers::Serialized<std::collections::BTreeMap<String, String>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut values = std::collections::BTreeMap::new();
    let parts = [
        "BARONG_EVENT_API_RABBITMQ_HOST",
        "BARONG_EVENT_API_RABBITMQ_PORT",
        "BARONG_EVENT_API_RABBITMQ_USERNAME",
        "BARONG_EVENT_API_RABBITMQ_PASSWORD",
    ];
    if var("EVENT_API_RABBITMQ_URL").is_none() && parts.iter().any(|p| var(p).is_some()) {
        let encode = |s: String| {
            percent_encoding::utf8_percent_encode(&s, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        };
        values.insert(
            "rabbitmq_url".to_string(),
            format!(
                "amqp://{}:{}@{}:{}/%2f",
                encode(var(parts[2]).unwrap_or_else(|| "guest".into())),
                encode(var(parts[3]).unwrap_or_else(|| "guest".into())),
                var(parts[0]).unwrap_or_else(|| "localhost".into()),
                var(parts[1]).unwrap_or_else(|| "5672".into()),
            ),
        );
    }
    figment::providers::Serialized::defaults(values).key("events")
}

/// The sections of the settings and the keys of each, as the compiled-in defaults list them.
fn layout() -> &'static std::collections::BTreeMap<String, Vec<String>> {
    static LAYOUT: std::sync::LazyLock<std::collections::BTreeMap<String, Vec<String>>> =
        std::sync::LazyLock::new(|| {
            let defaults: toml::Table = toml::from_str(DEFAULT_TOML).expect("defaults parse");
            defaults
                .into_iter()
                .filter_map(|(section, value)| match value {
                    toml::Value::Table(keys) => Some((section, keys.keys().cloned().collect())),
                    _ => None,
                })
                .collect()
        });
    &LAYOUT
}

const ENV_PREFIX: &str = "PORTCULLIS_";

/// `SECTION__KEY` when `name` is `PORTCULLIS_<SECTION>__<KEY>` for a section that exists.
/// Only those (and `PORTCULLIS_CONFIG`) are settings: the orchestrator's own variables
/// (Kubernetes injects `PORTCULLIS_PORT=tcp://…`, `PORTCULLIS_SERVICE_HOST` and the like for a
/// Service named `portcullis`) are someone else's.
fn setting_name(name: &str) -> Option<&str> {
    let rest = name
        .get(..ENV_PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(ENV_PREFIX))
        .map(|_| &name[ENV_PREFIX.len()..])?;
    let (section, _key) = rest.split_once("__")?;
    layout()
        .contains_key(&section.to_ascii_lowercase())
        .then_some(rest)
}

/// The `PORTCULLIS_<SECTION>__<KEY>` variables.
fn portcullis_env() -> Env {
    Env::raw()
        .filter_map(|name| setting_name(name.as_str()).map(|rest| rest.to_string().into()))
        .split("__")
}

/// Warnings for `PORTCULLIS_*` variables that are not settings but look like misspelt ones
/// (`PORTCULLIS_SESSION_EXPIRE_TIME`, `PORTCULLIS_SESION__EXPIRE_TIME`). Anything else is
/// silently someone else's.
fn env_warnings(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut warnings = Vec::new();
    for name in names {
        let Some(rest) = name
            .get(..ENV_PREFIX.len())
            .filter(|prefix| prefix.eq_ignore_ascii_case(ENV_PREFIX))
            .map(|_| name[ENV_PREFIX.len()..].to_ascii_lowercase())
        else {
            continue;
        };
        if rest == "config" || setting_name(&name).is_some() {
            continue;
        }
        if let Some((section, _)) = rest.split_once("__") {
            let sections: Vec<&str> = layout().keys().map(String::as_str).collect();
            warnings.push(format!(
                "{name} is ignored: there is no settings section {section:?} (sections: {})",
                sections.join(", ")
            ));
            continue;
        }
        let guess = layout().iter().find_map(|(section, keys)| {
            let key = rest.strip_prefix(section.as_str())?.strip_prefix('_')?;
            keys.iter().any(|k| k == key).then(|| {
                format!(
                    "{ENV_PREFIX}{}__{}",
                    section.to_ascii_uppercase(),
                    key.to_ascii_uppercase()
                )
            })
        });
        if let Some(guess) = guess {
            warnings.push(format!(
                "{name} is ignored: settings take two underscores between section and key; did you mean {guess}?"
            ));
        }
    }
    warnings
}

/// Environment variables as settings, typed by the defaults: a value whose default is text is
/// taken as text whatever it looks like (`BARONG_SMTP_PASSWORD=123456` is a password, not a
/// number that fails the start), anything else is parsed as figment parses it (numbers,
/// booleans, lists such as `["10.0.0.5/32"]`).
struct TypedEnv(Env);

/// True when the compiled-in default of `path` (`section.key`) is a string.
fn default_is_text(path: &str) -> bool {
    static DEFAULTS: std::sync::LazyLock<toml::Table> =
        std::sync::LazyLock::new(|| toml::from_str(DEFAULT_TOML).expect("defaults parse"));
    let mut node: Option<&toml::Value> = None;
    for (i, part) in path.split('.').enumerate() {
        node = if i == 0 {
            DEFAULTS.get(part)
        } else {
            node.and_then(|n| n.get(part))
        };
    }
    matches!(node, Some(toml::Value::String(_)))
}

impl figment::Provider for TypedEnv {
    fn metadata(&self) -> figment::Metadata {
        self.0.metadata()
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Dict, Value};
        let mut dict = Dict::new();
        for (key, raw) in self.0.iter() {
            let key = key.as_str().to_ascii_lowercase();
            let value = if default_is_text(&key) {
                Value::from(raw)
            } else {
                raw.parse::<Value>().expect("parsing a value is infallible")
            };
            insert_at(&mut dict, &key, value);
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// Sets `path` (`a.b.c`) in `dict` to `value`, creating the tables on the way.
fn insert_at(dict: &mut figment::value::Dict, path: &str, value: figment::value::Value) {
    use figment::value::{Dict, Value};
    match path.split_once('.') {
        None => {
            dict.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_at(inner, rest, value);
            }
        }
    }
}

/// Reads Barong's variable names (and the usual DATABASE_URL, REDIS_URL) into our keys.
fn barong_env() -> Env {
    Env::raw().filter_map(|name| {
        BARONG_ENV
            .iter()
            .find(|(env, _)| name == *env)
            .map(|(_, key)| (*key).into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let s = Settings::from_toml("").expect("defaults are valid");
        assert_eq!(s.session.cookie_name, "_barong_session");
        assert_eq!(s.session.expire_time, 1800);
        assert_eq!(s.api_keys.nonce_lifetime_ms, 5000);
        assert_eq!(s.jwt.algorithm, JwtAlgorithm::RS256);
        assert!(s.routes.is_empty());
    }

    #[test]
    fn routes_accept_one_or_many_upstreams() {
        let s = Settings::from_toml(
            r#"
            [[routes]]
            prefix = "/api/v2/peatio"
            upstream = "http://127.0.0.1:9000"
            rewrite = "/api/v2"
            [[routes]]
            prefix = "/api/v2/finex"
            upstream = ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]
            "#,
        )
        .unwrap();
        assert_eq!(s.routes[0].upstream.list(), vec!["http://127.0.0.1:9000"]);
        assert_eq!(s.routes[1].upstream.list().len(), 2);
        assert_eq!(s.routes[0].timeout, 60);
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = Settings::from_toml("[session]\nexpire_time = \"soon\"").unwrap_err();
        assert!(err.0.contains("session.expire_time"), "{err}");
        let err = Settings::from_toml("[users]\nuid_prefix = \"X1\"").unwrap_err();
        assert!(err.0.contains("users.uid_prefix"), "{err}");
        let err = Settings::from_toml("[session]\nnot_a_key = 1").unwrap_err();
        assert!(err.0.contains("not_a_key"), "{err}");
        let err =
            Settings::from_toml("[[routes]]\nprefix = \"/x\"\nupstream = \"ftp://h\"").unwrap_err();
        assert!(err.0.contains("routes[0].upstream"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type
    fn barong_env_names_override() {
        // Figment's Jail isolates the environment for the closure.
        figment::Jail::expect_with(|jail| {
            jail.set_env("BARONG_SESSION_EXPIRE_TIME", "900");
            jail.set_env("BARONG_CSRF_PROTECTION", "false");
            jail.set_env("PORTCULLIS_REDIS__KEY_PREFIX", "x:");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.session.expire_time, 900);
            assert!(!s.session.csrf_protection);
            assert_eq!(s.redis.key_prefix, "x:");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type
    fn orchestrator_variables_are_not_settings() {
        figment::Jail::expect_with(|jail| {
            // What Kubernetes injects for a Service named `portcullis`.
            jail.set_env("PORTCULLIS_PORT", "tcp://10.96.0.12:8080");
            jail.set_env("PORTCULLIS_PORT_8080_TCP", "tcp://10.96.0.12:8080");
            jail.set_env("PORTCULLIS_PORT_8080_TCP_ADDR", "10.96.0.12");
            jail.set_env("PORTCULLIS_PORT_8080_TCP_PORT", "8080");
            jail.set_env("PORTCULLIS_PORT_8080_TCP_PROTO", "tcp");
            jail.set_env("PORTCULLIS_SERVICE_HOST", "10.96.0.12");
            jail.set_env("PORTCULLIS_SERVICE_PORT", "8080");
            jail.set_env("PORTCULLIS_SERVICE_PORT_HTTP", "8080");
            jail.set_env("PORTCULLIS_SESSION__EXPIRE_TIME", "900");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.session.expire_time, 900);
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
            // Misspelt settings are ignored too, but said.
            jail.set_env("PORTCULLIS_SESSION_EXPIRE_TIME", "60");
            jail.set_env("PORTCULLIS_SESION__EXPIRE_TIME", "60");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.session.expire_time, 900);
            assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
            assert!(
                s.warnings
                    .iter()
                    .any(|w| w.contains("did you mean PORTCULLIS_SESSION__EXPIRE_TIME")),
                "{:?}",
                s.warnings
            );
            // A real section with a wrong key is a setting, and a wrong one.
            jail.set_env("PORTCULLIS_SESSION__EXPIRE_TIMES", "60");
            let err = Settings::load(None).unwrap_err().0;
            assert!(err.contains("expire_times"), "{err}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn lists_can_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "PORTCULLIS_NETWORK__TRUSTED_PROXIES",
                r#"["172.28.0.10/32"]"#,
            );
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(
                s.network.trusted_proxies,
                vec!["172.28.0.10/32".parse::<IpNet>().unwrap()]
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn text_settings_stay_text_whatever_they_look_like() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BARONG_SMTP_PASSWORD", "123456");
            jail.set_env("PORTCULLIS_AUTH0__CLIENT_ID", "0042");
            jail.set_env("PORTCULLIS_APP__NAME", "true");
            jail.set_env("PORTCULLIS_SESSION__EXPIRE_TIME", "900");
            jail.set_env(
                "PORTCULLIS_RATE_LIMITS__LOGIN_PER_IP",
                "{ max = 3, window = 60 }",
            );
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.mail.smtp_password, "123456");
            assert_eq!(s.auth0.client_id, "0042");
            assert_eq!(s.app.name, "true");
            assert_eq!(s.session.expire_time, 900);
            assert_eq!(s.rate_limits.login_per_ip.max, 3);
            Ok(())
        });
    }

    #[test]
    fn a_host_cookie_needs_the_secure_flag() {
        let err = Settings::from_toml(
            "[session]\ncookie_name = \"__Host-session\"\nsecure_cookie = false",
        )
        .unwrap_err();
        assert!(err.0.starts_with("session.cookie_name"), "{err}");
        assert!(Settings::from_toml("[session]\ncookie_name = \"__Host-session\"").is_ok());
    }

    #[test]
    fn sections_come_from_the_defaults() {
        for section in ["server", "session", "api_keys", "rate_limits", "telemetry"] {
            assert!(layout().contains_key(section), "{section}");
        }
        assert!(!layout().contains_key("routes"));
        assert_eq!(
            setting_name("PORTCULLIS_API_KEYS__REPLAY_GUARD"),
            Some("API_KEYS__REPLAY_GUARD")
        );
        assert_eq!(setting_name("PORTCULLIS_PORT_8080_TCP"), None);
        assert_eq!(setting_name("PORTCULLIS_CONFIG"), None);
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_kycaid_token_is_read_from_barongs_variable_and_never_printed() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert!(s.kyc.refuses_every_callback());
            assert!(format!("{s:?}").contains("(not set)"));
            jail.set_env("BARONG_KYCAID_AUTHORIZATION_TOKEN", "kycaid-secret-token");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.kyc.kycaid_authorization_token, "kycaid-secret-token");
            assert!(!s.kyc.refuses_every_callback());
            assert!(!format!("{s:?}").contains("kycaid-secret-token"));
            jail.set_env("BARONG_KYC_PROVIDER", "local");
            jail.set_env("BARONG_KYCAID_AUTHORIZATION_TOKEN", "");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert!(!s.kyc.refuses_every_callback());
            Ok(())
        });
    }

    #[test]
    fn kyc_callback_limits_are_checked() {
        let err =
            Settings::from_toml("[rate_limits]\nkyc_callback_per_ip = { max = 0, window = 60 }")
                .unwrap_err();
        assert!(
            err.0.starts_with("rate_limits.kyc_callback_per_ip"),
            "{err}"
        );
        for bytes in [0, MAX_KYC_CALLBACK_BYTES + 1] {
            let err =
                Settings::from_toml(&format!("[kyc]\ncallback_max_bytes = {bytes}")).unwrap_err();
            assert!(err.0.starts_with("kyc.callback_max_bytes"), "{err}");
        }
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn barong_cors_variables_are_read_and_checked() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "BARONG_API_CORS_ORIGINS",
                "https://a.example,https://b.example",
            );
            jail.set_env("BARONG_API_CORS_MAX_AGE", "60");
            jail.set_env("BARONG_API_CORS_ALLOW_CREDENTIALS", "true");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.cors.origins, "https://a.example,https://b.example");
            assert_eq!(s.cors.max_age, 60);
            assert!(s.cors.allow_credentials);
            jail.set_env("BARONG_API_CORS_ORIGINS", "*");
            let err = Settings::load(None).unwrap_err().0;
            assert!(err.starts_with("cors.origins: allow_credentials"), "{err}");
            Ok(())
        });
    }
}
