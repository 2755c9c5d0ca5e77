//! One-field rules, applied while a value is parsed (`#[serde(deserialize_with = …)]`), so a
//! bad value fails the start with the setting's name and the variable that set it, and the rest
//! of the code holds only values that passed. Rules between fields are in `Settings::validate`.

use serde::de::{Deserialize, Deserializer, Error};

use super::Secret;

/// A route prefix such as `/api/v2/auth`: starts with '/' and does not end with one.
pub fn path_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let prefix = String::deserialize(d)?;
    if !prefix.starts_with('/') || (prefix.len() > 1 && prefix.ends_with('/')) {
        return Err(D::Error::custom("must start with '/' and not end with '/'"));
    }
    Ok(prefix)
}

/// A count that must be above zero.
pub fn positive<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default + PartialOrd,
{
    let value = T::deserialize(d)?;
    if value <= T::default() {
        return Err(D::Error::custom("must be positive"));
    }
    Ok(value)
}

/// RabbitMQ's URL: `amqp://` or `amqps://`. A secret, as it carries the password.
pub fn amqp_url<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    let url = Secret::deserialize(d)?;
    if !url.expose().starts_with("amqp://") && !url.expose().starts_with("amqps://") {
        return Err(D::Error::custom("must be an amqp:// or amqps:// URL"));
    }
    Ok(url)
}

/// An HTTP status in 400..=499.
pub fn status_4xx<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let status = u16::deserialize(d)?;
    if !(400..=499).contains(&status) {
        return Err(D::Error::custom("must be a 4xx status"));
    }
    Ok(status)
}

/// A cookie name: non-empty letters, digits, '_', '-', '.'.
pub fn cookie_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Err(D::Error::custom(
            "must be non-empty letters, digits, '_', '-', '.'",
        ));
    }
    Ok(name)
}

/// A fraction in (0, 1].
pub fn fraction<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(d)?;
    if !(value > 0.0 && value <= 1.0) {
        return Err(D::Error::custom("must be in (0, 1]"));
    }
    Ok(value)
}

/// Barong's uid prefix: 2 to 6 letters.
pub fn uid_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let prefix = String::deserialize(d)?;
    if !(2..=6).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(D::Error::custom("must be 2 to 6 letters"));
    }
    Ok(prefix)
}

/// `kyc.callback_max_bytes`: 1 to [`super::MAX_KYC_CALLBACK_BYTES`].
pub fn kyc_callback_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let bytes = usize::deserialize(d)?;
    if !(1..=super::MAX_KYC_CALLBACK_BYTES).contains(&bytes) {
        return Err(D::Error::custom(format!(
            "must be 1 to {}",
            super::MAX_KYC_CALLBACK_BYTES
        )));
    }
    Ok(bytes)
}

/// An optional HTTP path: `""` is off, anything else starts with '/'.
pub fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let path = String::deserialize(d)?;
    if path.is_empty() {
        return Ok(None);
    }
    if !path.starts_with('/') {
        return Err(D::Error::custom("must start with '/' or be empty"));
    }
    Ok(Some(path))
}

/// The extensions whose content `domain::documents` recognises (it checks each file's bytes
/// against its extension), so a whitelist cannot admit a type nothing could check.
pub const KNOWN_UPLOAD_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "pdf"];

/// The upload extension whitelist: a TOML list, or Barong's comma-separated text
/// (`jpg, jpeg, png, pdf`); lower-cased, without dots, each a known one, at least one.
pub fn upload_extensions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Listed {
        List(Vec<String>),
        Text(String),
    }
    let items = match Listed::deserialize(d)? {
        Listed::List(items) => items,
        Listed::Text(text) => text.split(',').map(str::to_string).collect(),
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let ext = item.trim().trim_start_matches('.').to_ascii_lowercase();
        if ext.is_empty() {
            continue;
        }
        if !KNOWN_UPLOAD_EXTENSIONS.contains(&ext.as_str()) {
            return Err(D::Error::custom(format!(
                "{ext:?} is not one of {KNOWN_UPLOAD_EXTENSIONS:?}"
            )));
        }
        if !out.contains(&ext) {
            out.push(ext);
        }
    }
    if out.is_empty() {
        return Err(D::Error::custom("must name at least one extension"));
    }
    Ok(out)
}

/// The largest upload in MiB: 1 to 100 (a file is held in memory while it is stored).
pub fn upload_max_mb<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let mb = usize::deserialize(d)?;
    if !(1..=100).contains(&mb) {
        return Err(D::Error::custom("must be 1 to 100 (MiB)"));
    }
    Ok(mb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T>(f: fn(toml::Value) -> Result<T, toml::de::Error>, text: &str) -> Result<T, String> {
        let value: toml::Table = toml::from_str(&format!("v = {text}")).unwrap();
        f(value["v"].clone()).map_err(|e| e.to_string())
    }

    #[test]
    fn each_rule_refuses_what_it_names() {
        assert!(parse(path_prefix, "\"/api\"").is_ok());
        assert!(parse(path_prefix, "\"/\"").is_ok());
        assert!(parse(path_prefix, "\"api\"").is_err());
        assert!(parse(path_prefix, "\"/api/\"").is_err());
        assert!(parse(positive::<_, usize>, "1").is_ok());
        assert!(parse(positive::<_, usize>, "0").is_err());
        assert!(parse(positive::<_, i64>, "-1").is_err());
        assert!(parse(amqp_url, "\"amqps://h\"").is_ok());
        assert!(parse(amqp_url, "\"http://h\"").is_err());
        assert!(parse(status_4xx, "403").is_ok());
        assert!(parse(status_4xx, "503").is_err());
        assert!(parse(cookie_name, "\"__Host-s\"").is_ok());
        assert!(parse(cookie_name, "\"a b\"").is_err());
        assert!(parse(fraction, "1.0").is_ok());
        assert!(parse(fraction, "0.0").is_err());
        assert!(parse(uid_prefix, "\"ID\"").is_ok());
        assert!(parse(uid_prefix, "\"X1\"").is_err());
        assert!(parse(kyc_callback_bytes, "0").is_err());
        assert_eq!(parse(optional_path, "\"\""), Ok(None));
        assert!(parse(optional_path, "\"metrics\"").is_err());
    }
}
