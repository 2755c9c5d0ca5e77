//! Typed settings: `config/default.toml` (compiled in) < the operator's file < environment.
//!
//! This module owns every knob Portcullis has. Each value is parsed into the type the code uses
//! as it is read (a duration, the compiled password rule, the CORS origins, a key, a secret that
//! never prints, `None` for "off"), so the rest of the code holds values, not text to check
//! again. A bad value fails the start with the key, the reason and the variable that set it;
//! `Settings::validate` is left with the rules between fields.
//!
//! - `schema`: the sections and their fields;
//! - `barong_env`, `env`: Barong's variable names and our own `PORTCULLIS_*` ones;
//! - `checks`, `duration`, `optional`: how one value is parsed and checked;
//! - `secret`, `encryption_key`, `cors_origins`, `password_regexp`: the parsed types.

mod barong_env;
mod checks;
mod cors_origins;
mod duration;
mod encryption_key;
mod env;
mod optional;
mod password_regexp;
mod schema;
mod secret;

use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Toml};

pub use cors_origins::{CorsOrigins, normalise_origin};
pub use encryption_key::EncryptionKey;
pub use password_regexp::PasswordRegexp;
pub use schema::*;
pub use secret::Secret;

use env::TypedEnv;

/// The defaults, embedded so that the file and the binary can never disagree.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

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
            .merge(TypedEnv(barong_env::provider()))
            .merge(barong_env::rabbitmq_provider())
            .merge(TypedEnv(env::provider()));
        let mut settings = Self::from_figment(figment)?;
        settings.warnings =
            env::warnings(std::env::vars_os().filter_map(|(name, _)| name.into_string().ok()));
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

    /// The rules between fields; each value on its own was checked as it was parsed.
    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        if self.cors.origins.any() && self.cors.allow_credentials {
            return fail(
                "cors.origins",
                "allow_credentials cannot be combined with the origin \"*\" \
                 (browsers refuse it; list the origins)",
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
        if self.session.expire_time.is_zero() || self.session.lifetime < self.session.expire_time {
            return fail(
                "session.lifetime",
                "must be at least session.expire_time, which must be positive",
            );
        }
        if self.redis.cluster && self.redis.sentinel_master.is_some() {
            return fail(
                "redis.cluster",
                "Redis Cluster and Redis Sentinel exclude each other: set one of redis.cluster and redis.sentinel_master",
            );
        }
        if !self.redis.cluster
            && self.redis.sentinel_master.is_none()
            && self.redis.url.expose().contains(',')
        {
            return fail(
                "redis.url",
                "several URLs need redis.cluster = true (seed nodes) or redis.sentinel_master (sentinels)",
            );
        }
        if self.uploads.min_size_bytes > self.uploads.max_size_bytes() {
            return fail(
                "uploads.min_size_bytes",
                "must not exceed uploads.max_size_mb",
            );
        }
        if self.uploads.storage == StorageKind::Aws && self.uploads.bucket.is_empty() {
            return fail("uploads.bucket", "must be set when uploads.storage = aws");
        }
        if self.phones.verification != PhoneVerification::Mock
            && (self.phones.twilio_account_sid.is_empty()
                || self.phones.twilio_auth_token.is_none())
        {
            return fail(
                "phones.verification",
                "twilio_sms and twilio_verify need phones.twilio_account_sid and phones.twilio_auth_token",
            );
        }
        self.validate_routes()
    }

    /// Each route on its own, checked here rather than while parsing because the message must
    /// name the entry (`routes[1].upstream`) and a parse error's path does not carry the index.
    fn validate_routes(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
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
            if let Some(path) = &route.health_check
                && (!path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err())
            {
                return fail(
                    &format!("{key}.health_check"),
                    "must be a path starting with '/'",
                );
            }
            if route.health_interval.is_zero() {
                return fail(
                    &format!("{key}.health_interval"),
                    "must be at least one second",
                );
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
            let mut names: Vec<String> =
                barong_env::set_names_for(&key).map(String::from).collect();
            let ours = format!(
                "{}{}",
                env::ENV_PREFIX,
                key.to_uppercase().replace('.', "__")
            );
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
#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let s = Settings::from_toml("").expect("defaults are valid");
        assert_eq!(s.session.cookie_name, "_barong_session");
        assert_eq!(s.session.expire_time, Duration::from_secs(1800));
        assert_eq!(s.api_keys.nonce_lifetime, Duration::from_millis(5000));
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
            timeout = 5
            "#,
        )
        .unwrap();
        assert_eq!(s.routes[0].upstream.list(), vec!["http://127.0.0.1:9000"]);
        assert_eq!(s.routes[1].upstream.list().len(), 2);
        assert_eq!(s.routes[0].timeout, Duration::from_secs(60));
        assert_eq!(s.routes[1].timeout, Duration::from_secs(5));
        assert_eq!(s.routes[0].health_check, None);
        assert_eq!(s.routes[0].health_interval, Duration::from_secs(5));
        let route = |extra: &str| {
            Settings::from_toml(&format!(
                "[[routes]]\nprefix = \"/p\"\nupstream = \"http://127.0.0.1:9000\"\n{extra}"
            ))
        };
        let checked = route("health_check = \"/health\"\nhealth_interval = 2").unwrap();
        assert_eq!(checked.routes[0].health_check.as_deref(), Some("/health"));
        let err = route("health_check = \"health\"").unwrap_err();
        assert!(err.0.contains("routes[0].health_check"), "{err}");
        let err = route("health_check = \"/h\"\nhealth_interval = 0").unwrap_err();
        assert!(err.0.contains("routes[0].health_interval"), "{err}");
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
        for (toml, named) in [
            (
                "[password]\nregexp = \"(\"",
                "password.regexp: does not compile",
            ),
            (
                "[encryption]\nkey = \"c2hvcnQ=\"",
                "encryption.key: must be the base64 of exactly 32 bytes",
            ),
            (
                "[cors]\norigins = \"exchange.example\"",
                "cors.origins: \"exchange.example\" is not an http(s) origin",
            ),
            ("[api]\nmount = \"api\"", "api.mount: must start with '/'"),
            (
                "[server]\nidle_timeout = 0",
                "server.idle_timeout: must be positive",
            ),
            (
                "[events]\nrabbitmq_url = \"http://h\"",
                "events.rabbitmq_url: must be an amqp:// or amqps:// URL",
            ),
            (
                "[telemetry]\nmetrics_path = \"metrics\"",
                "telemetry.metrics_path: must start with '/' or be empty",
            ),
        ] {
            let err = Settings::from_toml(toml).unwrap_err();
            assert!(err.0.contains(named), "{toml}: {err}");
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type
    fn a_bad_value_from_the_environment_names_the_variable() {
        figment::Jail::expect_with(|jail| {
            for (variable, value, named) in [
                (
                    "BARONG_PASSWORD_REGEXP",
                    "(",
                    "password.regexp: does not compile",
                ),
                (
                    "PORTCULLIS_ENCRYPTION__KEY",
                    "c2hvcnQ=",
                    "encryption.key: must be the base64",
                ),
                (
                    "BARONG_APIKEY_NONCE_LIFETIME",
                    "soon",
                    "api_keys.nonce_lifetime_ms: invalid type",
                ),
                (
                    "BARONG_API_CORS_ORIGINS",
                    "exchange.example",
                    "cors.origins: \"exchange.example\" is not",
                ),
            ] {
                jail.clear_env();
                jail.set_env(variable, value);
                let err = Settings::load(None).unwrap_err().0;
                assert!(
                    err.contains(named) && err.contains(&format!("(from {variable})")),
                    "{variable}: {err}"
                );
            }
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn durations_keep_the_units_operators_write() {
        let s = Settings::from_toml(
            "[session]\nexpire_time = 900\n[database]\ntimeout_ms = 250\n\
             [cache]\npolicy_debounce_ms = 7\n[server]\nshutdown_grace = 3",
        )
        .unwrap();
        assert_eq!(s.session.expire_time, Duration::from_secs(900));
        assert_eq!(s.database.timeout, Duration::from_millis(250));
        assert_eq!(s.cache.policy_debounce, Duration::from_millis(7));
        assert_eq!(s.server.shutdown_grace, Duration::from_secs(3));
        assert_eq!(s.rate_limits.login_per_ip.window, Duration::from_secs(60));
        figment::Jail::expect_with(|jail| {
            jail.set_env("BARONG_APIKEY_NONCE_LIFETIME", "1500");
            jail.set_env("BARONG_JWT_EXPIRE_TIME", "120");
            jail.set_env("PORTCULLIS_CAPTCHA__TIMEOUT_MS", "40");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.api_keys.nonce_lifetime, Duration::from_millis(1500));
            assert_eq!(s.jwt.expire_time, Duration::from_secs(120));
            assert_eq!(s.captcha.timeout, Duration::from_millis(40));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn empty_and_absent_both_mean_off() {
        let off = |s: &Settings| {
            [
                s.geoip.database_path.is_none(),
                s.jwt.private_key_path.is_none(),
                s.encryption.key.is_none(),
                s.kyc.kycaid_authorization_token.is_none(),
                !s.auth0.enabled(),
                s.auth0.jwks_url.is_none(),
                s.mail.smtp_user.is_none(),
                s.database.tls_ca_file.is_none(),
                s.redis.tls_ca_file.is_none(),
            ]
        };
        // Absent from the operator's file: the defaults' "" apply.
        let defaults = Settings::from_toml("").unwrap();
        assert_eq!(off(&defaults), [true; 9]);
        // Set to "" explicitly, in a file: still off.
        let explicit = Settings::from_toml(
            "[geoip]\ndatabase_path = \"\"\n[jwt]\nprivate_key_path = \"\"\n\
             [encryption]\nkey = \"\"\n[kyc]\nkycaid_authorization_token = \"\"\n\
             [auth0]\ndomain = \"\"\njwks_url = \"\"\n[telemetry]\nmetrics_path = \"\"\n\
             [mail]\nsmtp_user = \"\"\n[database]\ntls_ca_file = \"\"\n[redis]\ntls_ca_file = \"\"",
        )
        .unwrap();
        assert_eq!(off(&explicit), [true; 9]);
        // Metrics are on by default; "" turns them off.
        assert_eq!(defaults.telemetry.metrics_path.as_deref(), Some("/metrics"));
        assert_eq!(explicit.telemetry.metrics_path, None);
        figment::Jail::expect_with(|jail| {
            jail.set_env("BARONG_MAXMINDDB_PATH", "");
            jail.set_env("JWT_PRIVATE_KEY_PATH", "");
            jail.set_env("BARONG_AUTH0_DOMAIN", "");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert!(s.geoip.database_path.is_none());
            assert!(s.jwt.private_key_path.is_none());
            assert!(!s.auth0.enabled());
            jail.set_env("BARONG_MAXMINDDB_PATH", "/geo/country.mmdb");
            jail.set_env("JWT_PRIVATE_KEY_PATH", "/keys/jwt.pem");
            jail.set_env("BARONG_AUTH0_DOMAIN", "tenant.auth0.com");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(
                s.geoip.database_path,
                Some(PathBuf::from("/geo/country.mmdb"))
            );
            assert_eq!(s.jwt.private_key_path, Some(PathBuf::from("/keys/jwt.pem")));
            assert!(s.auth0.enabled());
            assert_eq!(
                s.auth0.jwks_url(),
                "https://tenant.auth0.com/.well-known/jwks.json"
            );
            Ok(())
        });
    }

    #[test]
    fn settings_debug_prints_no_secret() {
        let key = EncryptionKey::new([42; 32]);
        let s = Settings::from_toml(&format!(
            r#"
            [database]
            url = "postgres://app:db-pass-1@127.0.0.1/portcullis"
            [redis]
            url = "redis://:redis-pass-2@127.0.0.1/1"
            [events]
            rabbitmq_url = "amqp://guest:rabbit-pass-3@127.0.0.1:5672/%2f"
            [mail]
            smtp_password = "smtp-pass-4"
            [captcha]
            recaptcha_secret_key = "recaptcha-secret-5"
            geetest_key = "geetest-key-6"
            [kyc]
            kycaid_authorization_token = "kycaid-token-7"
            [encryption]
            key = "{}"
            "#,
            key.to_base64()
        ))
        .unwrap();
        assert_eq!(s.mail.smtp_password.expose(), "smtp-pass-4");
        assert_eq!(s.encryption.key.as_ref(), Some(&key));
        let printed = format!("{s:?}");
        for secret in [
            "db-pass-1",
            "redis-pass-2",
            "rabbit-pass-3",
            "smtp-pass-4",
            "recaptcha-secret-5",
            "geetest-key-6",
            "kycaid-token-7",
            key.to_base64().as_str(),
        ] {
            assert!(!printed.contains(secret), "{secret} printed in {printed}");
        }
        assert!(printed.contains("smtp_password: ***"), "{printed}");
    }

    #[test]
    fn the_password_rule_is_compiled_once_while_parsing() {
        let s = Settings::from_toml("[password]\nregexp = \"^[a-z]{3}$\"").unwrap();
        assert_eq!(s.password.regexp.as_str(), "^[a-z]{3}$");
        assert!(s.password.regexp.regex().is_match("abc").unwrap());
        assert!(!s.password.regexp.regex().is_match("abcd").unwrap());
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
    fn cors_credentials_need_listed_origins() {
        let err =
            Settings::from_toml("[cors]\norigins = \"*\"\nallow_credentials = true").unwrap_err();
        assert!(
            err.0.starts_with("cors.origins: allow_credentials"),
            "{err}"
        );
        let s = Settings::from_toml(
            "[cors]\norigins = \"https://a.example\"\nallow_credentials = true",
        )
        .unwrap();
        assert!(s.cors.origins.lists("https://a.example"));
    }

    #[test]
    fn twilio_providers_need_an_account_and_a_token() {
        for kind in ["twilio_sms", "twilio_verify"] {
            for extra in [
                "",
                "twilio_account_sid = \"AC1\"\n",
                "twilio_auth_token = \"t\"\n",
            ] {
                let err =
                    Settings::from_toml(&format!("[phones]\nverification = \"{kind}\"\n{extra}"))
                        .unwrap_err();
                assert!(err.0.starts_with("phones.verification: "), "{err}");
            }
            let s = Settings::from_toml(&format!(
                "[phones]\nverification = \"{kind}\"\ntwilio_account_sid = \"AC1\"\ntwilio_auth_token = \"t\""
            ))
            .unwrap();
            assert!(
                !format!("{s:?}").contains("\"t\""),
                "the token is not printed"
            );
        }
        let s = Settings::from_toml("").unwrap();
        assert_eq!(s.phones.verification, PhoneVerification::Mock);
        assert_eq!(s.phones.code_lifetime, Duration::from_secs(600));
        assert_eq!(s.phones.twilio_service_sid, None);
        assert!(Settings::from_toml("[phones]\nverification = \"carrier_pigeon\"").is_err());
    }

    #[test]
    fn redis_modes_are_one_at_a_time_and_a_url_list_needs_one() {
        let s = Settings::from_toml("").unwrap();
        assert!(!s.redis.cluster && s.redis.sentinel_master.is_none());
        let s = Settings::from_toml("[redis]\nurl = \"redis://a:1,redis://b:2\"\ncluster = true")
            .unwrap();
        assert!(s.redis.cluster);
        let s = Settings::from_toml(
            "[redis]\nurl = \"redis://a:26379,redis://b:26379\"\nsentinel_master = \"m\"",
        )
        .unwrap();
        assert_eq!(s.redis.sentinel_master.as_deref(), Some("m"));
        let both =
            Settings::from_toml("[redis]\ncluster = true\nsentinel_master = \"m\"").unwrap_err();
        assert!(both.0.contains("redis.cluster"), "{}", both.0);
        let list = Settings::from_toml("[redis]\nurl = \"redis://a:1,redis://b:2\"").unwrap_err();
        assert!(list.0.contains("redis.url"), "{}", list.0);
    }

    #[test]
    fn kyc_callback_limits_are_checked() {
        let err =
            Settings::from_toml("[rate_limits]\nkyc_callback_per_ip = { max = 0, window = 60 }")
                .unwrap_err();
        assert!(
            err.0
                .contains("rate_limits.kyc_callback_per_ip: max and window must be positive"),
            "{err}"
        );
        for bytes in [0, MAX_KYC_CALLBACK_BYTES + 1] {
            let err =
                Settings::from_toml(&format!("[kyc]\ncallback_max_bytes = {bytes}")).unwrap_err();
            assert!(
                err.0.contains("kyc.callback_max_bytes: must be 1 to"),
                "{err}"
            );
        }
    }
}
