//! `portcullis`: parses the command line, loads the settings, runs the command.

use clap::Parser;
use portcullis::app::{self, App};
use portcullis::cli::{self, Cli, Command};
use portcullis::config::Settings;
use portcullis::{server, telemetry};

/// mimalloc instead of glibc's malloc: a request allocates a few dozen times, and glibc's
/// malloc and free cost a fifth of a session decision's instructions (callgrind, issue 13 in
/// bench/README.md).
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
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
