//! Load while a store fails: decisions from several tasks, one credential that must be
//! allowed and some that must be refused, in turn, each answer tallied. A store outage may
//! turn allows into fail-closed denials; it must never turn a refusal into an allow.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Client, Server, Session, TestEnv};

const BALANCES: &str = "/api/v2/peatio/account/balances";

/// What the load saw.
#[derive(Default, Debug)]
pub struct Tally {
    pub allowed: u64,
    /// Denied because a store could not answer: 403 with `X-Authz-Status: 503`.
    pub failed_closed: u64,
    /// 200 for a credential that must be refused: the count that must stay zero.
    pub wrong_allows: u64,
    pub refused: u64,
    /// Any other answer to the valid credential (neither 200 nor a fail-closed denial).
    pub unexpected: Vec<(u16, String)>,
    pub slowest: Duration,
}

impl Tally {
    /// An outage showed (some fail-closed denials) and nothing else went wrong: no wrong
    /// allow, no other answer to the valid credential, both kinds answered, none slower than
    /// `bound`.
    pub fn assert_failed_closed_only(&self, bound: Duration) {
        assert_eq!(self.wrong_allows, 0, "{self:?}");
        assert!(self.unexpected.is_empty(), "{self:?}");
        assert!(self.failed_closed > 0, "the outage was not seen: {self:?}");
        assert!(self.allowed > 0 && self.refused > 0, "{self:?}");
        assert!(self.slowest < bound, "{self:?}");
    }

    fn add(&mut self, other: Tally) {
        self.allowed += other.allowed;
        self.failed_closed += other.failed_closed;
        self.wrong_allows += other.wrong_allows;
        self.refused += other.refused;
        self.unexpected.extend(other.unexpected);
        self.slowest = self.slowest.max(other.slowest);
    }
}

/// Decisions (Envoy's front) on one node from `workers` tasks until [`Load::finish`].
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Load {
    /// `valid` must be allowed while the stores answer; each of `refused` must never be.
    pub fn start(node: &Server, valid: &Session, refused: &[Session], workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut sessions = vec![valid.clone()];
        sessions.extend(refused.iter().cloned());
        let workers = (0..workers)
            .map(|_| {
                let (url, stop, sessions) =
                    (node.decision(BALANCES), stop.clone(), sessions.clone());
                tokio::spawn(async move {
                    let client = Client::new();
                    let mut tally = Tally::default();
                    let mut turn = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let which = turn % sessions.len();
                        let started = Instant::now();
                        let answer = client.get(&url).session(&sessions[which]).send().await;
                        tally.slowest = tally.slowest.max(started.elapsed());
                        let failed_closed =
                            answer.status == 403 && answer.header("x-authz-status") == Some("503");
                        match (which, answer.status) {
                            (0, 200) => tally.allowed += 1,
                            (0, _) if failed_closed => tally.failed_closed += 1,
                            (0, status) => tally.unexpected.push((status, answer.text())),
                            (_, 200) => tally.wrong_allows += 1,
                            (_, _) if failed_closed => tally.failed_closed += 1,
                            _ => tally.refused += 1,
                        }
                        turn += 1;
                    }
                    tally
                })
            })
            .collect();
        Load { stop, workers }
    }

    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for worker in self.workers {
            total.add(worker.await.unwrap());
        }
        total
    }
}

/// Load on `node` from four tasks through `outage` (which takes a store away and returns once
/// it is back); then `valid` must be allowed again within 5 s, and the load goes on for half a
/// second on the recovered store. The tally, and how long after the return recovery took.
pub async fn through_outage(
    node: &Server,
    valid: &Session,
    refused: &[Session],
    outage: impl std::future::Future<Output = ()>,
) -> (Tally, Duration) {
    let load = Load::start(node, valid, refused, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    outage.await;
    let back = Instant::now();
    TestEnv::eventually(5_000, || async { node.balances_status(valid).await == 200 }).await;
    let recovered = back.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    (load.finish().await, recovered)
}
