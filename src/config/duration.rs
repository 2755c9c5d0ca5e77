//! Durations as operators write them: bare integers, in the unit the setting's name or comment
//! gives (`expire_time = 1800` seconds, `timeout_ms = 2000` milliseconds), in files and in
//! environment variables alike (`BARONG_APIKEY_NONCE_LIFETIME=5000` stays milliseconds).
//!
//! Each function is a `#[serde(deserialize_with = …)]` that turns the integer into a
//! [`Duration`] at parse time, so no consumer has to remember the unit. The `positive_*` forms
//! refuse 0 where 0 would disable the thing the setting bounds.

use std::time::Duration;

use serde::de::{Deserialize, Deserializer, Error};

/// Whole seconds.
pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// Milliseconds.
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// Whole seconds, at least one.
pub fn positive_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    positive(seconds(d)?)
}

fn positive<E: Error>(duration: Duration) -> Result<Duration, E> {
    if duration.is_zero() {
        return Err(E::custom("must be positive"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "seconds")]
        s: Duration,
        #[serde(deserialize_with = "millis")]
        ms: Duration,
    }

    #[test]
    fn integers_keep_their_unit() {
        let p: Probe = toml::from_str("s = 1800\nms = 5000").unwrap();
        assert_eq!(p.s, Duration::from_secs(1800));
        assert_eq!(p.ms, Duration::from_millis(5000));
    }

    #[test]
    fn zero_is_refused_where_it_must_be_positive() {
        #[derive(Debug, serde::Deserialize)]
        struct Positive {
            #[serde(deserialize_with = "positive_seconds")]
            #[allow(dead_code)] // only its parsing is tested
            s: Duration,
        }
        let err = toml::from_str::<Positive>("s = 0").unwrap_err();
        assert!(err.to_string().contains("must be positive"), "{err}");
        assert!(toml::from_str::<Positive>("s = 1").is_ok());
    }
}
