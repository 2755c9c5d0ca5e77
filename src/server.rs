//! The listener: one router for the auth API, the decision fronts, the operational routes
//! and (as the fallback) the proxy; graceful shutdown on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::api::{self, Base, Doc, Endpoint, Guard};
use crate::app::App;
use crate::fronts;

/// Operational routes.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            doc: Doc {
                method: "GET",
                base: Base::Root,
                path: ".well-known/jwks.json",
                tag: "operations",
                summary: "Public keys that verify the tokens Portcullis mints (JWKS)",
                params: &[],
                responses: &[(200, "{\"keys\":[{kty, use, alg, kid, n, e}]}")],
            },
            guard: Guard::Open,
            handler: get(jwks),
        },
        Endpoint {
            doc: Doc {
                method: "GET",
                base: Base::Root,
                path: "health",
                tag: "operations",
                summary: "Readiness: Postgres and Redis answer, a policy snapshot is loaded",
                params: &[],
                responses: &[(200, "Ready"), (503, "A dependency does not answer")],
            },
            guard: Guard::Open,
            handler: get(health),
        },
    ]
}

async fn jwks(State(app): State<App>) -> Response {
    let mut response = axum::Json(app.issuer().jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

async fn health(State(app): State<App>) -> Response {
    let (postgres, redis) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(2), app.store.ping()),
        tokio::time::timeout(Duration::from_secs(2), app.kv.ping())
    );
    let postgres = postgres.unwrap_or(false);
    let redis = redis.unwrap_or(false);
    let generation = app.gate.policy.current().generation;
    let ready = postgres && redis && generation > 0;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({
            "status": if ready { "ok" } else { "unavailable" },
            "postgres": postgres,
            "redis": redis,
            "policy_generation": generation,
            "version": env!("CARGO_PKG_VERSION"),
        })),
    )
        .into_response()
}

async fn metrics(State(app): State<App>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    let allowed = app
        .settings
        .telemetry
        .metrics_allow
        .iter()
        .any(|net| net.contains(&peer.ip().to_canonical()));
    match (&app.metrics, allowed) {
        (Some(handle), true) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        _ => fronts::error_response(StatusCode::NOT_FOUND, "gateway.route_not_found"),
    }
}

/// Counts responses and logs each at debug level. Never logs headers, cookies or the query
/// string (they carry credentials).
async fn observe(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = tracing::enabled!(tracing::Level::DEBUG).then(|| request.uri().path().to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    app.hot_metrics.response(status);
    if let Some(path) = path {
        tracing::debug!(%method, %path, status, micros = started.elapsed().as_micros() as u64, "request");
    }
    response
}

pub fn router(app: App) -> Router {
    let mut router = api::router(&app);
    let prefix = app.settings.decision.prefix.clone();
    // The decision endpoint also answers for the bare prefix.
    router = router.route(
        &format!("{prefix}/"),
        axum::routing::any(fronts::barong::handle),
    );
    if !app.settings.telemetry.metrics_path.is_empty() {
        router = router.route(&app.settings.telemetry.metrics_path, get(metrics));
    }
    router
        .fallback(fronts::proxy::handle)
        .layer(DefaultBodyLimit::max(app.settings.server.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

/// Serves until SIGINT or SIGTERM, then drains for `server.shutdown_grace` seconds.
pub async fn serve(app: App, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    serve_until(app, listener, shutdown_signal()).await
}

/// Serves until `stop` completes, then drains for `server.shutdown_grace` seconds.
///
/// Our own accept loop rather than `axum::serve`, which runs hyper without a timer and so
/// without its header-read timeout: a client trickling headers (slowloris) would hold a
/// connection forever. Here every connection has that timeout, connections are capped, and
/// shutdown lets in-flight requests finish.
pub async fn serve_until(
    app: App,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;
    use tower::ServiceExt;

    let settings = app.settings.server.clone();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.header_read_timeout));
    builder.http2().timer(TokioTimer::new());
    let router = router(app);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
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
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request.map(axum::body::Body::new))
            });
        let connection = graceful.watch(
            builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned(),
        );
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(grace_seconds = settings.shutdown_grace, "shutting down");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(settings.shutdown_grace)) => {
            tracing::warn!("connections still open after the grace period; closing them");
        }
    }
    Ok(())
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
