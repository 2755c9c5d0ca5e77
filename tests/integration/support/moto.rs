//! A real S3-compatible server for the uploads' tests: moto's server mode (`pip install
//! 'moto[server]'`, installed by scripts/services.sh), one per test, on a free port. The
//! process is killed when the handle drops (a panicking test unwinds through the drop), and
//! asked by the kernel to die with the test thread that started it should the binary abort.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// Starts moto and waits until it answers. Fails the test, saying how to install it, when
    /// moto is missing.
    pub async fn start() -> Moto {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut command = Command::new("python3");
        command
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = command
            .spawn()
            .expect("python3 is needed for moto (run scripts/services.sh)");
        let mut moto = Moto { child, port };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "moto's server exited at start ({status}): install it with \
                     `pip install 'moto[server]'` (scripts/services.sh does)"
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return moto;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto's server did not start listening in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket` (moto accepts unsigned requests by default).
    pub async fn create_bucket(&self, bucket: &str) {
        let response = super::Client::new()
            .request("PUT", format!("{}/{bucket}", self.endpoint()))
            .send()
            .await;
        assert_eq!(
            response.status,
            200,
            "bucket not created: {}",
            response.text()
        );
    }

    /// Stops the server now (a storage outage).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
