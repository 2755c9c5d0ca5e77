//! The auth API (identity, public, resource, admin) and the registry of every route.
//!
//! Each endpoint is declared once, as an [`Endpoint`]: its documentation and its handler. The
//! router is built from the registry and so is the OpenAPI document, so the two cannot drift.

pub mod entities;
pub mod error;
pub mod guard;
pub mod identity;
pub mod kyc;
pub mod openapi;
pub mod params;
pub mod public;

use axum::Router;
use axum::routing::MethodRouter;

use crate::app::App;

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Query,
    Path,
    /// Form field or JSON member of the body.
    Body,
    Header,
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub location: In,
    pub required: bool,
    /// OpenAPI type: string, integer, boolean, object.
    pub kind: &'static str,
    pub description: &'static str,
}

pub const fn param(
    name: &'static str,
    location: In,
    required: bool,
    description: &'static str,
) -> Param {
    Param {
        name,
        location,
        required,
        kind: "string",
        description,
    }
}

/// What a route's path is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// `api.mount` (the auth API).
    Mount,
    /// `decision.prefix` (the decision fronts).
    Decision,
    /// The server root.
    Root,
}

/// Which guard runs before the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// None: operational endpoints.
    Open,
    /// Restrictions only: identity and public endpoints.
    Restrictions,
    /// The decision fronts (which are the gate themselves): only the callers
    /// `decision.callers` allows.
    Proxies,
}

/// The documentation of one route.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    pub method: &'static str,
    pub base: Base,
    /// Relative to `base`, without a leading slash; `{name}` marks path parameters.
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub params: &'static [Param],
    /// (status, description); error statuses render `{"errors":[...]}`.
    pub responses: &'static [(u16, &'static str)],
}

/// A route: its documentation, its guard and its handler.
pub struct Endpoint {
    pub doc: Doc,
    pub guard: Guard,
    pub handler: MethodRouter<App>,
}

/// Every documented endpoint: the auth API, the decision fronts, the operational routes.
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = Vec::new();
    all.extend(identity::endpoints());
    all.extend(public::endpoints());
    all.extend(kyc::endpoints());
    all.extend(openapi::endpoints());
    all.extend(crate::fronts::endpoints());
    all.extend(crate::server::endpoints());
    all
}

/// The absolute path of a route under the given settings.
pub fn full_path(settings: &crate::config::Settings, doc: &Doc) -> String {
    let base = match doc.base {
        Base::Mount => settings.api.mount.as_str(),
        Base::Decision => settings.decision.prefix.as_str(),
        Base::Root => "",
    };
    let base = base.trim_end_matches('/');
    if doc.path.is_empty() {
        if base.is_empty() {
            "/".into()
        } else {
            base.to_string()
        }
    } else {
        format!("{base}/{}", doc.path)
    }
}

/// The router of every registered endpoint, each behind its guard. CORS wraps the auth API
/// (`api.mount`) only: a decision front must never answer a preflight itself, or an `OPTIONS`
/// carrying `Origin` would come back as an allow that no rule decided.
pub fn router(app: &App) -> Router<App> {
    // [auth API, decisions and operations] × [open, behind restrictions, proxies only]
    let mut groups: [[Router<App>; 3]; 2] = Default::default();
    for endpoint in endpoints() {
        let path = full_path(&app.settings, &endpoint.doc);
        let api = usize::from(endpoint.doc.base != Base::Mount);
        let guard = match endpoint.guard {
            Guard::Open => 0,
            Guard::Restrictions => 1,
            Guard::Proxies => 2,
        };
        let group = &mut groups[api][guard];
        *group = std::mem::take(group).route(&path, endpoint.handler);
    }
    let [
        [api_open, api_guarded, api_proxies],
        [other_open, other_guarded, other_proxies],
    ] = groups;
    let guard = || axum::middleware::from_fn_with_state(app.clone(), guard::restrictions);
    let proxies = || axum::middleware::from_fn_with_state(app.clone(), crate::fronts::proxies_only);
    let api = api_open
        .merge(api_guarded.layer(guard()))
        .merge(api_proxies.layer(proxies()))
        .layer(axum::middleware::from_fn_with_state(
            app.cors.clone(),
            crate::net::cors::middleware,
        ));
    api.merge(
        other_open
            .merge(other_guarded.layer(guard()))
            .merge(other_proxies.layer(proxies())),
    )
}
