//! Redis Cluster: the cluster connection, rebuilt when a primary is lost. The redis crate
//! follows MOVED and ASK, but when a primary dies it keeps reconnecting to the dead address
//! and never asks the cluster who serves those slots now; measured here, its commands still
//! failed 5 s after the replica had taken over. So a command that fails in a way a failover
//! explains wakes a task that builds a new connection (which reads the slots afresh from the
//! seed nodes), at most once per [`REBUILD_GAP`]; later commands use it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::RedisResult;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use tokio::sync::Notify;

use super::topology::failover_suspected;

/// The least time between two rebuilds: while a failover is still under way every command
/// fails, and each would otherwise start one.
const REBUILD_GAP: Duration = Duration::from_millis(250);

pub(in crate::kv) struct ClusterNodes {
    current: ArcSwap<ClusterConnection>,
    suspect: Arc<Notify>,
}

impl ClusterNodes {
    /// Connects through `client`'s seed nodes and keeps the connection current from then on.
    pub(in crate::kv) fn follow(
        client: ClusterClient,
        conn: ClusterConnection,
        timeout: Duration,
    ) -> Arc<ClusterNodes> {
        let suspect = Arc::new(Notify::new());
        let this = Arc::new(ClusterNodes {
            current: ArcSwap::from_pointee(conn),
            suspect: suspect.clone(),
        });
        tokio::spawn(rebuild(Arc::downgrade(&this), client, suspect, timeout));
        this
    }

    pub(in crate::kv) fn connection(&self) -> ClusterConnection {
        (**self.current.load()).clone()
    }

    /// Has the connection rebuilt when `result` failed in a way a failover explains.
    pub(in crate::kv) fn check<T>(&self, result: &RedisResult<T>) {
        if let Err(err) = result
            && failover_suspected(err)
        {
            self.suspect.notify_one();
        }
    }
}

/// Rebuilds the connection when woken, until the [`ClusterNodes`] is dropped.
async fn rebuild(
    nodes: Weak<ClusterNodes>,
    client: ClusterClient,
    suspect: Arc<Notify>,
    timeout: Duration,
) {
    let bound = timeout.max(Duration::from_secs(1)) * 2;
    loop {
        suspect.notified().await;
        let Some(nodes) = nodes.upgrade() else {
            return;
        };
        match tokio::time::timeout(bound, client.get_async_connection()).await {
            Ok(Ok(conn)) => {
                tracing::info!(
                    "redis cluster: a command failed; connection rebuilt from the seed nodes"
                );
                metrics::counter!("portcullis_redis_failovers_total").increment(1);
                nodes.current.store(Arc::new(conn));
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "redis cluster: no seed node answers; trying again at the next failure")
            }
            Err(_) => {
                tracing::warn!(
                    "redis cluster: no seed node answers; trying again at the next failure"
                )
            }
        }
        drop(nodes);
        tokio::time::sleep(REBUILD_GAP).await;
    }
}
