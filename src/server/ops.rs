//! The operational routes: the JWKS that upstreams verify our tokens with, the health
//! probe, and the Prometheus metrics.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::app::App;
use crate::net::respond::error_response;
use crate::routes::{Base, Doc, Endpoint, Guard, described, reply};

/// Operational routes.
pub fn endpoints() -> Vec<Endpoint<App>> {
    vec![
        Endpoint {
            doc: Doc {
                method: "GET",
                base: Base::Root,
                path: ".well-known/jwks.json",
                tag: "operations",
                summary: "Public keys that verify the tokens Portcullis mints (JWKS)",
                params: &[],
                responses: const { &[reply(200, "{\"keys\":[{kty, use, alg, kid, n, e}]}")] },
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
                summary: "Readiness: Postgres and Redis answer (checked at most once a second), a policy snapshot is loaded",
                params: &[],
                responses: const {
                    &[
                        reply(200, "Ready"),
                        described(503, "A dependency does not answer"),
                    ]
                },
            },
            guard: Guard::Open,
            handler: get(health),
        },
        Endpoint {
            doc: Doc {
                method: "GET",
                base: Base::Metrics,
                path: "",
                tag: "operations",
                summary: "Prometheus metrics, for the addresses telemetry.metrics_allow lists",
                params: &[],
                responses: const {
                    &[
                        reply(200, "Prometheus text format 0.0.4"),
                        reply(404, "gateway.route_not_found: the caller is not allowed"),
                    ]
                },
            },
            guard: Guard::Open,
            handler: get(metrics),
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
    let (postgres, redis) = app
        .health
        .get(Duration::from_secs(1), || async {
            let (postgres, redis) = tokio::join!(
                tokio::time::timeout(Duration::from_secs(2), app.store.ping()),
                tokio::time::timeout(Duration::from_secs(2), app.kv.ping())
            );
            (postgres.unwrap_or(false), redis.unwrap_or(false))
        })
        .await;
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
        _ => error_response(StatusCode::NOT_FOUND, "gateway.route_not_found"),
    }
}
