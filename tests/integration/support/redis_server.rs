//! Redis servers of a test's own, on free ports: one `redis-server` (for the tests that stop
//! Redis or need it configured otherwise than the shared one), a Redis Cluster of several, and
//! a Sentinel set-up (a master, a replica, a sentinel). Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{TestEnv, random_suffix};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// The command line, for a restart on the same port and directory.
    args: Vec<String>,
    dir: Option<PathBuf>,
}

/// A free port whose cluster bus port (+10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pc-{what}-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn answering(port: u16) {
    TestEnv::eventually(5000, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
}

/// Whether the server on `port` is a primary, or a replica whose link to its primary is up
/// (it holds the primary's data, so a failover to it loses nothing already written).
pub fn synced(port: u16) -> bool {
    let info = cli(port, &["INFO", "replication"]);
    info.contains("role:master") || info.contains("master_link_status:up")
}

/// `redis-cli -p port args…`, its output.
pub fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        RedisServer::start_with(&[]).await
    }

    /// With `args` added to the command line (`["--requirepass", "…"]`).
    pub async fn start_with(args: &[&str]) -> RedisServer {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        RedisServer::start_in(None, |_| args).await
    }

    /// Run in `dir` (its working and data directory), with the arguments `extra` makes for the
    /// port chosen; they come last, so they may set the port otherwise (`--port 0 --tls-port`).
    pub async fn start_in(
        dir: Option<&Path>,
        extra: impl FnOnce(u16) -> Vec<String>,
    ) -> RedisServer {
        let port = free_cluster_port();
        let mut args: Vec<String> = ["--port", &port.to_string(), "--bind", "127.0.0.1"]
            .iter()
            .chain(&["--save", "", "--appendonly", "no"])
            .map(|a| a.to_string())
            .collect();
        args.extend(extra(port));
        let mut server = RedisServer {
            child: None,
            port,
            args,
            dir: dir.map(Path::to_path_buf),
        };
        server.restart().await;
        server
    }

    /// Starts it again (after [`RedisServer::stop`]) as it was started first.
    pub async fn restart(&mut self) {
        self.stop();
        let mut command = Command::new("redis-server");
        command
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(dir) = &self.dir {
            command.arg("--dir").arg(dir).current_dir(dir);
        }
        self.child = Some(command.spawn().expect("redis-server starts"));
        answering(self.port).await;
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster on this machine: `primaries` primaries with `replicas` replicas each, a
/// node counted as failed after a second.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    dir: PathBuf,
}

impl RedisCluster {
    pub async fn start(primaries: usize, replicas: usize) -> RedisCluster {
        let dir = temp_dir("redis-cluster");
        let mut nodes = Vec::new();
        for index in 0..primaries * (1 + replicas) {
            let node_dir = dir.join(index.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            nodes.push(
                RedisServer::start_in(Some(&node_dir), |_| {
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "1000",
                        "--repl-diskless-sync-delay",
                        "0",
                    ]
                    .map(String::from)
                    .to_vec()
                })
                .await,
            );
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = RedisCluster { nodes, dir };
        cluster.healthy().await;
        cluster
    }

    /// Waits until every running node reports the cluster as serving all slots, and every
    /// replica has its primary's data.
    pub async fn healthy(&self) {
        TestEnv::eventually(15_000, || async {
            self.nodes.iter().filter(|n| n.child.is_some()).all(|node| {
                cli(node.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
                    && synced(node.port)
            })
        })
        .await;
    }

    /// The seed list for `redis.url`: every node.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("redis://127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Redis Sentinel on this machine: a master, its replica, and one sentinel (quorum 1) that
/// counts the master down after a second and fails over.
pub struct RedisSentinel {
    pub master: RedisServer,
    pub replica: RedisServer,
    pub sentinel: RedisServer,
    pub name: String,
    dir: PathBuf,
}

impl RedisSentinel {
    pub async fn start() -> RedisSentinel {
        let dir = temp_dir("redis-sentinel");
        let master = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]).await;
        let master_port = master.port;
        let replica =
            RedisServer::start_with(&["--replicaof", "127.0.0.1", &master_port.to_string()]).await;
        let name = "pcmaster".to_string();
        let port = free_cluster_port();
        let config = dir.join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\n\
                 sentinel monitor {name} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {name} 1000\n\
                 sentinel failover-timeout {name} 5000\n"
            ),
        )
        .unwrap();
        let sentinel_server = RedisServer {
            child: None,
            port,
            args: vec![config.display().to_string(), "--sentinel".into()],
            dir: Some(dir.clone()),
        };
        let mut sentinel = sentinel_server;
        sentinel.restart().await;
        let this = RedisSentinel {
            master,
            replica,
            sentinel,
            name,
            dir,
        };
        // The replica has the master's data, and the sentinel knows it (from the master's
        // INFO), before a failover can pick it.
        TestEnv::eventually(10_000, || async {
            synced(this.replica.port)
                && cli(this.sentinel.port, &["SENTINEL", "REPLICAS", &this.name])
                    .contains(&this.replica.port.to_string())
        })
        .await;
        this
    }

    /// `redis.url` and `redis.sentinel_master` for the sentinel.
    pub fn settings(&self) -> String {
        format!(
            "[redis]\nurl = \"redis://127.0.0.1:{}/0\"\nsentinel_master = \"{}\"",
            self.sentinel.port, self.name
        )
    }

    /// The port of the master the sentinel names now.
    pub fn master_port(&self) -> u16 {
        let answer = cli(
            self.sentinel.port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", &self.name],
        );
        answer
            .lines()
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        self.sentinel.stop();
        self.master.stop();
        self.replica.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
