//! A RabbitMQ node of the test's own (its own port, name and data directory), so a test can
//! stop and restart a broker without disturbing the shared one other tests use. Starting one
//! takes about five seconds.

use super::free_port;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub struct PrivateBroker {
    pub port: u16,
    node: String,
    dist_port: u16,
    dir: PathBuf,
}

impl PrivateBroker {
    pub async fn start() -> PrivateBroker {
        let suffix = super::random_suffix();
        let dir = std::env::temp_dir().join(format!("pc-rabbit-{suffix}"));
        std::fs::create_dir_all(dir.join("mnesia")).unwrap();
        std::fs::create_dir_all(dir.join("log")).unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        let port = free_port();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.default = {port}\nloopback_users = none\n"),
        )
        .unwrap();
        // Debian's rabbitmq-server runs the node as the rabbitmq user.
        let _ = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(&dir)
            .status();
        let broker = PrivateBroker {
            port,
            node: format!("pctest{suffix}@localhost"),
            dist_port: free_port(),
            dir,
        };
        broker.boot().await;
        broker
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    async fn boot(&self) {
        let status = Command::new("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq.conf"))
            .status()
            .expect("rabbitmq-server runs (apt-get install rabbitmq-server; .ci/run does)");
        assert!(status.success(), "rabbitmq-server -detached failed");
        let port = self.port;
        super::TestEnv::eventually(60_000, || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        // The port opens a little before the node takes connections.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// Stops the node; its queues and persistent messages stay on disk.
    pub async fn stop(&self) {
        let node = self.node.clone();
        let _ = tokio::task::spawn_blocking(move || {
            Command::new("rabbitmqctl")
                .args(["-q", "-n", &node, "stop"])
                .status()
        })
        .await;
        let port = self.port;
        super::TestEnv::eventually(30_000, || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
        })
        .await;
    }

    /// Starts the stopped node again, with the same data.
    pub async fn restart(&self) {
        self.boot().await;
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.node, "stop"])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
