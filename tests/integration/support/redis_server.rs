//! A `redis-server` of a test's own, on a free port, for the tests that stop Redis or need it
//! configured otherwise than the shared one (a password). Killed when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::TestEnv;

pub struct RedisServer {
    child: Child,
    pub port: u16,
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra(port))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(dir) = dir {
            command.arg("--dir").arg(dir).current_dir(dir);
        }
        let child = command.spawn().expect("redis-server starts");
        TestEnv::eventually(5000, || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        RedisServer { child, port }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
