//! Logs (tracing; text or JSON) and metrics (Prometheus). Handlers record with the `metrics`
//! macros; the exporter renders them at `telemetry.metrics_path`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Telemetry};

/// Installs the global subscriber. `RUST_LOG` wins over the configured filter.
pub fn init_logging(settings: &Telemetry) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second call (tests) keeps the first subscriber.
    let _ = result;
}

/// Installs the global metrics recorder; `None` when one is installed already.
pub fn init_metrics() -> Option<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ],
        )
        .ok()?
        .install_recorder()
        .ok()
}
