//! The loop both queue workers run, the publisher (`event_outbox` to RabbitMQ) and the mailer
//! (`mail_queue` to SMTP). A worker's round claims a batch (`FOR UPDATE SKIP LOCKED`, so the
//! nodes share the queue), delivers it and marks what was delivered; this module decides when
//! the next round runs:
//!
//! - after a full batch, at once (more rows are probably waiting);
//! - after a short batch, when the wake bell rings (a change notice, or an event written on
//!   this node), or after an idle wait that bounds how long a missed ring delays a row;
//! - after a failure, after an exponential back-off, without listening to the bell: a broker
//!   or relay that is down must not be hammered because work keeps arriving.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::Notify;
use tokio::time::{sleep, timeout};

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Fewer rows than a batch were pending: wait for the bell.
    Drained,
    /// A full batch went out: go again.
    Full,
    /// Delivery or the database failed; the rows stay pending: back off.
    Failed,
}

/// When the rounds of a worker run.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// The longest wait for the bell after a drained round.
    pub idle_wait: Duration,
    /// The first back-off after a failure; it doubles with each failure in a row.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Pace {
    /// The back-off delays after consecutive failures: `first_backoff` doubling up to
    /// `max_backoff`, for ever.
    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.first_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .without_max_times()
            .build()
    }
}

/// A queue worker: one round claims, delivers and marks one batch.
pub trait Worker {
    fn round(&mut self) -> impl Future<Output = Round> + Send;
}

/// Runs `worker`'s rounds at `pace` until the process ends.
pub async fn run<W: Worker>(mut worker: W, pace: Pace, wake: Arc<Notify>) {
    let mut backoff = pace.backoff();
    loop {
        match worker.round().await {
            Round::Drained => {
                backoff = pace.backoff();
                // `notify_one` keeps a permit when nobody waits, so a ring that came during the
                // round ends this wait at once.
                let _ = timeout(pace.idle_wait, wake.notified()).await;
            }
            Round::Full => backoff = pace.backoff(),
            Round::Failed => sleep(backoff.next().unwrap_or(pace.max_backoff)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACE: Pace = Pace {
        idle_wait: Duration::from_secs(10),
        first_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(5),
    };

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let delays: Vec<u64> = PACE
            .backoff()
            .take(5)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 5_000, 5_000]);
    }

    /// Plays a script of rounds and records when each one started.
    struct Script {
        rounds: Vec<Round>,
        started: Arc<std::sync::Mutex<Vec<Duration>>>,
        origin: tokio::time::Instant,
    }

    impl Worker for Script {
        fn round(&mut self) -> impl Future<Output = Round> + Send {
            self.started.lock().unwrap().push(self.origin.elapsed());
            let next = if self.rounds.is_empty() {
                Round::Drained
            } else {
                self.rounds.remove(0)
            };
            async move { next }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_success_resets_and_a_ring_ends_the_idle_wait() {
        let started = Arc::new(std::sync::Mutex::new(Vec::new()));
        let wake = Arc::new(Notify::new());
        let script = Script {
            rounds: vec![
                Round::Failed,
                Round::Failed,
                Round::Full,
                Round::Failed,
                Round::Drained,
            ],
            started: started.clone(),
            origin: tokio::time::Instant::now(),
        };
        let task = tokio::spawn(run(script, PACE, wake.clone()));
        // Failed (1 s), failed (2 s), full (at once), failed (1 s again), drained (idle 10 s).
        tokio::time::sleep(Duration::from_secs(7)).await;
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(1)).await;
        task.abort();
        let secs: Vec<u64> = started
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.as_secs())
            .collect();
        assert_eq!(secs, [0, 1, 3, 3, 4, 7]);
    }
}
