//! The built-in proxy's upstreams: the configured routes (longest prefix first, round robin
//! over each route's targets) and one pool of HTTP/1 connections per target.
//!
//! The pool drives `hyper::client::conn::http1` by hand instead of hyper-util's legacy
//! `Client`, which, for every HTTP/1 request whose answer has a body, spawns a task that waits
//! for the connection to be ready again, and runs a checkout future, a keyed pool behind a
//! mutex and an absolute-to-origin URI rewrite on top (`bench/README.md`, issue 13, has the
//! instruction counts that chose this). Here a connection goes back to its target's idle
//! stack when the answer's body has been read to its end, and a request takes the most
//! recently returned connection that is ready: last in, first out, so a few warm connections
//! carry the traffic and the rest age out.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response, Uri};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use crate::config;

/// How long connecting to an upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle connection older than this is closed instead of reused (an upstream's own
/// keep-alive timeout is usually longer: nginx's is 75 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per target; more are closed when they come back.
const MAX_IDLE: usize = 512;

/// One configured route, ready to forward.
pub struct Route {
    prefix: String,
    rewrite: Option<String>,
    /// Each upstream of the route, in round-robin order.
    targets: Vec<Arc<Target>>,
    next: AtomicUsize,
    pub timeout: Duration,
    /// Active checks: the path asked of each target, and how often.
    health_check: Option<(String, Duration)>,
}

impl Route {
    /// True when `path` is the prefix itself or continues it at a segment boundary.
    fn matches(&self, path: &str) -> bool {
        crate::net::path::is_under(path, &self.prefix)
    }

    /// The next upstream in turn that is in the rotation. When every one is out, the turn's
    /// own: its request is the probe that may bring it back.
    pub fn next_target(&self) -> &Arc<Target> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.targets.len();
        // The clock is read only when a target has been out: not on the common path.
        let mut now = None;
        (0..count)
            .map(|k| &self.targets[(start + k) % count])
            .find(|target| target.in_rotation(|| *now.get_or_insert_with(clock_ms)))
            .unwrap_or(&self.targets[start % count])
    }

    /// The path the upstream receives.
    pub fn upstream_path(&self, path: &str) -> String {
        match &self.rewrite {
            Some(rewrite) => {
                let rest = &path[self.prefix.len()..];
                let joined = format!("{}{}", rewrite.trim_end_matches('/'), rest);
                if joined.is_empty() {
                    "/".into()
                } else {
                    joined
                }
            }
            None => path.to_string(),
        }
    }
}

/// The routes shared by every proxied request.
pub struct Upstreams {
    routes: Vec<Route>,
}

impl Upstreams {
    pub fn new(routes: &[config::Route]) -> Upstreams {
        let mut compiled: Vec<Route> = routes
            .iter()
            .map(|r| Route {
                prefix: r.prefix.clone(),
                rewrite: r.rewrite.clone(),
                targets: r
                    .upstream
                    .list()
                    .iter()
                    .map(|u| Arc::new(Target::new(u).with_health(r.max_fails, r.fail_timeout)))
                    .collect(),
                next: AtomicUsize::new(0),
                timeout: r.timeout,
                health_check: r.health_check.clone().map(|path| (path, r.health_interval)),
            })
            .collect();
        // Longest prefix first, so /api/v2/peatio/public can go elsewhere than /api/v2/peatio.
        compiled.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Upstreams { routes: compiled }
    }

    pub fn find(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path))
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The routes that ask for active health checks, by index.
    pub fn checked(&self) -> Vec<usize> {
        (0..self.routes.len())
            .filter(|&index| self.routes[index].health_check.is_some())
            .collect()
    }

    /// Asks each upstream of route `index` for its health-check path every interval, for as
    /// long as the task runs; each probe's verdict takes the upstream out of the rotation or
    /// brings it back.
    pub async fn check_health(&self, index: usize) {
        let route = &self.routes[index];
        let Some((path, interval)) = &route.health_check else {
            return;
        };
        let timeout = route.timeout.min(*interval);
        let mut ticks = tokio::time::interval(*interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let probes = route.targets.iter().map(|target| async move {
                let passed = target.probe(path, timeout).await;
                target.probed(passed);
            });
            futures_util::future::join_all(probes).await;
        }
    }
}

/// Why a request did not reach its upstream or got no answer head.
#[derive(Debug)]
pub enum UpstreamError {
    Connect(std::io::Error),
    ConnectTimeout,
    Http(hyper::Error),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Connect(err) => write!(f, "connect: {err}"),
            UpstreamError::ConnectTimeout => f.write_str("connect: timed out"),
            UpstreamError::Http(err) => write!(f, "{err}"),
        }
    }
}

/// Milliseconds since the first call: the clock passive health counts in (an atomic holds it).
fn clock_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Passive health: an upstream that refuses `max_fails` connects in a row is left out of its
/// route's rotation for `fail_timeout`; then the next request tries it again, and one answer
/// puts it back; the requests are the probes. Active health (a route's `health_check`): a
/// failed probe takes it out until a probe passes ([`PROBED_OUT`]).
struct Health {
    max_fails: u32,
    fail_timeout: Duration,
    failures: AtomicU32,
    /// `clock_ms` until which the target is out; 0: in.
    out_until: AtomicU64,
}

/// `out_until` of an upstream that failed its active health check: out until a probe passes.
const PROBED_OUT: u64 = u64::MAX;

/// One upstream (`http://host:port` from a route) and its idle connections.
pub struct Target {
    /// What the `Host` header says: the authority as configured.
    pub authority: String,
    /// What we connect to: the authority with the port made explicit.
    address: String,
    idle: Mutex<Vec<Idle>>,
    health: Health,
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

impl Target {
    /// `upstream` is a route's `http://host[:port]`, checked when the settings were loaded.
    fn new(upstream: &str) -> Target {
        let authority = upstream
            .parse::<Uri>()
            .ok()
            .and_then(|uri| uri.authority().cloned());
        let (authority, address) = match authority {
            Some(a) if a.port().is_some() => (a.to_string(), a.to_string()),
            Some(a) => (a.to_string(), format!("{a}:80")),
            None => (upstream.to_string(), upstream.to_string()),
        };
        Target {
            authority,
            address,
            idle: Mutex::new(Vec::new()),
            health: Health {
                max_fails: 0,
                fail_timeout: Duration::ZERO,
                failures: AtomicU32::new(0),
                out_until: AtomicU64::new(0),
            },
        }
    }

    fn with_health(mut self, max_fails: u32, fail_timeout: Duration) -> Target {
        self.health.max_fails = max_fails;
        self.health.fail_timeout = fail_timeout;
        self
    }

    fn in_rotation(&self, now_ms: impl FnOnce() -> u64) -> bool {
        let out_until = self.health.out_until.load(Ordering::Relaxed);
        out_until == 0 || out_until <= now_ms()
    }

    /// A connect failed: counted, and at `max_fails` in a row the target leaves the rotation.
    fn connect_failed(&self) {
        let health = &self.health;
        let failures = health.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if health.max_fails > 0 && failures >= health.max_fails {
            let now = clock_ms();
            let until = now + health.fail_timeout.as_millis() as u64;
            if health.out_until.swap(until, Ordering::Relaxed) <= now {
                tracing::warn!(upstream = %self.authority, failures, out_for_s = health.fail_timeout.as_secs(),
                    "upstream left out of the rotation");
                metrics::counter!("portcullis_upstream_out_of_rotation_total").increment(1);
            }
        }
    }

    /// An answer came: the count starts over and the target is in the rotation.
    fn answered(&self) {
        let health = &self.health;
        // The common case reads only: no write to a line every request shares.
        if health.failures.load(Ordering::Relaxed) == 0 {
            return;
        }
        health.failures.store(0, Ordering::Relaxed);
        if health.out_until.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!(upstream = %self.authority, "upstream back in the rotation");
        }
    }

    /// Asks for `path` on a connection of its own (a probe never takes a pooled one from a
    /// request, nor leaves one behind); true when the answer is 2xx or 3xx within `timeout`.
    async fn probe(&self, path: &str, timeout: Duration) -> bool {
        let ask = async {
            let mut sender = self.connect().await.ok()?;
            let request = Request::get(path)
                .header(http::header::HOST, &self.authority)
                .header(http::header::USER_AGENT, "portcullis-health-check")
                .body(Body::empty())
                .ok()?;
            let response = sender.send_request(request).await.ok()?;
            Some(response.status())
        };
        match tokio::time::timeout(timeout, ask).await {
            Ok(Some(status)) => status.is_success() || status.is_redirection(),
            _ => false,
        }
    }

    /// A probe's verdict: out of the rotation until a probe passes, or back in it.
    fn probed(&self, passed: bool) {
        let health = &self.health;
        if passed {
            health.failures.store(0, Ordering::Relaxed);
            if health.out_until.swap(0, Ordering::Relaxed) != 0 {
                tracing::info!(upstream = %self.authority, "upstream passed its health check; back in the rotation");
            }
        } else if health.out_until.swap(PROBED_OUT, Ordering::Relaxed) != PROBED_OUT {
            tracing::warn!(upstream = %self.authority, "upstream failed its health check; out of the rotation");
            metrics::counter!("portcullis_upstream_out_of_rotation_total").increment(1);
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        // A panic elsewhere while holding the lock leaves a plain Vec, still consistent.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends `request` (origin-form URI, `Host` set) on an idle connection or a new one. A
    /// request that an idle connection refused before sending a byte (the upstream closed it
    /// meanwhile) is sent again on another, as hyper-util's client does.
    pub async fn send(
        self: &Arc<Self>,
        mut request: Request<Body>,
    ) -> Result<Response<Pooled>, UpstreamError> {
        loop {
            let (mut sender, reused) = match self.checkout() {
                Some(sender) => (sender, true),
                None => match self.connect().await {
                    Ok(sender) => (sender, false),
                    Err(err) => {
                        self.connect_failed();
                        return Err(err);
                    }
                },
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.answered();
                    // A 101's connection belongs to the tunnel now; it never comes back.
                    let back = (response.status() != http::StatusCode::SWITCHING_PROTOCOLS)
                        .then(|| (sender, self.clone()));
                    return Ok(response.map(|body| Pooled {
                        body,
                        finished: false,
                        back,
                    }));
                }
                Err(mut err) => match err.take_message() {
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(UpstreamError::Http(err.into_error())),
                },
            }
        }
    }

    /// The most recently returned connection that can take a request now. Closed and expired
    /// ones are dropped on the way; one whose last answer is still being wound up stays.
    fn checkout(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.idle();
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            let entry = &idle[i];
            if entry.sender.is_closed() || entry.since.elapsed() > IDLE_TIMEOUT {
                idle.remove(i);
            } else if entry.sender.is_ready() {
                return Some(idle.remove(i).sender);
            }
        }
        None
    }

    /// Puts a connection whose answer was read to its end back on the idle stack, closing the
    /// oldest ones when they have waited too long (there is no sweeper task: an idle target's
    /// connections are closed by the upstream's own keep-alive timeout, or here on next use).
    fn checkin(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle();
        let expired = idle
            .iter()
            .take_while(|entry| entry.since.elapsed() > IDLE_TIMEOUT)
            .count();
        idle.drain(..expired);
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<SendRequest<Body>, UpstreamError> {
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect(&self.address),
        )
        .await
        .map_err(|_| UpstreamError::ConnectTimeout)?
        .map_err(UpstreamError::Connect)?;
        let _ = stream.set_nodelay(true);
        // A peer that vanished without a FIN (a rebooted host) is noticed, not waited on.
        let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(UpstreamError::Http)?;
        let address = self.address.clone();
        tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(upstream = %address, error = %err, "upstream connection closed");
            }
        });
        Ok(sender)
    }
}

/// An upstream answer's body: when it has been read to its end, its connection goes back to
/// the pool; dropped before that (the client went away), the connection closes with it, since
/// the rest of the answer would be in the way of the next one.
pub struct Pooled {
    body: Incoming,
    finished: bool,
    back: Option<(SendRequest<Body>, Arc<Target>)>,
}

impl hyper::body::Body for Pooled {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.finished = true,
            Poll::Ready(Some(Ok(_))) => this.finished = this.body.is_end_stream(),
            Poll::Ready(Some(Err(_))) => this.back = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some((sender, target)) = self.back.take()
            && (self.finished || self.body.is_end_stream())
        {
            target.checkin(sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str, rewrite: Option<&str>) -> Route {
        Route {
            prefix: prefix.into(),
            rewrite: rewrite.map(str::to_string),
            targets: vec![Arc::new(Target::new("http://127.0.0.1:1"))],
            next: AtomicUsize::new(0),
            timeout: Duration::from_secs(1),
            health_check: None,
        }
    }

    #[test]
    fn a_failed_probe_keeps_an_upstream_out_until_a_probe_passes() {
        let target = Target::new("http://127.0.0.1:1").with_health(3, Duration::from_millis(1));
        assert!(target.in_rotation(clock_ms));
        target.probed(false);
        // Not for a fail_timeout: until the next passing probe, however long that takes.
        assert!(!target.in_rotation(|| u64::MAX - 1));
        target.probed(false);
        assert!(!target.in_rotation(clock_ms));
        target.probed(true);
        assert!(target.in_rotation(clock_ms));
    }

    #[test]
    fn routes_match_at_segment_boundaries_and_rewrite() {
        let r = route("/api/v2/peatio", Some("/api/v2"));
        assert!(r.matches("/api/v2/peatio"));
        assert!(r.matches("/api/v2/peatio/markets"));
        assert!(!r.matches("/api/v2/peatiox"));
        assert_eq!(r.upstream_path("/api/v2/peatio/markets"), "/api/v2/markets");
        assert_eq!(r.upstream_path("/api/v2/peatio"), "/api/v2");
        let plain = route("/api/v2/ranger", None);
        assert_eq!(
            plain.upstream_path("/api/v2/ranger/public"),
            "/api/v2/ranger/public"
        );
        let root = route("/x", Some("/"));
        assert_eq!(root.upstream_path("/x"), "/");
        assert_eq!(root.upstream_path("/x/y"), "/y");
    }

    #[test]
    fn an_upstream_that_keeps_refusing_leaves_the_rotation_until_its_time_is_up() {
        let fail_timeout = Duration::from_millis(200);
        let route = Route {
            targets: ["http://a:1", "http://b:1"]
                .map(|u| Arc::new(Target::new(u).with_health(2, fail_timeout)))
                .to_vec(),
            ..route("/x", None)
        };
        let picks = |n| {
            (0..n)
                .map(|_| route.next_target().authority.clone())
                .collect::<Vec<_>>()
        };
        let b = &route.targets[1];
        b.connect_failed();
        assert_eq!(
            picks(4),
            ["a:1", "b:1", "a:1", "b:1"],
            "one failure is not enough"
        );
        b.connect_failed();
        assert_eq!(picks(4), ["a:1"; 4]);
        // Every one out: the turn's own is tried anyway.
        route.targets[0].connect_failed();
        route.targets[0].connect_failed();
        assert_eq!(picks(2), ["a:1", "b:1"]);
        std::thread::sleep(fail_timeout + Duration::from_millis(20));
        assert_eq!(picks(2), ["a:1", "b:1"], "back after fail_timeout");
        // Still at the threshold: one more failure and it is out again, until an answer.
        b.connect_failed();
        assert_eq!(picks(2), ["a:1", "a:1"]);
        b.answered();
        assert_eq!(picks(2), ["a:1", "b:1"]);
        b.connect_failed();
        assert_eq!(picks(2), ["a:1", "b:1"], "the count started over");
    }

    #[test]
    fn targets_connect_to_an_explicit_port_and_name_the_configured_authority() {
        let t = Target::new("http://peatio:3000");
        assert_eq!(
            (t.authority.as_str(), t.address.as_str()),
            ("peatio:3000", "peatio:3000")
        );
        let t = Target::new("http://peatio");
        assert_eq!(
            (t.authority.as_str(), t.address.as_str()),
            ("peatio", "peatio:80")
        );
        let t = Target::new("http://[::1]:8080/");
        assert_eq!(t.address, "[::1]:8080");
    }
}
