//! Settings that may be off. The files and Barong's environment say "off" with an empty string
//! (`BARONG_MAXMINDDB_PATH=`, `private_key_path = ""`); the schema says it with `None`, so no
//! consumer tests for `""`.
//!
//! Use as `#[serde(default, deserialize_with = "optional::empty_is_none")]`: absent and `""`
//! are both `None`, anything else is parsed into the field's type and may fail, naming the
//! setting.

use serde::de::{Deserialize, Deserializer, Error};

/// `None` for `""`; otherwise the text converted into `T`.
pub fn empty_is_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    let text = String::deserialize(d)?;
    if text.is_empty() {
        return Ok(None);
    }
    T::try_from(text).map(Some).map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "empty_is_none")]
        path: Option<PathBuf>,
    }

    #[test]
    fn empty_and_absent_are_none() {
        let parse = |text| toml::from_str::<Probe>(text).unwrap().path;
        assert_eq!(parse(""), None);
        assert_eq!(parse("path = \"\""), None);
        assert_eq!(parse("path = \"/x.mmdb\""), Some(PathBuf::from("/x.mmdb")));
    }
}
