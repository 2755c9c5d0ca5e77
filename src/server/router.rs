//! The router: every adapter's endpoints behind their guards, the OpenAPI document built
//! from the same list, and the proxy as the fallback. The one place that knows every route.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::api;
use crate::api::openapi::OpenApiState;
use crate::app::App;
use crate::config::Settings;
use crate::fronts;
use crate::routes::openapi::Documents;
use axum::routing::MethodRouter;

use super::direct::{DirectProxy, safe_prefixes};
use super::ops::{Ops, OpsState};
use crate::routes::{Base, Doc, Endpoint, Guard, ReturnedEntity, full_path};
use crate::telemetry::{HealthProbe, HotMetrics};

/// Every route the server serves, in registration order, the operational ones on `ops`.
pub fn endpoints(settings: &Settings, ops: OpsState) -> Vec<Endpoint<App>> {
    let mut all = api::endpoints();
    all.extend(fronts::endpoints());
    all.extend(super::ops::endpoints(ops));
    let documents = Documents::build(settings, &docs(settings));
    all.extend(api::openapi::endpoints(OpenApiState {
        documents: Arc::new(documents),
        settings: Arc::new(settings.clone()),
    }));
    all.retain(|endpoint| is_served(settings, &endpoint.doc));
    all
}

/// The documentation of every route the server serves.
pub fn docs(settings: &Settings) -> Vec<Doc> {
    let mut docs: Vec<Doc> = api::endpoints::<App>().iter().map(|e| e.doc).collect();
    docs.extend(fronts::endpoints::<App>().iter().map(|e| e.doc));
    docs.extend(super::ops::docs());
    docs.extend(api::openapi::docs());
    docs.retain(|doc| is_served(settings, doc));
    docs
}

/// The OpenAPI document of every route (what `portcullis openapi` prints).
pub fn document(settings: &Settings) -> serde_json::Value {
    Documents::build(settings, &docs(settings)).all
}

/// Metrics are served only where `telemetry.metrics_path` is set, the Back Office only when
/// `backoffice.enabled`.
fn is_served(settings: &Settings, doc: &Doc) -> bool {
    match doc.base {
        Base::Metrics => settings.telemetry.metrics_path.is_some(),
        Base::BackOffice => settings.backoffice.enabled,
        Base::Mount | Base::Decision | Base::Root => true,
    }
}

/// In debug builds (every test), each request carries its route's documented parameters, and
/// reading any other one fails the test that reached it (see `api::params::Documented`); an
/// entity the route does not document for the status it was answered with fails it too.
fn documented(handler: MethodRouter<App>, doc: Doc) -> MethodRouter<App> {
    if !cfg!(debug_assertions) {
        return handler;
    }
    handler
        .layer::<_, std::convert::Infallible>(axum::middleware::map_response(
            move |response: Response| async move {
                if let Some(ReturnedEntity(name)) = response.extensions().get::<ReturnedEntity>() {
                    let status = response.status().as_u16();
                    assert!(
                        doc.documents_entity(status, name),
                        "{} {} answers {status} with {name}, which its Doc does not list",
                        doc.method,
                        doc.path
                    );
                }
                response
            },
        ))
        .layer(axum::Extension(api::params::RouteParams(doc.params)))
}

/// What the listener serves: the router, and the proxy for the paths that may skip it.
pub struct Dispatch {
    pub router: Router,
    pub direct: DirectProxy,
}

/// The router of every endpoint, each behind its guard, and the proxy route prefixes that no
/// endpoint path could match ([`super::direct`]). CORS wraps the auth API (`api.mount`) only:
/// a decision front must never answer a preflight itself, or an `OPTIONS` carrying `Origin`
/// would come back as an allow that no rule decided.
pub fn dispatch(app: App) -> Dispatch {
    let mut paths = Vec::new();
    // [auth API, decisions and operations] × [open, behind restrictions, proxies only, users]
    let mut groups: [[Router<App>; 4]; 2] = Default::default();
    let ops = OpsState::new(Ops {
        issuer: app.gate.issuer.clone(),
        store: app.store.clone(),
        kv: app.kv.clone(),
        policy: app.gate.policy.clone(),
        health: HealthProbe::default(),
        metrics: app.metrics.clone(),
        metrics_allow: app.settings.telemetry.metrics_allow.clone(),
    });
    for endpoint in endpoints(&app.settings, ops) {
        let path = full_path(&app.settings, &endpoint.doc);
        let api = usize::from(endpoint.doc.base != Base::Mount);
        let guard = match endpoint.guard {
            Guard::Open => 0,
            Guard::Restrictions => 1,
            Guard::Proxies => 2,
            Guard::Subject => 3,
        };
        let handler = documented(endpoint.handler, endpoint.doc);
        let group = &mut groups[api][guard];
        *group = std::mem::take(group).route(&path, handler);
        paths.push(path);
    }
    let [
        [api_open, api_guarded, api_proxies, api_users],
        [other_open, other_guarded, other_proxies, other_users],
    ] = groups;
    let guard =
        || axum::middleware::from_fn_with_state(app.guard.clone(), api::guard::restrictions);
    let proxies =
        || axum::middleware::from_fn_with_state(app.decision.clone(), fronts::proxies_only);
    let users = || axum::middleware::from_fn_with_state(app.guard.clone(), api::guard::subject);
    let api = api_open
        .merge(api_guarded.layer(guard()))
        .merge(api_proxies.layer(proxies()))
        .merge(api_users.layer(users()))
        .layer(axum::middleware::from_fn_with_state(
            app.cors.clone(),
            crate::net::cors::middleware,
        ));
    let direct = DirectProxy::new(
        safe_prefixes(
            app.settings.routes.iter().map(|r| r.prefix.as_str()),
            &paths,
        ),
        app.proxy.clone(),
        app.hot_metrics.clone(),
    );
    let router = api
        .merge(
            other_open
                .merge(other_guarded.layer(guard()))
                .merge(other_proxies.layer(proxies()))
                .merge(other_users.layer(users())),
        )
        .fallback(fronts::proxy::handle)
        .layer(DefaultBodyLimit::max(app.settings.server.max_body_bytes))
        .layer(axum::Extension(api::params::BodyCap(
            app.settings.server.max_body_bytes,
        )))
        .layer(axum::middleware::from_fn_with_state(
            app.hot_metrics.clone(),
            observe,
        ))
        .with_state(app);
    Dispatch { router, direct }
}

/// The router's outermost layer: every routed answer observed.
async fn observe(
    State(hot_metrics): State<Arc<HotMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    observed(&hot_metrics, request, |request| next.run(request)).await
}

/// Serves `request` with `serve`, then counts the answer and logs it at debug level. Never
/// logs headers, cookies or the query string (they carry credentials).
pub async fn observed<F, Fut>(hot_metrics: &HotMetrics, request: Request, serve: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = tracing::enabled!(tracing::Level::DEBUG).then(|| request.uri().path().to_string());
    let response = serve(request).await;
    let status = response.status().as_u16();
    hot_metrics.response(status);
    if let Some(path) = path {
        tracing::debug!(%method, %path, status, micros = started.elapsed().as_micros() as u64, "request");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn settings() -> Settings {
        Settings::from_toml("").expect("the defaults load")
    }

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a Value, into: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    match (key.as_str(), inner) {
                        ("$ref", Value::String(target)) => into.push(target),
                        _ => refs(inner, into),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| refs(item, into)),
            _ => {}
        }
    }

    #[test]
    fn every_served_route_is_documented_once() {
        let settings = settings();
        let docs = docs(&settings);
        let document = document(&settings);
        let mut seen = std::collections::HashSet::new();
        for doc in &docs {
            let path = full_path(&settings, doc).replace("{*", "{");
            assert!(
                seen.insert((doc.method, path.clone())),
                "{} {path} registered twice",
                doc.method
            );
            let operation = &document["paths"][&path][doc.method.to_ascii_lowercase()];
            assert!(operation.is_object(), "{} {path} undocumented", doc.method);
            assert!(
                !doc.responses.is_empty(),
                "{} {path} documents no response",
                doc.method
            );
        }
        // The routes the server adds beyond the adapters' lists are there too.
        for path in [
            "/api/v2/auth/",
            "/metrics",
            "/health",
            "/.well-known/jwks.json",
        ] {
            assert!(document["paths"][path].is_object(), "{path} undocumented");
        }
    }

    #[test]
    fn every_response_entity_resolves_to_a_schema() {
        let document = document(&settings());
        let mut targets = Vec::new();
        refs(&document["paths"], &mut targets);
        let mut nested = Vec::new();
        refs(&document["components"]["schemas"], &mut nested);
        targets.extend(nested);
        assert!(targets.iter().any(|t| t.ends_with("/UserWithFullInfo")));
        for target in targets {
            let name = target.trim_start_matches("#/components/schemas/");
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{target} is referenced but not in components"
            );
        }
        let user = &document["components"]["schemas"]["UserWithFullInfo"];
        assert_eq!(user["properties"]["labels"]["type"], "array");
    }

    #[test]
    fn parameters_are_typed_and_path_parameters_declared() {
        let settings = settings();
        let document = document(&settings);
        for doc in docs(&settings) {
            let path = full_path(&settings, &doc).replace("{*", "{");
            let operation = &document["paths"][&path][doc.method.to_ascii_lowercase()];
            for name in doc
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            {
                let name = name.trim_start_matches('*');
                let declared = operation["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
                assert!(declared, "{path}: path parameter {name} undeclared");
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                assert!(
                    parameter["schema"]["type"].is_string(),
                    "{path}: untyped {parameter}"
                );
            }
        }
    }
}
