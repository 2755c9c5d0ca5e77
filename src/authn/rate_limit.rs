//! Rate limits shared by every node: fixed-window counters in Redis.
//! One script call per check: increment, start the window on the first hit, report the rest.
//! [`RateLimiter::hit_or_lock`] adds a lock-out: past the limit, the subject is refused for a
//! fixed period however little it tries meanwhile (the Back Office's limits).

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

/// KEYS: counter, lock. ARGV: window, max, lock-out (seconds). A live lock refuses without
/// counting; the hit that passes `max` sets the lock and clears the counter. Both keys carry
/// one hash tag, so the script runs on one Redis Cluster slot.
static HIT_OR_LOCK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local locked = redis.call('TTL', KEYS[2])
        if locked > 0 then
            return {0, locked}
        end
        local n = redis.call('INCR', KEYS[1])
        if n == 1 or redis.call('TTL', KEYS[1]) < 0 then
            redis.call('EXPIRE', KEYS[1], ARGV[1])
        end
        if n > tonumber(ARGV[2]) then
            redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
            redis.call('DEL', KEYS[1])
            return {0, tonumber(ARGV[3])}
        end
        return {1, 0}
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

    /// The subject's part of a key: hashed, so that emails and addresses do not appear in
    /// Redis keys.
    fn digest(subject: &str) -> String {
        crate::crypto::sha256_hex(subject.as_bytes())[..32].to_string()
    }

    /// Counts one event for (`name`, `subject`) and says whether it is within `limit`.
    pub async fn hit(
        &self,
        name: &str,
        subject: &str,
        limit: Limit,
    ) -> Result<RateVerdict, KvError> {
        let key = self
            .kv
            .key(&format!("rate:{name}:{}", Self::digest(subject)));
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

    /// Counts one attempt for (`name`, `subject`); the attempt past `limit` locks the subject
    /// out for `lockout`, during which every attempt is refused (and not counted) with the
    /// lock's remaining seconds.
    pub async fn hit_or_lock(
        &self,
        name: &str,
        subject: &str,
        limit: Limit,
        lockout: std::time::Duration,
    ) -> Result<RateVerdict, KvError> {
        let tag = format!("{{{name}:{}}}", Self::digest(subject));
        let counter = self.kv.key(&format!("rate:{tag}"));
        let lock = self.kv.key(&format!("lock:{tag}"));
        let (allowed, retry_after): (i64, i64) = self
            .kv
            .eval(
                &HIT_OR_LOCK,
                &[&counter, &lock],
                &[
                    limit.window.as_secs() as i64,
                    i64::from(limit.max),
                    lockout.as_secs().max(1) as i64,
                ],
            )
            .await?;
        if allowed == 1 {
            return Ok(RateVerdict::Allowed);
        }
        metrics::counter!("portcullis_rate_limited_total", "limit" => name.to_string())
            .increment(1);
        Ok(RateVerdict::Limited {
            retry_after: retry_after.max(1) as u64,
        })
    }
}
