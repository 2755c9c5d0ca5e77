//! Our own environment variables, `PORTCULLIS_<SECTION>__<KEY>`: which names are settings (the
//! sections come from the compiled-in defaults), warnings for names that look like misspelt
//! settings, and the provider that types each value by its default (text stays text).

use figment::providers::Env;

use super::DEFAULT_TOML;

/// The sections of the settings and the keys of each, as the compiled-in defaults list them.
pub(super) fn layout() -> &'static std::collections::BTreeMap<String, Vec<String>> {
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

pub(super) const ENV_PREFIX: &str = "PORTCULLIS_";

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
pub(super) fn provider() -> Env {
    Env::raw()
        .filter_map(|name| setting_name(name.as_str()).map(|rest| rest.to_string().into()))
        .split("__")
}

/// Warnings for `PORTCULLIS_*` variables that are not settings but look like misspelt ones
/// (`PORTCULLIS_SESSION_EXPIRE_TIME`, `PORTCULLIS_SESION__EXPIRE_TIME`). Anything else is
/// silently someone else's.
pub(super) fn warnings(names: impl Iterator<Item = String>) -> Vec<String> {
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
pub(super) struct TypedEnv(pub(super) Env);

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
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::config::Settings;
    use ipnet::IpNet;

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
            assert_eq!(s.session.expire_time, Duration::from_secs(900));
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
            // Misspelt settings are ignored too, but said.
            jail.set_env("PORTCULLIS_SESSION_EXPIRE_TIME", "60");
            jail.set_env("PORTCULLIS_SESION__EXPIRE_TIME", "60");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.session.expire_time, Duration::from_secs(900));
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
            assert_eq!(s.mail.smtp_password.expose(), "123456");
            assert_eq!(s.auth0.client_id, "0042");
            assert_eq!(s.app.name, "true");
            assert_eq!(s.session.expire_time, Duration::from_secs(900));
            assert_eq!(s.rate_limits.login_per_ip.max, 3);
            Ok(())
        });
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
}
