//! The operational routes: the JWKS that upstreams verify our tokens with, the health
//! probe, and the Prometheus metrics, on their own narrow state.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use std::sync::Arc;

use ipnet::IpNet;

use crate::gate::policy::PolicyHandle;
use crate::jwt::Issuer;
use crate::kv::Kv;
use crate::net::respond::error_response;
use crate::routes::{Base, Doc, Endpoint, Guard, described, reply};
use crate::store::Store;
use crate::telemetry::HealthProbe;

/// Operational routes.
/// What the operational routes use. Cheap to clone.
#[derive(Clone)]
pub struct OpsState(Arc<Ops>);

pub struct Ops {
    pub issuer: Arc<Issuer>,
    pub store: Store,
    pub kv: Kv,
    pub policy: Arc<PolicyHandle>,
    pub health: HealthProbe,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// `telemetry.metrics_allow`: who may read the metrics.
    pub metrics_allow: Vec<IpNet>,
}

impl OpsState {
    pub fn new(ops: Ops) -> OpsState {
        OpsState(Arc::new(ops))
    }
}

const JWKS: Doc = Doc {
    method: "GET",
    base: Base::Root,
    path: ".well-known/jwks.json",
    tag: "operations",
    summary: "Public keys that verify the tokens Portcullis mints (JWKS)",
    params: &[],
    responses: &[reply(200, "{\"keys\":[{kty, use, alg, kid, n, e}]}")],
};

const HEALTH: Doc = Doc {
    method: "GET",
    base: Base::Root,
    path: "health",
    tag: "operations",
    summary: "Readiness: Postgres and Redis answer (checked at most once a second), a policy snapshot is loaded",
    params: &[],
    responses: &[
        reply(200, "Ready"),
        described(503, "A dependency does not answer"),
    ],
};

const LIVENESS: Doc = Doc {
    method: "GET",
    base: Base::Root,
    path: "health/live",
    tag: "operations",
    summary: "Liveness: the process serves requests. Asks no dependency, so an orchestrator does not restart every node while Redis or Postgres is away (readiness, /health, takes them out of rotation meanwhile)",
    params: &[],
    responses: &[reply(200, "Alive")],
};

const METRICS: Doc = Doc {
    method: "GET",
    base: Base::Metrics,
    path: "",
    tag: "operations",
    summary: "Prometheus metrics, for the addresses telemetry.metrics_allow lists",
    params: &[],
    responses: &[
        reply(200, "Prometheus text format 0.0.4"),
        reply(404, "gateway.route_not_found: the caller is not allowed"),
    ],
};

/// The documentation of the operational routes.
pub fn docs() -> Vec<Doc> {
    vec![JWKS, HEALTH, LIVENESS, METRICS]
}

/// The operational routes, serving from `state`, for a router of any state.
pub fn endpoints<S: Clone + Send + Sync + 'static>(state: OpsState) -> Vec<Endpoint<S>> {
    let endpoint = |doc, handler| Endpoint {
        doc,
        guard: Guard::Open,
        handler,
    };
    vec![
        endpoint(JWKS, get(jwks).with_state(state.clone())),
        endpoint(HEALTH, get(health).with_state(state.clone())),
        endpoint(LIVENESS, get(live)),
        endpoint(METRICS, get(metrics).with_state(state)),
    ]
}

async fn jwks(State(OpsState(ops)): State<OpsState>) -> Response {
    let mut response = axum::Json(ops.issuer.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

async fn health(State(OpsState(ops)): State<OpsState>) -> Response {
    let (postgres, redis) = ops
        .health
        .get(Duration::from_secs(1), || async {
            let (postgres, redis) = tokio::join!(
                tokio::time::timeout(Duration::from_secs(2), ops.store.ping()),
                tokio::time::timeout(Duration::from_secs(2), ops.kv.ping())
            );
            (postgres.unwrap_or(false), redis.unwrap_or(false))
        })
        .await;
    let generation = ops.policy.current().generation;
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

async fn live() -> Response {
    axum::Json(json!({ "status": "alive", "version": env!("CARGO_PKG_VERSION") })).into_response()
}

async fn metrics(
    State(OpsState(ops)): State<OpsState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let allowed = ops
        .metrics_allow
        .iter()
        .any(|net| net.contains(&peer.ip().to_canonical()));
    match (&ops.metrics, allowed) {
        (Some(handle), true) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        _ => error_response(StatusCode::NOT_FOUND, "gateway.route_not_found"),
    }
}
