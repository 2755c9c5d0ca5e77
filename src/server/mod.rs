//! The listener: one router for the auth API, the decision fronts, the operational routes
//! and (as the fallback) the proxy, with the proxied paths no endpoint could match handed to
//! the proxy directly ([`direct`]); connection admission and deadlines; graceful shutdown on
//! SIGINT/SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use http::header;

use crate::app::App;
use crate::routes::ConnectionHold;
use bodies::{BodyLimits, TimedBody, Tracked};
use connections::{Connections, Limits, Refusal};
use futures_util::FutureExt;
use futures_util::future::Either;
use hyper_util::server::graceful::GracefulConnection;
use tower::ServiceExt;

pub mod bodies;
pub mod connections;
pub mod direct;
mod ops;
pub mod router;
pub mod socket;

/// The longest request head (HTTP/1) or header list (HTTP/2) a client may send: Envoy's
/// default is 60 KiB, nginx's 32 KiB; a browser's cookies fit many times over.
const MAX_HEADER_BYTES: usize = 64 * 1024;

pub use router::dispatch;

/// Serves until SIGINT or SIGTERM, then drains for `server.shutdown_grace` seconds.
pub async fn serve(app: App, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    serve_until(app, listener, shutdown_signal()).await
}

/// How long a connection may do nothing.
#[derive(Debug, Clone, Copy)]
struct IdleLimits {
    /// From accept to the first request: no byte, a partial HTTP/2 preface, headers that never
    /// end all count.
    first_request: Duration,
    /// Between requests (HTTP/1 keep-alive is also cut by hyper's header-read timeout).
    between_requests: Duration,
    /// A connection asked to close (idle, evicted) gets this long to finish.
    closing: Duration,
}

/// Serves until `stop` completes, then drains for `server.shutdown_grace` seconds.
///
/// Our own accept loop rather than `axum::serve`, so that every state of a connection has a
/// deadline: no first byte (hyper's version detection has no timer of its own), slow headers
/// (hyper's header-read timeout), a slow body ([`bodies::TimedBody`]), an idle keep-alive or
/// HTTP/2 connection (the supervisor below), a dead HTTP/2 peer (PING). Admission is
/// [`connections::Connections`]' job: a cap per peer, and at the global cap the longest-idle
/// connection makes room.
pub async fn serve_until(
    app: App,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;

    let settings = app.settings.server.clone();
    let connections = Connections::new(Limits {
        max: settings.max_connections,
        per_peer: settings.max_connections_per_peer,
    });
    let idle = IdleLimits {
        first_request: settings.header_read_timeout,
        between_requests: settings.idle_timeout,
        closing: Duration::from_secs(1),
    };
    let body_limits = BodyLimits {
        idle: settings.body_idle_timeout,
        total: settings.body_read_timeout,
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        // A request head longer than this is answered 431 (hyper's own default, ~400 KiB
        // per connection, let 10,000 connections hold 4 GB of headers).
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        // A peer that stops answering PINGs is gone, even with a request in flight.
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(200)
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let client_ip = app.client_ip.clone();
    let dispatch = dispatch(app);
    let (router, direct) = (dispatch.router, Arc::new(dispatch.direct));
    let (shutdown, _) = tokio::sync::watch::channel(false);
    let metrics = ConnectionMetrics::register();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let hold = match connections.admit(peer.ip(), client_ip.is_trusted(peer.ip())) {
            Ok(hold) => hold,
            Err(refusal) => {
                metrics.refused(refusal);
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let direct = direct.clone();
        let slot = hold.slot().clone();
        let service_hold = hold.clone();
        let service =
            hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                let in_flight = slot.begin();
                if request.headers().contains_key(header::UPGRADE) {
                    request
                        .extensions_mut()
                        .insert(ConnectionHold(Arc::new(service_hold.clone())));
                }
                let request =
                    request.map(|body| axum::body::Body::new(TimedBody::new(body, body_limits)));
                let call = if direct.takes(request.uri().path()) {
                    let direct = direct.clone();
                    // Boxed: the proxy's future is large, and unboxed it would make every
                    // routed request's future as large (callgrind: +2k instructions of copying).
                    Either::Left(Box::pin(async move { direct.serve(peer, request).await }))
                } else {
                    let mut request = request;
                    request.extensions_mut().insert(ConnectInfo(peer));
                    Either::Right(router.clone().oneshot(request).map(|routed| match routed {
                        Ok(response) => response,
                        Err(never) => match never {},
                    }))
                };
                async move {
                    let response = call.await;
                    Ok::<_, std::convert::Infallible>(
                        response.map(|body| Tracked::new(body, in_flight)),
                    )
                }
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(socket::Socket::new(stream)), service)
            .into_owned();
        let shutdown = shutdown.subscribe();
        let evicted = metrics.evicted.clone();
        tokio::spawn(supervise(connection, hold, idle, shutdown, evicted));
    }
    drop(listener);
    tracing::info!(
        grace_seconds = settings.shutdown_grace.as_secs(),
        open = connections.open(),
        "shutting down"
    );
    let _ = shutdown.send(true);
    tokio::select! {
        () = connections.drained() => {}
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!(open = connections.open(), "connections still open after the grace period; closing them");
        }
    }
    Ok(())
}

/// Why a supervisor asks its connection to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Idle,
    Evicted,
    Shutdown,
}

/// Drives one connection and closes it when it has been idle too long, when the listener
/// needs its slot, or at shutdown: gracefully first (in-flight requests finish, HTTP/2 gets a
/// GOAWAY), then by dropping it.
async fn supervise<C: GracefulConnection>(
    connection: C,
    hold: connections::Hold,
    limits: IdleLimits,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    evicted: metrics::Counter,
) {
    let slot = hold.slot().clone();
    tokio::pin!(connection);
    let closing = loop {
        let (idle, served) = slot.idle_for();
        let allowed = if served {
            limits.between_requests
        } else {
            limits.first_request
        };
        if idle >= allowed {
            break Closing::Idle;
        }
        // Busy connections report zero idle time: look again after a whole period.
        let wait = allowed - idle;
        tokio::select! {
            _ = &mut connection => return,
            () = tokio::time::sleep(wait) => {}
            () = slot.evicted() => break Closing::Evicted,
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break Closing::Shutdown;
                }
            }
        }
    };
    if closing == Closing::Evicted {
        evicted.increment(1);
    }
    // Nothing in flight on a connection that never completed a request: nothing to finish or
    // say (it may not even have chosen a protocol yet).
    let (_, served) = slot.idle_for();
    if slot.is_idle() && !served {
        return;
    }
    connection.as_mut().graceful_shutdown();
    // At shutdown the listener's grace period bounds the wait (it stops waiting for us);
    // otherwise the connection has a moment to finish what it is writing.
    if closing == Closing::Shutdown {
        let _ = connection.await;
    } else {
        let _ = tokio::time::timeout(limits.closing, connection).await;
    }
    drop(hold);
}

/// Connection counters, registered once.
struct ConnectionMetrics {
    evicted: metrics::Counter,
    refused_peer: metrics::Counter,
    refused_full: metrics::Counter,
}

impl ConnectionMetrics {
    fn register() -> ConnectionMetrics {
        ConnectionMetrics {
            evicted: metrics::counter!("portcullis_connections_evicted_total"),
            refused_peer: metrics::counter!("portcullis_connections_refused_total", "reason" => "peer_limit"),
            refused_full: metrics::counter!("portcullis_connections_refused_total", "reason" => "full"),
        }
    }

    fn refused(&self, refusal: Refusal) {
        match refusal {
            Refusal::PeerLimit => self.refused_peer.increment(1),
            Refusal::Full => self.refused_full.increment(1),
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so that `server.max_connections`
/// sockets fit; warns when even the hard limit is too low.
pub fn raise_open_files_limit(max_connections: usize) {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    // Postgres and Redis connections, the listener, files: a margin beyond the clients.
    let needed = max_connections as u64 + 256;
    if limit.rlim_cur < needed {
        tracing::warn!(
            open_files = limit.rlim_cur,
            needed,
            "the open-files limit is below server.max_connections; raise it (ulimit -n, LimitNOFILE) or lower server.max_connections"
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
