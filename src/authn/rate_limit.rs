//! Rate limits shared by every node: fixed-window counters in Redis.
//! One script call per check: increment, start the window on the first hit, report the rest.

use std::sync::LazyLock;

use crate::config::Limit;
use crate::kv::{Kv, KvError};

static HIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local n = redis.call('INCR', KEYS[1])
        local ttl = redis.call('TTL', KEYS[1])
        if n == 1 or ttl < 0 then
            redis.call('EXPIRE', KEYS[1], ARGV[1])
            ttl = tonumber(ARGV[1])
        end
        return {n, ttl}
        ",
    )
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateVerdict {
    Allowed,
    /// Over the limit; retry after this many seconds.
    Limited {
        retry_after: u64,
    },
}

#[derive(Clone)]
pub struct RateLimiter {
    kv: Kv,
}

impl RateLimiter {
    pub fn new(kv: Kv) -> RateLimiter {
        RateLimiter { kv }
    }

    /// Counts one event for (`name`, `subject`) and says whether it is within `limit`.
    /// The subject is hashed: emails and addresses do not appear in Redis keys.
    pub async fn hit(
        &self,
        name: &str,
        subject: &str,
        limit: Limit,
    ) -> Result<RateVerdict, KvError> {
        let key = self.kv.key(&format!(
            "rate:{name}:{}",
            &crate::crypto::sha256_hex(subject.as_bytes())[..32]
        ));
        let (count, ttl): (i64, i64) = self
            .kv
            .eval(&HIT, &[&key], &[limit.window.as_secs() as i64])
            .await?;
        if count > limit.max as i64 {
            metrics::counter!("portcullis_rate_limited_total", "limit" => name.to_string())
                .increment(1);
            Ok(RateVerdict::Limited {
                retry_after: ttl.max(1) as u64,
            })
        } else {
            Ok(RateVerdict::Allowed)
        }
    }
}
