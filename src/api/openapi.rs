//! The OpenAPI endpoints: the document of every route (built once by the server from the
//! registry, see `routes::openapi`), served at the seeds' `swagger_doc` paths.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::Settings;
use crate::routes::openapi::Documents;
use crate::routes::{Base, Doc, Endpoint, Guard, In, Reply, param, reply};

/// What the OpenAPI handlers serve.
#[derive(Clone)]
pub struct OpenApiState {
    pub documents: Arc<Documents>,
    pub settings: Arc<Settings>,
}

const DOCUMENT: &[Reply] = const { &[reply(200, "OpenAPI 3 document")] };

const fn doc(
    path: &'static str,
    summary: &'static str,
    params: &'static [crate::routes::Param],
) -> Doc {
    Doc {
        method: "GET",
        base: Base::Mount,
        path,
        tag: "documentation",
        summary,
        params,
        responses: DOCUMENT,
    }
}

const WHOLE: Doc = doc("swagger_doc", "OpenAPI document of every route", &[]);
const NAMED: Doc = doc(
    "resource/swagger_doc/{name}",
    "OpenAPI document of one API (identity, resource, public, admin, decisions, operations)",
    &[param("name", In::Path, true, "API name")],
);
/// Barong's per-API document paths, and the tag each serves.
const PER_API: [(Doc, &str); 4] = [
    (
        doc("identity/swagger_doc", "OpenAPI document of this API", &[]),
        "identity",
    ),
    (
        doc("resource/swagger_doc", "OpenAPI document of this API", &[]),
        "resource",
    ),
    (
        doc("public/swagger_doc", "OpenAPI document of this API", &[]),
        "public",
    ),
    (
        doc("admin/swagger_doc", "OpenAPI document of this API", &[]),
        "admin",
    ),
];

/// The documentation of the OpenAPI endpoints themselves (so the document lists them).
pub fn docs() -> Vec<Doc> {
    let mut all = vec![WHOLE, NAMED];
    all.extend(PER_API.iter().map(|(doc, _)| *doc));
    all
}

/// The OpenAPI endpoints, serving `state`'s documents, for a router of any state.
pub fn endpoints<S: Clone + Send + Sync + 'static>(state: OpenApiState) -> Vec<Endpoint<S>> {
    let mut all = vec![
        Endpoint {
            doc: WHOLE,
            guard: Guard::Restrictions,
            handler: get(whole).with_state(state.clone()),
        },
        Endpoint {
            doc: NAMED,
            guard: Guard::Restrictions,
            handler: get(named).with_state(state.clone()),
        },
    ];
    for (doc, tag) in PER_API {
        all.push(Endpoint {
            doc,
            guard: Guard::Restrictions,
            handler: get(move |State(state): State<OpenApiState>| async move {
                axum::Json(state.documents.tagged(&state.settings, tag)).into_response()
            })
            .with_state(state.clone()),
        });
    }
    all
}

async fn whole(State(state): State<OpenApiState>) -> Response {
    axum::Json(state.documents.all.clone()).into_response()
}

async fn named(State(state): State<OpenApiState>, Path(name): Path<String>) -> Response {
    axum::Json(state.documents.tagged(&state.settings, &name)).into_response()
}
