//! `portcullis`: parses the command line, loads the settings, runs the command.

use clap::Parser;
use portcullis::app::{self, App};
use portcullis::cli::{self, Cli, Command};
use portcullis::config::Settings;
use portcullis::{server, telemetry};

/// mimalloc instead of glibc's malloc: a request allocates a few dozen times, and glibc's
/// malloc and free cost a fifth of a session decision's instructions (callgrind, issue 13 in
/// bench/README.md). Under a login storm it holds about 35 MB more than glibc once argon2's
/// memory is pooled (129 against 95 MB, `bench/login_storm.sh`); the CPU on every request
/// weighs more.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("portcullis: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    settings.development = cli.dev;
    telemetry::init_logging(&settings.telemetry);
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = runtime(settings.server.workers()).expect("tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(settings).await,
            other => cli::run(other, settings).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("portcullis: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The runtime requests run on. With one worker, tokio's current-thread scheduler: the
/// multi-thread one with a single worker keeps the accept loop on the main thread and hands
/// work between it, the worker and the I/O driver; on one CPU the proxy served 16 % more
/// requests per second at 13 % less CPU per request on the current-thread scheduler, with
/// 0.46 instead of 0.71 context switches per request (bench/README.md, issue 13). Blocking
/// work (password hashing) still runs on the blocking pool's own threads.
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    builder.enable_all().build()
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    for warning in portcullis::net::client_ip::trust_warnings(&settings.network) {
        tracing::warn!("{warning}");
    }
    server::raise_open_files_limit(settings.server.max_connections);
    let metrics = telemetry::init_metrics();
    app::prepare_database(&settings).await?;
    let listener = tokio::net::TcpListener::bind(settings.server.listen)
        .await
        .map_err(|e| anyhow::anyhow!("server.listen {}: {e}", settings.server.listen))?;
    let app = App::build(settings, metrics).await?;
    app.start_background().await?;
    tracing::info!(
        listen = %app.settings.server.listen,
        api = %app.settings.api.mount,
        decisions = %app.settings.decision.prefix,
        routes = app.settings.routes.len(),
        "portcullis is serving"
    );
    server::serve(app, listener).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn one_worker_runs_on_the_current_thread_scheduler() {
        let flavor = |workers| {
            let runtime = runtime(workers).expect("a runtime");
            runtime.block_on(async { tokio::runtime::Handle::current().runtime_flavor() })
        };
        assert_eq!(flavor(1), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(2), RuntimeFlavor::MultiThread);
        // Blocking work still has its own threads: a hash never stalls the one worker.
        let runtime = runtime(1).expect("a runtime");
        let main = std::thread::current().id();
        let elsewhere = runtime.block_on(async {
            tokio::task::spawn_blocking(|| std::thread::current().id())
                .await
                .expect("the blocking task")
        });
        assert_ne!(elsewhere, main);
    }

    #[test]
    fn zero_worker_threads_means_one_per_usable_cpu() {
        let mut settings = Settings::from_toml("").expect("the defaults load");
        assert_eq!(settings.server.worker_threads, 0);
        assert_eq!(
            settings.server.workers(),
            std::thread::available_parallelism().map_or(1, usize::from)
        );
        settings.server.worker_threads = 3;
        assert_eq!(settings.server.workers(), 3);
    }
}
