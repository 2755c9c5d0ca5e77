//! Redis: the state every node shares for a short while — sessions, nonces, rate-limit
//! counters, one-time markers. Every call is bounded by the configured timeout, and any
//! failure is reported as [`KvError`] so that callers fail closed. One server, a Redis
//! Cluster or a Sentinel-watched master ([`topology`]); callers see no difference, except that
//! keys one command or script touches together must share a hash tag (`{…}`) for a cluster.

mod cluster;
mod sentinel;
mod topology;

use std::time::Duration;

use redis::AsyncCommands;

use self::topology::{Conn, Subscriber};

#[derive(Debug)]
pub struct KvError(pub String);

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redis unavailable: {}", self.0)
    }
}

impl std::error::Error for KvError {}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            super::redact_url("redis://:s3cret@redis:6379/1"),
            "redis://:***@redis:6379/1"
        );
        assert_eq!(
            super::redact_url("redis://user:s3cret@redis/1"),
            "redis://user:***@redis/1"
        );
        assert_eq!(
            super::redact_url("redis://token@redis/1"),
            "redis://***@redis/1"
        );
        assert_eq!(
            super::redact_url("redis://127.0.0.1:6379/1"),
            "redis://127.0.0.1:6379/1"
        );
    }

    fn settings(url: &str, password: Option<&str>) -> crate::config::Redis {
        crate::config::Redis {
            url: crate::config::Secret::new(url),
            cluster: false,
            sentinel_master: None,
            password: password.map(crate::config::Secret::new),
            tls_ca_file: None,
            key_prefix: "t:".into(),
            timeout: std::time::Duration::from_millis(500),
        }
    }

    #[test]
    fn the_password_setting_fills_a_url_without_one_and_never_overrides_it() {
        let info = |url: &str, password: Option<&str>| {
            let settings = settings(url, password);
            super::topology::connection_info(url, settings.password.as_ref()).unwrap()
        };
        let password = |url, password| {
            info(url, password)
                .redis_settings()
                .password()
                .map(str::to_string)
        };
        assert_eq!(password("redis://127.0.0.1:6379/1", None), None);
        assert_eq!(
            password("redis://127.0.0.1:6379/1", Some("barong")),
            Some("barong".into())
        );
        assert_eq!(
            password("redis://:own@127.0.0.1:6379/1", Some("barong")),
            Some("own".into())
        );
        assert_eq!(
            info("redis://127.0.0.1:6379/3", Some("barong"))
                .redis_settings()
                .db(),
            3
        );
        assert!(super::topology::connection_info("nonsense", None).is_err());
    }
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_string()
            };
            format!("{scheme}://{hidden}@{host}{path}")
        }
        None => url.to_string(),
    }
}

/// A namespaced, time-bounded Redis handle. Cheap to clone.
#[derive(Clone)]
pub struct Kv {
    conn: Conn,
    /// For connections of their own (a subscription holds its connection).
    subscriber: Subscriber,
    prefix: String,
    timeout: Duration,
}

impl Kv {
    /// Connects in the mode `settings` choose: `rediss://` is TLS, the server's certificate
    /// verified against `settings.tls_ca_file` (or the system's trusted roots).
    pub async fn connect(settings: &crate::config::Redis) -> anyhow::Result<Kv> {
        let (mut conn, subscriber) = topology::connect(settings).await?;
        // The connection opens without a command that needs rights: a missing or wrong password
        // (NOAUTH, WRONGPASS) would only show as every decision failing closed.
        let target = topology::urls(settings)
            .iter()
            .map(|url| redact_url(url))
            .collect::<Vec<_>>()
            .join(",");
        topology::at_start(&target, redis::cmd("PING").query_async::<String>(&mut conn)).await?;
        Ok(Kv {
            conn,
            subscriber,
            prefix: settings.key_prefix.clone(),
            timeout: settings.timeout,
        })
    }

    /// The full key for `suffix`, inside this node's namespace.
    pub fn key(&self, suffix: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + suffix.len());
        key.push_str(&self.prefix);
        key.push_str(suffix);
        key
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, KvError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                metrics::counter!("portcullis_redis_errors_total").increment(1);
                Err(KvError(err.to_string()))
            }
            Err(_) => {
                metrics::counter!("portcullis_redis_errors_total").increment(1);
                Err(KvError("timed out".into()))
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        let mut conn = self.conn.clone();
        self.bounded(conn.get(key)).await
    }

    pub async fn set_ex(&self, key: &str, value: &str, ttl_secs: u64) -> Result<(), KvError> {
        let mut conn = self.conn.clone();
        self.bounded(conn.set_ex(key, value, ttl_secs.max(1))).await
    }

    /// Sets only when the key exists (never resurrects a deleted key); true when set.
    pub async fn set_xx_ex(&self, key: &str, value: &str, ttl_secs: u64) -> Result<bool, KvError> {
        self.set_if(key, value, "XX", "EX", ttl_secs).await
    }

    /// Sets only when absent, with a TTL in milliseconds; true when this call set it.
    pub async fn set_nx_px(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, KvError> {
        self.set_if(key, value, "NX", "PX", ttl_ms).await
    }

    /// `SET key value <condition> <ttl_unit> ttl`; true when the condition held and it was set.
    async fn set_if(
        &self,
        key: &str,
        value: &str,
        condition: &str,
        ttl_unit: &str,
        ttl: u64,
    ) -> Result<bool, KvError> {
        let mut conn = self.conn.clone();
        let reply: Option<String> = self
            .bounded(
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg(condition)
                    .arg(ttl_unit)
                    .arg(ttl.max(1))
                    .query_async(&mut conn),
            )
            .await?;
        Ok(reply.is_some())
    }

    pub async fn del(&self, keys: &[String]) -> Result<u64, KvError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        self.bounded(conn.del(keys)).await
    }

    /// Adds `member` to the set at `key` and (re)sets the set's TTL, atomically.
    pub async fn sadd_expire(&self, key: &str, member: &str, ttl_secs: u64) -> Result<(), KvError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .sadd(key, member)
            .ignore()
            .expire(key, ttl_secs.max(1) as i64)
            .ignore();
        self.bounded(pipe.query_async(&mut conn)).await
    }

    pub async fn srem(&self, key: &str, member: &str) -> Result<(), KvError> {
        let mut conn = self.conn.clone();
        self.bounded(conn.srem(key, member)).await
    }

    pub async fn smembers(&self, key: &str) -> Result<Vec<String>, KvError> {
        let mut conn = self.conn.clone();
        self.bounded(conn.smembers(key)).await
    }

    /// Every key of this namespace that matches `pattern` (a suffix glob), by SCAN (of every
    /// primary, in a cluster).
    pub async fn scan(&self, pattern: &str) -> Result<Vec<String>, KvError> {
        let mut conn = self.conn.clone();
        let full = self.key(pattern);
        let mut keys = Vec::new();
        for target in self.bounded(conn.scan_targets()).await? {
            let mut cursor: u64 = 0;
            loop {
                let scan = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&full)
                    .arg("COUNT")
                    .arg(1000)
                    .clone();
                let (next, batch): (u64, Vec<String>) =
                    self.bounded(conn.query_on(&target, &scan)).await?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(keys)
    }

    /// Runs a Lua script (EVALSHA, loading it on first use).
    pub async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[i64],
    ) -> Result<T, KvError> {
        let mut conn = self.conn.clone();
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        self.bounded(invocation.invoke_async(&mut conn)).await
    }

    /// Publishes `message` on this namespace's `channel`.
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), KvError> {
        let mut conn = self.conn.clone();
        let _receivers: i64 = self
            .bounded(conn.publish(self.key(channel), message))
            .await?;
        Ok(())
    }

    /// Subscribes to this namespace's `channel` on a connection of its own: the messages, as
    /// text, until the connection is lost (the stream then ends; subscribe again).
    pub async fn subscribe(
        &self,
        channel: &str,
    ) -> Result<impl futures_util::Stream<Item = String> + Send + use<>, KvError> {
        let connect = async {
            let mut pubsub = self.subscriber.pubsub().await?;
            pubsub.subscribe(self.key(channel)).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub =
            match tokio::time::timeout(self.timeout.max(Duration::from_secs(1)), connect).await {
                Ok(Ok(pubsub)) => pubsub,
                Ok(Err(err)) => return Err(KvError(err.to_string())),
                Err(_) => return Err(KvError("timed out".into())),
            };
        use futures_util::StreamExt;
        Ok(pubsub
            .into_on_message()
            .filter_map(|message| async move { message.get_payload::<String>().ok() }))
    }

    pub async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        self.bounded(redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .is_ok()
    }
}
