//! Barong's environment variable names, so a `barong.env` keeps working unchanged: the name map,
//! the provider that reads them into our keys, Barong's separate RabbitMQ variables, and the
//! reverse look-up an error message uses to name the variable that set a bad value.

use figment::providers::Env;

/// Barong's environment variable names, mapped onto our keys, so a `barong.env` keeps working.
const BARONG_ENV: &[(&str, &str)] = &[
    ("BARONG_APP_NAME", "app.name"),
    ("BARONG_DOMAIN", "app.domain"),
    ("BARONG_GATEWAY", "network.gateway"),
    ("DATABASE_URL", "database.url"),
    ("DATABASE_REPLICA_URL", "database.replica_url"),
    ("REDIS_URL", "redis.url"),
    ("BARONG_REDIS_URL", "redis.url"),
    ("BARONG_REDIS_PASSWORD", "redis.password"),
    ("BARONG_REDIS_CLUSTER", "redis.cluster"),
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
        "BARONG_PROFILE_DOUBLE_VERIFICATION",
        "kyc.profile_double_verification",
    ),
    (
        "BARONG_KYCAID_AUTHORIZATION_TOKEN",
        "kyc.kycaid_authorization_token",
    ),
    ("BARONG_KYCAID_API_ENDPOINT", "kyc.kycaid_api_endpoint"),
    ("BARONG_KYCAID_FORM_ID", "kyc.kycaid_form_id"),
    ("BARONG_KYCAID_SANDBOX_MODE", "kyc.kycaid_sandbox_mode"),
    ("BARONG_PHONE_VERIFICATION", "phones.verification"),
    (
        "BARONG_UPLOAD_EXTENSION_WHITELIST",
        "uploads.extension_whitelist",
    ),
    ("BARONG_UPLOAD_SIZE_MIN_RANGE", "uploads.min_size_bytes"),
    ("BARONG_UPLOAD_SIZE_MAX_RANGE", "uploads.max_size_mb"),
    ("BARONG_DOC_NUM_LIMIT", "uploads.doc_num_limit"),
    (
        "BARONG_REQUIRED_DOCS_EXPIRE",
        "uploads.required_docs_expire",
    ),
    ("BARONG_STORAGE_PROVIDER", "uploads.storage"),
    ("BARONG_STORAGE_BUCKET_NAME", "uploads.bucket"),
    ("BARONG_STORAGE_ENDPOINT", "uploads.endpoint"),
    ("BARONG_STORAGE_REGION", "uploads.region"),
    ("BARONG_STORAGE_ACCESS_KEY", "uploads.access_key_id"),
    ("BARONG_STORAGE_SECRET_KEY", "uploads.secret_access_key"),
    ("BARONG_STORAGE_PATHSTYLE", "uploads.path_style"),
    ("BARONG_TWILIO_ACCOUNT_SID", "phones.twilio_account_sid"),
    ("BARONG_TWILIO_AUTH_TOKEN", "phones.twilio_auth_token"),
    ("BARONG_TWILIO_PHONE_NUMBER", "phones.twilio_phone_number"),
    ("BARONG_TWILIO_SERVICE_SID", "phones.twilio_service_sid"),
    ("BARONG_SMS_CONTENT_TEMPLATE", "phones.sms_content_template"),
    ("BARONG_API_CORS_ORIGINS", "cors.origins"),
    ("BARONG_API_CORS_MAX_AGE", "cors.max_age"),
    (
        "BARONG_API_CORS_ALLOW_CREDENTIALS",
        "cors.allow_credentials",
    ),
];
/// Reads Barong's variable names (and the usual DATABASE_URL, REDIS_URL) into our keys.
pub(super) fn provider() -> Env {
    Env::raw().filter_map(|name| {
        BARONG_ENV
            .iter()
            .find(|(env, _)| name == *env)
            .map(|(_, key)| (*key).into())
    })
}
/// Barong's separate RabbitMQ variables, assembled into `events.rabbitmq_url` (unless
/// EVENT_API_RABBITMQ_URL, which wins, is set).
pub(super) fn rabbitmq_provider()
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
/// The Barong variables that map onto `key` (`section.key`) and are set.
pub(super) fn set_names_for(key: &str) -> impl Iterator<Item = &'static str> {
    BARONG_ENV
        .iter()
        .filter(move |(env, k)| *k == key && std::env::var_os(env).is_some())
        .map(|(env, _)| *env)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Settings, env};
    use super::*;

    #[test]
    fn every_barong_name_maps_onto_a_setting_that_exists() {
        for (name, key) in BARONG_ENV {
            let (section, field) = key.split_once('.').expect("section.key");
            let fields = env::layout().get(section);
            assert!(
                fields.is_some_and(|f| f.iter().any(|k| k == field)),
                "{name} -> {key}"
            );
        }
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
            assert_eq!(s.session.expire_time, Duration::from_secs(900));
            assert!(!s.session.csrf_protection);
            assert_eq!(s.redis.key_prefix, "x:");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_redis_password_and_cluster_flag_are_read_from_barongs_variables() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert!(s.redis.password.is_none());
            jail.set_env("BARONG_REDIS_PASSWORD", "redis-secret-pass");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(
                s.redis.password.as_ref().map(|p| p.expose()),
                Some("redis-secret-pass")
            );
            assert!(!format!("{s:?}").contains("redis-secret-pass"));
            assert!(!s.redis.cluster);
            jail.set_env("BARONG_REDIS_CLUSTER", "true");
            assert!(Settings::load(None).map_err(|e| e.0)?.redis.cluster);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_kycaid_token_is_read_from_barongs_variable_and_never_printed() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert!(s.kyc.refuses_every_callback());
            assert!(format!("{s:?}").contains("kycaid_authorization_token: None"));
            jail.set_env("BARONG_KYCAID_AUTHORIZATION_TOKEN", "kycaid-secret-token");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(
                s.kyc
                    .kycaid_authorization_token
                    .as_ref()
                    .map(|t| t.expose()),
                Some("kycaid-secret-token")
            );
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
    #[allow(clippy::result_large_err)]
    fn barongs_kycaid_api_variables_are_read() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.kyc.kycaid_api_endpoint, "https://api.kycaid.com/");
            assert_eq!(s.kyc.kycaid_form_id, "");
            assert!(s.kyc.kycaid_sandbox_mode);
            assert!(!s.kyc.submits_to_kycaid());
            jail.set_env("BARONG_KYCAID_API_ENDPOINT", "http://127.0.0.1:9/");
            jail.set_env("BARONG_KYCAID_FORM_ID", "form-17");
            jail.set_env("BARONG_KYCAID_SANDBOX_MODE", "false");
            jail.set_env("BARONG_KYCAID_AUTHORIZATION_TOKEN", "kycaid-secret-token");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.kyc.kycaid_api_endpoint, "http://127.0.0.1:9/");
            assert_eq!(s.kyc.kycaid_form_id, "form-17");
            assert!(!s.kyc.kycaid_sandbox_mode);
            assert!(s.kyc.submits_to_kycaid());
            Ok(())
        });
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
            assert!(s.cors.origins.lists("https://a.example"));
            assert!(s.cors.origins.lists("https://b.example"));
            assert!(!s.cors.origins.any());
            assert_eq!(s.cors.max_age, Duration::from_secs(60));
            assert!(s.cors.allow_credentials);
            jail.set_env("BARONG_API_CORS_ORIGINS", "*");
            let err = Settings::load(None).unwrap_err().0;
            assert!(err.starts_with("cors.origins: allow_credentials"), "{err}");
            Ok(())
        });
    }
}
