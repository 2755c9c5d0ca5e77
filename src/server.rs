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
pub async fn serve_until(
    app: App,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = Duration::from_secs(app.settings.server.shutdown_grace);
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        stop.await;
        let _ = stop_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return Ok(result??),
        _ = stop_rx => tracing::info!(grace_seconds = grace.as_secs(), "shutting down"),
    }
    match tokio::time::timeout(grace, &mut server).await {
        Ok(result) => Ok(result??),
        Err(_) => {
            tracing::warn!("connections still open after the grace period; closing them");
            Ok(())
        }
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
