//! The gate's notion of now. Decisions take it as an argument, so that nonce windows, session
//! binding and renewal, and token reuse can be tested at a chosen instant.

/// An instant, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Now(i64);

impl Now {
    /// The system clock.
    pub fn system() -> Now {
        Now((time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub const fn from_unix_ms(ms: i64) -> Now {
        Now(ms)
    }

    pub const fn from_unix_secs(secs: i64) -> Now {
        Now(secs.saturating_mul(1000))
    }

    /// Milliseconds, as API-key nonces count.
    pub const fn unix_ms(self) -> i64 {
        self.0
    }

    /// Whole seconds (rounded down), as sessions and tokens count.
    pub const fn unix_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::Now;

    #[test]
    fn seconds_round_down_like_the_system_clock() {
        assert_eq!(Now::from_unix_ms(1_999).unix_secs(), 1);
        assert_eq!(Now::from_unix_ms(-1).unix_secs(), -1);
        assert_eq!(Now::from_unix_secs(5).unix_ms(), 5_000);
        let now = Now::system();
        let secs = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((secs - now.unix_secs()).abs() <= 1);
    }
}
