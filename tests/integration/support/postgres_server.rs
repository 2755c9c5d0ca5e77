//! A PostgreSQL server of a test's own (initdb in a temporary directory, on a free port), for
//! the tests that stop the database or need a streaming replica; the shared one serves every
//! other test. Runs as the `postgres` user, as initdb refuses root. Stopped when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{TestEnv, free_port, random_suffix};

pub struct PostgresServer {
    pub port: u16,
    dir: PathBuf,
}

/// Where Debian installs the server's programs (`/usr/lib/postgresql/<major>/bin`).
fn bin(program: &str) -> PathBuf {
    let root = std::path::Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    versions.sort();
    versions
        .last()
        .expect("a PostgreSQL version")
        .join("bin")
        .join(program)
}

/// `program` to run as the `postgres` user (as is when not root).
fn as_postgres(program: &str) -> Command {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    if is_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin(program));
        command
    } else {
        Command::new(bin(program))
    }
}

/// Runs `program args…` as the `postgres` user; panics on failure.
fn run_as_postgres(program: &str, args: &[&str]) {
    let output = as_postgres(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A directory the `postgres` user owns.
fn data_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pc-{what}-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let _ = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(&dir)
        .status();
    dir
}

impl PostgresServer {
    /// A new cluster: trust authentication on 127.0.0.1, user `postgres`.
    pub async fn start() -> PostgresServer {
        let dir = data_dir("postgres");
        let data = dir.join("data");
        run_as_postgres(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        let server = PostgresServer {
            port: free_port(),
            dir,
        };
        server.restart().await;
        server
    }

    /// A streaming replica of `primary` (pg_basebackup), started.
    pub async fn replica_of(primary: &PostgresServer) -> PostgresServer {
        let dir = data_dir("postgres-replica");
        run_as_postgres(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                &dir.join("data").display().to_string(),
                "-R",
                "-X",
                "stream",
            ],
        );
        let server = PostgresServer {
            port: free_port(),
            dir,
        };
        server.restart().await;
        server
    }

    /// Starts it (again), on its port, and waits until it accepts connections.
    pub async fn restart(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.display()
        );
        run_as_postgres(
            "pg_ctl",
            &[
                "-D",
                &self.dir.join("data").display().to_string(),
                "-l",
                &self.dir.join("log").display().to_string(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        let url = self.url("postgres");
        TestEnv::eventually(10_000, || async {
            tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .is_ok()
        })
        .await;
    }

    /// Stops it at once, as a crash would (no checkpoint, connections cut).
    pub fn stop(&self) {
        let _ = as_postgres("pg_ctl")
            .args(["-D", &self.dir.join("data").display().to_string()])
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The base URL (no database), as `PORTCULLIS_TEST_DATABASE_URL` would be.
    pub fn base_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    pub fn url(&self, database: &str) -> String {
        format!("{}/{database}", self.base_url())
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
