//! `password.regexp` (BARONG_PASSWORD_REGEXP): compiled once, when the settings are read, with
//! fancy_regex (Barong's default uses look-ahead, which the `regex` crate lacks). The source is
//! kept too: `/configs` shows it to front ends.

use serde::Deserialize;

/// A compiled password rule and the text it came from.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct PasswordRegexp {
    source: String,
    regex: fancy_regex::Regex,
}

impl PasswordRegexp {
    /// The text as configured.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn regex(&self) -> &fancy_regex::Regex {
        &self.regex
    }
}

impl TryFrom<String> for PasswordRegexp {
    type Error = String;
    fn try_from(source: String) -> Result<PasswordRegexp, String> {
        let regex =
            fancy_regex::Regex::new(&source).map_err(|e| format!("does not compile: {e}"))?;
        Ok(PasswordRegexp { source, regex })
    }
}

impl std::fmt::Debug for PasswordRegexp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.source, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_once_and_keeps_the_source() {
        let r = PasswordRegexp::try_from("^(?=.*\\d).{4,}$".to_string()).unwrap();
        assert_eq!(r.as_str(), "^(?=.*\\d).{4,}$");
        assert!(r.regex().is_match("abc1").unwrap());
        assert!(!r.regex().is_match("abcd").unwrap());
        let err = PasswordRegexp::try_from("(".to_string()).unwrap_err();
        assert!(err.starts_with("does not compile"), "{err}");
    }
}
