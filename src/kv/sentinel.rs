//! Redis Sentinel: the master the sentinels name, followed through failovers. A task asks the
//! sentinels every [`POLL`], and at once when a command fails in a way a failover explains
//! (connection lost or refused, timeout, `READONLY` from a demoted master); when they name
//! another master, a connection to it replaces the old one for every later command. Commands
//! in flight on the old master fail, and their callers fail closed.

use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::aio::ConnectionManager;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionInfo, RedisResult};
use tokio::sync::Notify;

use super::topology::{at_start, failover_suspected, manager_config};
use crate::config::Secret;

/// How often the sentinels are asked even when nothing failed: a failover that no command of
/// ours noticed (an idle node) is followed within this.
const POLL: Duration = Duration::from_secs(1);

/// The current master: a client (subscriptions open their own connections) and the shared,
/// reconnecting connection commands use.
struct Master {
    client: redis::Client,
    conn: ConnectionManager,
}

pub(in crate::kv) struct SentinelMaster {
    current: ArcSwap<Master>,
    /// Wakes the follower before its next poll.
    suspect: Arc<Notify>,
}

impl SentinelMaster {
    /// Asks `sentinels` for `master_name`'s master, connects to it, and follows it from then
    /// on. The master's password is `password` (the sentinels' own come in their URLs).
    pub(in crate::kv) async fn connect(
        sentinels: Vec<ConnectionInfo>,
        master_name: &str,
        password: Option<&Secret>,
        root_cert: Option<Vec<u8>>,
        timeout: Duration,
    ) -> anyhow::Result<Arc<SentinelMaster>> {
        let first = sentinels
            .first()
            .ok_or_else(|| anyhow::anyhow!("redis.url: no sentinel given"))?
            .clone();
        let tls = matches!(first.addr(), redis::ConnectionAddr::TcpTls { .. });
        let mut builder = SentinelClientBuilder::new(
            sentinels.iter().map(|info| info.addr().clone()),
            master_name,
            SentinelServerType::Master,
        )
        .map_err(|e| anyhow::anyhow!("redis.url: {e}"))?
        .set_client_to_redis_db(first.redis_settings().db());
        if let Some(password) = first.redis_settings().password() {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if let Some(username) = first.redis_settings().username() {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = password {
            builder = builder.set_client_to_redis_password(password.expose());
        }
        if tls {
            builder = builder
                .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure)
                .set_client_to_redis_tls_mode(redis::TlsMode::Secure);
        }
        if let Some(root_cert) = root_cert {
            let certificates = |root_cert: Vec<u8>| redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            };
            builder = builder
                .set_client_to_sentinel_certificates(certificates(root_cert.clone()))
                .set_client_to_redis_certificates(certificates(root_cert));
        }
        let mut sentinel = builder
            .build()
            .map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
        let target = format!("the master {master_name:?} of the sentinels");
        let master = at_start(&target, open(&mut sentinel, timeout)).await?;
        let suspect = Arc::new(Notify::new());
        let this = Arc::new(SentinelMaster {
            current: ArcSwap::from_pointee(master),
            suspect: suspect.clone(),
        });
        tokio::spawn(follow(Arc::downgrade(&this), sentinel, suspect, timeout));
        Ok(this)
    }

    /// The connection to the current master.
    pub(in crate::kv) fn connection(&self) -> ConnectionManager {
        self.current.load().conn.clone()
    }

    /// A client for the current master.
    pub(in crate::kv) fn client(&self) -> redis::Client {
        self.current.load().client.clone()
    }

    /// Asks the sentinels again at once when `result` failed in a way a failover explains.
    pub(in crate::kv) fn check<T>(&self, result: &RedisResult<T>) {
        if let Err(err) = result
            && failover_suspected(err)
        {
            self.suspect.notify_one();
        }
    }
}

/// The master the sentinels name now (they check it answers `ROLE` as a master), connected.
async fn open(sentinel: &mut SentinelClient, timeout: Duration) -> RedisResult<Master> {
    let client = sentinel.async_get_client().await?;
    let conn = client
        .get_connection_manager_with_config(manager_config(timeout))
        .await?;
    Ok(Master { client, conn })
}

/// Follows the master until the [`SentinelMaster`] is dropped.
async fn follow(
    master: Weak<SentinelMaster>,
    mut sentinel: SentinelClient,
    suspect: Arc<Notify>,
    timeout: Duration,
) {
    let bound = timeout.max(Duration::from_secs(1)) * 2;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = suspect.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        let Some(master) = master.upgrade() else {
            return;
        };
        let named = tokio::time::timeout(bound, sentinel.async_get_client()).await;
        let client = match named {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => {
                if !failing {
                    tracing::warn!(error = %err, "redis sentinel: no master named; asking again every second");
                }
                failing = true;
                continue;
            }
            Err(_) => {
                if !failing {
                    tracing::warn!("redis sentinel: no answer; asking again every second");
                }
                failing = true;
                continue;
            }
        };
        failing = false;
        let now = client.get_connection_info().addr().clone();
        if *master.current.load().client.get_connection_info().addr() == now {
            continue;
        }
        let connect = client.get_connection_manager_with_config(manager_config(timeout));
        match tokio::time::timeout(bound, connect).await {
            Ok(Ok(conn)) => {
                tracing::warn!(master = %now, "redis sentinel: the master changed; commands go to the new one");
                metrics::counter!("portcullis_redis_failovers_total").increment(1);
                master.current.store(Arc::new(Master { client, conn }));
            }
            Ok(Err(err)) => {
                tracing::warn!(master = %now, error = %err, "redis sentinel: the new master does not answer yet")
            }
            Err(_) => {
                tracing::warn!(master = %now, "redis sentinel: the new master does not answer yet")
            }
        }
    }
}
