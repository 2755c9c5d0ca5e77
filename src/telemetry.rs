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
    // stderr: stdout carries command output (a uid, a key) that scripts read. Colour only on
    // a terminal: journald, Docker and files would keep the escape codes as text.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second call (tests) keeps the first subscriber.
    let _ = result;
}

/// How often recorded histogram samples are folded into their buckets.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Installs the global metrics recorder; `None` when one is installed already.
///
/// The exporter keeps every histogram sample until an upkeep folds them into the buckets, and
/// `install_recorder` runs none: without a scrape, memory grew with traffic (28 MB in 20 s of
/// 80k decisions/s; 2 MB with the upkeep), and the scrape that came paid for all of it. A
/// thread of its own folds them every second, off the request runtime.
pub fn init_metrics() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ],
        )
        .ok()?
        .install_recorder()
        .ok()?;
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(METRICS_UPKEEP);
                upkeep.run_upkeep();
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "metrics upkeep thread not started; histogram samples wait for a scrape");
    }
    Some(handle)
}

/// Handles of the metrics recorded on every request, registered once when the app is built:
/// a `counter!` with labels builds and hashes its key on each call, which shows on the hot path.
pub struct HotMetrics {
    fronts: Vec<(&'static str, metrics::Counter, metrics::Histogram)>,
    responses: [metrics::Counter; 5],
}

/// The decision fronts, as they label their metrics.
pub const FRONTS: [&str; 5] = ["barong", "nginx", "forward_auth", "grpc", "proxy"];

impl HotMetrics {
    pub fn register() -> HotMetrics {
        HotMetrics {
            fronts: FRONTS
                .iter()
                .map(|front| {
                    (
                        *front,
                        metrics::counter!("portcullis_decisions_total", "front" => *front, "outcome" => "allow"),
                        metrics::histogram!("portcullis_decision_seconds", "front" => *front),
                    )
                })
                .collect(),
            responses: ["1xx", "2xx", "3xx", "4xx", "5xx"]
                .map(|class| metrics::counter!("portcullis_http_responses_total", "class" => class)),
        }
    }

    /// (allowed decisions, decision latency) of `front`.
    pub fn front(&self, front: &str) -> Option<(&metrics::Counter, &metrics::Histogram)> {
        self.fronts
            .iter()
            .find(|(name, _, _)| *name == front)
            .map(|(_, allowed, seconds)| (allowed, seconds))
    }

    pub fn response(&self, status: u16) {
        let index = (status / 100).clamp(1, 5) as usize - 1;
        self.responses[index].increment(1);
    }
}

/// The last dependency check behind `/health`, reused for a second: the endpoint is open to
/// anyone, and each real check takes a pooled database connection. Concurrent callers wait for
/// one check instead of each making their own.
#[derive(Default)]
pub struct HealthProbe {
    last: tokio::sync::Mutex<Option<(std::time::Instant, (bool, bool))>>,
}

impl HealthProbe {
    /// The (postgres, redis) answer at most `max_age` old, refreshed with `check` when older.
    pub async fn get<F, Fut>(&self, max_age: std::time::Duration, check: F) -> (bool, bool)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (bool, bool)>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = *last
            && at.elapsed() < max_age
        {
            return answer;
        }
        let answer = check().await;
        *last = Some((std::time::Instant::now(), answer));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn health_is_checked_at_most_once_per_period() {
        let probe = HealthProbe::default();
        let checks = AtomicUsize::new(0);
        let check = || async {
            checks.fetch_add(1, Ordering::SeqCst);
            (true, false)
        };
        for _ in 0..5 {
            assert_eq!(
                probe.get(Duration::from_secs(60), check).await,
                (true, false)
            );
        }
        assert_eq!(checks.load(Ordering::SeqCst), 1);
        // Past its age the answer is checked again.
        assert_eq!(probe.get(Duration::ZERO, check).await, (true, false));
        assert_eq!(checks.load(Ordering::SeqCst), 2);
    }
}
