//! The OpenAPI 3 document, generated from the endpoint registry (so it always matches the
//! routes), served at the seeds' `swagger_doc` paths and printed by `portcullis openapi`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::{Base, Doc, Endpoint, Guard, In, full_path, param};
use crate::app::App;
use crate::config::Settings;

/// The document for every endpoint, or only those tagged `tag`.
pub fn document(settings: &Settings, tag: Option<&str>) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    let mut docs: Vec<Doc> = super::endpoints().into_iter().map(|e| e.doc).collect();
    docs.extend(extra_docs());
    for doc in docs.iter().filter(|d| tag.is_none_or(|t| d.tag == t)) {
        let path = full_path(settings, doc).replace("{*", "{");
        let item = paths.entry(path).or_insert_with(|| json!({}));
        item[doc.method.to_ascii_lowercase()] = operation(doc);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Portcullis",
            "description": "Authentication and authorization gateway; Barong API v2 compatible.",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "components": {
            "securitySchemes": {
                "BearerToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
                "SessionCookie": { "type": "apiKey", "in": "cookie", "name": settings.session.cookie_name },
            },
            "schemas": {
                "Errors": {
                    "type": "object",
                    "properties": { "errors": { "type": "array", "items": { "type": "string" } } },
                    "required": ["errors"],
                },
            },
        },
        "paths": paths,
    })
}

fn operation(doc: &Doc) -> Value {
    let mut parameters = Vec::new();
    let mut body_props = Map::new();
    let mut body_required = Vec::new();
    for p in doc.params {
        let schema = json!({ "type": p.kind });
        match p.location {
            In::Body => {
                body_props.insert(
                    p.name.into(),
                    json!({ "type": p.kind, "description": p.description }),
                );
                if p.required {
                    body_required.push(p.name);
                }
            }
            location => {
                let place = match location {
                    In::Query => "query",
                    In::Path => "path",
                    In::Header => "header",
                    In::Body => unreachable!(),
                };
                parameters.push(json!({
                    "name": p.name, "in": place, "required": p.required || place == "path",
                    "description": p.description, "schema": schema,
                }));
            }
        }
    }
    // Path parameters named in the path but not declared.
    for segment in doc.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let name = name.trim_start_matches('*');
            if !parameters.iter().any(|p| p["name"] == name) {
                parameters.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
            }
        }
    }
    let mut responses = Map::new();
    for (status, description) in doc.responses {
        let mut response = json!({ "description": description });
        if *status >= 400 {
            response["content"] = json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Errors" } } });
        }
        responses.insert(status.to_string(), response);
    }
    let mut op = json!({
        "tags": [doc.tag],
        "summary": doc.summary,
        "parameters": parameters,
        "responses": responses,
    });
    if !body_props.is_empty() {
        let schema =
            json!({ "type": "object", "properties": body_props, "required": body_required });
        op["requestBody"] = json!({
            "content": {
                "application/json": { "schema": schema },
                "application/x-www-form-urlencoded": { "schema": schema },
            }
        });
    }
    op
}

/// Routes the registry does not build (added by the server itself).
fn extra_docs() -> Vec<Doc> {
    vec![Doc {
        method: "GET",
        base: Base::Decision,
        path: "",
        tag: "decisions",
        summary: "Barong's decision endpoint for the root path",
        params: &[],
        responses: &[(200, "Allowed"), (401, "Denied")],
    }]
}

pub fn endpoints() -> Vec<Endpoint> {
    let doc = |path: &'static str, summary: &'static str, params: &'static [super::Param]| Doc {
        method: "GET",
        base: Base::Mount,
        path,
        tag: "documentation",
        summary,
        params,
        responses: &[(200, "OpenAPI 3 document")],
    };
    let mut all = vec![
        Endpoint {
            doc: doc("swagger_doc", "OpenAPI document of every route", &[]),
            guard: Guard::Restrictions,
            handler: get(whole),
        },
        Endpoint {
            doc: doc(
                "resource/swagger_doc/{name}",
                "OpenAPI document of one API (identity, resource, public, admin, decisions, operations)",
                const { &[param("name", In::Path, true, "API name")] },
            ),
            guard: Guard::Restrictions,
            handler: get(named),
        },
    ];
    for api in ["identity", "resource", "public", "admin"] {
        let path: &'static str = match api {
            "identity" => "identity/swagger_doc",
            "resource" => "resource/swagger_doc",
            "public" => "public/swagger_doc",
            _ => "admin/swagger_doc",
        };
        all.push(Endpoint {
            doc: doc(path, "OpenAPI document of this API", &[]),
            guard: Guard::Restrictions,
            handler: get(move |State(app): State<App>| async move {
                axum::Json(document(&app.settings, Some(api))).into_response()
            }),
        });
    }
    all
}

async fn whole(State(app): State<App>) -> Response {
    axum::Json(document(&app.settings, None)).into_response()
}

async fn named(State(app): State<App>, Path(name): Path<String>) -> Response {
    axum::Json(document(&app.settings, Some(&name))).into_response()
}
