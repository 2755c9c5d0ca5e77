//! How this node reaches Redis: one server, a Redis Cluster, or the master a set of Sentinels
//! names, as `redis.cluster` and `redis.sentinel_master` choose. [`Conn`] is the one connection
//! type the rest of `kv` talks through whatever the mode; [`Subscriber`] opens subscriptions
//! where the mode delivers messages; [`Conn::scan_targets`] says which servers hold keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ConnectionInfo, RedisFuture, RedisResult, Value};

use super::cluster::ClusterNodes;
use super::redact_url;
use super::sentinel::SentinelMaster;
use crate::config::Secret;

/// Longest wait for the first connection at start.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// A connection to Redis in any mode. Cheap to clone; every clone shares the connections.
#[derive(Clone)]
pub(super) enum Conn {
    Standalone(ConnectionManager),
    /// Routes each command to the primary of its key's slot, following MOVED and ASK;
    /// rebuilt after a primary is lost.
    Cluster(Arc<ClusterNodes>),
    /// The master the sentinels name now; replaced when they name another.
    Sentinel(Arc<SentinelMaster>),
}

/// Where a subscription is opened. Plain PUBLISH reaches every node of a cluster, so any node
/// will do there; under Sentinel it is the master.
#[derive(Clone)]
pub(super) enum Subscriber {
    /// The one server, or a cluster's seed nodes, tried in turn from the one after the last
    /// used.
    Servers {
        clients: Arc<[redis::Client]>,
        next: Arc<AtomicUsize>,
    },
    Sentinel(Arc<SentinelMaster>),
}

impl Subscriber {
    fn servers(clients: Vec<redis::Client>) -> Subscriber {
        Subscriber::Servers {
            clients: clients.into(),
            next: Arc::default(),
        }
    }
}

/// A server that SCAN must cover: the one there is, or a primary of the cluster.
pub(super) enum ScanTarget {
    Connected,
    Primary { host: String, port: u16 },
}

/// Whether `err` is what a failover looks like from here: the connection lost or refused,
/// no answer in time, a cluster's redirections or CLUSTERDOWN, or `READONLY` from a master
/// demoted to replica.
pub(super) fn failover_suspected(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || err.is_cluster_error()
        || err.kind() == redis::ErrorKind::ClusterConnectionNotFound
        || err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

/// `url`, with `password` when the URL names none.
pub(super) fn connection_info(
    url: &str,
    password: Option<&Secret>,
) -> anyhow::Result<ConnectionInfo> {
    use redis::IntoConnectionInfo;
    let info = url
        .into_connection_info()
        .map_err(|e| anyhow::anyhow!("redis.url {}: {e}", redact_url(url)))?;
    Ok(match password {
        Some(password) if info.redis_settings().password().is_none() => {
            let redis = info
                .redis_settings()
                .clone()
                .set_password(password.expose());
            info.set_redis_settings(redis)
        }
        _ => info,
    })
}

/// The URLs of `redis.url`: one, or a comma-separated list (cluster seeds, sentinels).
pub(super) fn urls(settings: &crate::config::Redis) -> Vec<&str> {
    settings
        .url
        .expose()
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .collect()
}

fn root_cert(settings: &crate::config::Redis) -> anyhow::Result<Option<Vec<u8>>> {
    settings
        .tls_ca_file
        .as_ref()
        .map(|file| {
            std::fs::read(file)
                .map_err(|e| anyhow::anyhow!("redis.tls_ca_file {}: {e}", file.display()))
        })
        .transpose()
}

fn certificates(root_cert: Vec<u8>) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(root_cert),
    }
}

/// A client for one server: `rediss://` is TLS, the certificate verified against
/// `redis.tls_ca_file` (or the system's trusted roots).
pub(super) fn server_client(
    info: ConnectionInfo,
    root_cert: Option<&[u8]>,
) -> RedisResult<redis::Client> {
    match root_cert {
        Some(root_cert) => redis::Client::build_with_tls(info, certificates(root_cert.to_vec())),
        None => redis::Client::open(info),
    }
}

/// The reconnecting connection every mode but Cluster uses to a server.
pub(super) fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout.max(Duration::from_secs(1))))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(2))
}

/// `what` within [`CONNECT_WAIT`], its failure named after `target`.
pub(super) async fn at_start<T>(
    target: &str,
    what: impl std::future::Future<Output = RedisResult<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(CONNECT_WAIT, what)
        .await
        .map_err(|_| anyhow::anyhow!("redis at {target}: no answer within 10 s"))?
        .map_err(|e| anyhow::anyhow!("redis at {target}: {e}"))
}

/// Connects in the mode the settings choose.
pub(super) async fn connect(settings: &crate::config::Redis) -> anyhow::Result<(Conn, Subscriber)> {
    let urls = urls(settings);
    let password = settings.password.as_ref();
    let root_cert = root_cert(settings)?;
    let timeout = settings.timeout;
    if let Some(master) = &settings.sentinel_master {
        let sentinels = urls
            .iter()
            .map(|url| connection_info(url, None))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let master =
            SentinelMaster::connect(sentinels, master, password, root_cert, timeout).await?;
        return Ok((Conn::Sentinel(master.clone()), Subscriber::Sentinel(master)));
    }
    if settings.cluster {
        return connect_cluster(&urls, password, root_cert, timeout).await;
    }
    let [url] = urls[..] else {
        anyhow::bail!(
            "redis.url: one URL expected (several need redis.cluster or redis.sentinel_master)"
        );
    };
    let client = server_client(connection_info(url, password)?, root_cert.as_deref())
        .map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
    let conn = at_start(
        &redact_url(url),
        client
            .clone()
            .get_connection_manager_with_config(manager_config(timeout)),
    )
    .await?;
    Ok((Conn::Standalone(conn), Subscriber::servers(vec![client])))
}

async fn connect_cluster(
    urls: &[&str],
    password: Option<&Secret>,
    root_cert: Option<Vec<u8>>,
    timeout: Duration,
) -> anyhow::Result<(Conn, Subscriber)> {
    let mut seeds = Vec::with_capacity(urls.len());
    for url in urls {
        let info = connection_info(url, password)?;
        if info.redis_settings().db() != 0 {
            // Barong's default URL names database 1; a cluster has database 0 only.
            tracing::warn!(url = %redact_url(url), "Redis Cluster has database 0 only: the URL's database number is not used");
        }
        let settings = info.redis_settings().clone().set_db(0);
        seeds.push(info.set_redis_settings(settings));
    }
    let mut builder = redis::cluster::ClusterClientBuilder::new(seeds.clone())
        .connection_timeout(timeout.max(Duration::from_secs(1)))
        .response_timeout(timeout)
        // A slot that moves mid-failover is retried briefly; the caller's own timeout bounds
        // the whole call, so a long back-off would only turn into a timeout.
        .retries(2)
        .min_retry_wait(10)
        .max_retry_wait(100);
    if let Some(root_cert) = &root_cert {
        builder = builder.certs(certificates(root_cert.clone()));
    }
    let client = builder
        .build()
        .map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
    let target = urls.iter().map(|url| redact_url(url)).collect::<Vec<_>>();
    let conn = at_start(&target.join(","), client.get_async_connection()).await?;
    let conn = ClusterNodes::follow(client, conn, timeout);
    let clients = seeds
        .into_iter()
        .map(|info| server_client(info, root_cert.as_deref()))
        .collect::<RedisResult<Vec<_>>>()
        .map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
    Ok((Conn::Cluster(conn), Subscriber::servers(clients)))
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Standalone(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(nodes) => Box::pin(async move {
                let mut conn = nodes.connection();
                let result = conn.req_packed_command(cmd).await;
                nodes.check(&result);
                result
            }),
            Conn::Sentinel(master) => Box::pin(async move {
                let mut conn = master.connection();
                let result = conn.req_packed_command(cmd).await;
                master.check(&result);
                result
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(nodes) => Box::pin(async move {
                let mut conn = nodes.connection();
                let result = conn.req_packed_commands(pipeline, offset, count).await;
                nodes.check(&result);
                result
            }),
            Conn::Sentinel(master) => Box::pin(async move {
                let mut conn = master.connection();
                let result = conn.req_packed_commands(pipeline, offset, count).await;
                master.check(&result);
                result
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Standalone(conn) => conn.get_db(),
            Conn::Cluster(_) => 0,
            Conn::Sentinel(master) => master.connection().get_db(),
        }
    }
}

impl Conn {
    /// The servers whose keys a SCAN must cover: every primary of a cluster (from `CLUSTER
    /// NODES`, skipping those marked failed), else the one server.
    pub(super) async fn scan_targets(&mut self) -> RedisResult<Vec<ScanTarget>> {
        let Conn::Cluster(nodes) = self else {
            return Ok(vec![ScanTarget::Connected]);
        };
        let nodes = nodes
            .connection()
            .route_command(
                redis::cmd("CLUSTER").arg("NODES").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        let nodes: String = redis::from_redis_value(nodes)?;
        Ok(primaries(&nodes)
            .into_iter()
            .map(|(host, port)| ScanTarget::Primary { host, port })
            .collect())
    }

    /// `cmd` on `target`.
    pub(super) async fn query_on<T: redis::FromRedisValue>(
        &mut self,
        target: &ScanTarget,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        match (self, target) {
            (Conn::Cluster(nodes), ScanTarget::Primary { host, port }) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let result = nodes.connection().route_command(cmd.clone(), routing).await;
                nodes.check(&result);
                Ok(redis::from_redis_value(result?)?)
            }
            (conn, _) => cmd.query_async(conn).await,
        }
    }
}

/// The primaries that serve slots, as (host, port), from `CLUSTER NODES` output: lines of
/// `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>…`.
fn primaries(cluster_nodes: &str) -> Vec<(String, u16)> {
    cluster_nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?.split(',').collect::<Vec<_>>();
            if !flags.contains(&"master") || flags.iter().any(|f| f.starts_with("fail")) {
                return None;
            }
            if fields.len() <= 8 {
                return None; // no slots: holds no keys
            }
            let address = fields.get(1)?.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((host.to_string(), port.parse().ok()?))
        })
        .collect()
}

impl Subscriber {
    /// A subscription connection where messages arrive.
    pub(super) async fn pubsub(&self) -> RedisResult<redis::aio::PubSub> {
        match self {
            Subscriber::Sentinel(master) => master.client().get_async_pubsub().await,
            Subscriber::Servers { clients, next } => {
                let start = next.fetch_add(1, Ordering::Relaxed);
                let mut last = None;
                for turn in 0..clients.len() {
                    match clients[(start + turn) % clients.len()]
                        .get_async_pubsub()
                        .await
                    {
                        Ok(pubsub) => return Ok(pubsub),
                        Err(err) => last = Some(err),
                    }
                }
                Err(last.expect("at least one server"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn primaries_with_slots_that_have_not_failed_are_scanned() {
        let nodes = "\
07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@31003,redis-3 master - 0 1426238318243 3 connected 10923-16383
6ec2 127.0.0.1:30005@31005 master,fail - 1426238316232 0 5 disconnected 0-5460
824f 127.0.0.1:30006@31006 myself,master - 0 0 6 connected
e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
";
        assert_eq!(
            super::primaries(nodes),
            vec![
                ("127.0.0.1".to_string(), 30002),
                ("127.0.0.1".to_string(), 30003),
                ("127.0.0.1".to_string(), 30001),
            ]
        );
    }

    #[test]
    fn a_list_of_urls_is_split_on_commas() {
        let settings = crate::config::Redis {
            url: crate::config::Secret::new(" redis://a:1 , redis://b:2,"),
            cluster: true,
            sentinel_master: None,
            password: None,
            tls_ca_file: None,
            key_prefix: "t:".into(),
            timeout: std::time::Duration::from_millis(500),
        };
        assert_eq!(super::urls(&settings), ["redis://a:1", "redis://b:2"]);
    }
}
