//! The OpenAPI 3 document, generated from the endpoints' [`Doc`]s and the entity types'
//! derived schemas (utoipa's `ToSchema`), so that it lists exactly the routes the router
//! serves, with typed parameters and the response shapes the handlers return.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Body, Doc, In, Kind, Param, full_path};
use crate::config::Settings;

/// A type whose JSON shape the document describes: every entity deriving utoipa's
/// `ToSchema`.
pub trait Schema {
    fn schema_name() -> Cow<'static, str>;
    /// Adds this schema and those it refers to, by name.
    fn collect(into: &mut Map<String, Value>);
}

impl<T: utoipa::ToSchema> Schema for T {
    fn schema_name() -> Cow<'static, str> {
        T::name()
    }

    fn collect(into: &mut Map<String, Value>) {
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        let own = serde_json::to_value(T::schema()).unwrap_or(Value::Null);
        into.insert(T::name().into_owned(), own);
        for (name, schema) in nested {
            into.insert(name, serde_json::to_value(schema).unwrap_or(Value::Null));
        }
    }
}

/// A response entity, as a [`Doc`] names it: a const-friendly handle on a [`Schema`].
#[derive(Clone, Copy)]
pub struct Entity {
    pub name: fn() -> Cow<'static, str>,
    pub collect: fn(&mut Map<String, Value>),
}

impl Entity {
    pub const fn of<T: Schema>() -> Entity {
        Entity {
            name: T::schema_name,
            collect: T::collect,
        }
    }
}

impl std::fmt::Debug for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entity({})", (self.name)())
    }
}

/// The document of every route in `docs`, and one per tag.
pub struct Documents {
    pub all: Value,
    pub by_tag: BTreeMap<&'static str, Value>,
}

impl Documents {
    pub fn build(settings: &Settings, docs: &[Doc]) -> Documents {
        let mut by_tag = BTreeMap::new();
        for doc in docs {
            by_tag
                .entry(doc.tag)
                .or_insert_with(|| document(settings, docs, Some(doc.tag)));
        }
        Documents {
            all: document(settings, docs, None),
            by_tag,
        }
    }

    /// The document of one tag (an API); an unknown tag gets a document without paths.
    pub fn tagged(&self, settings: &Settings, tag: &str) -> Value {
        self.by_tag
            .get(tag)
            .cloned()
            .unwrap_or_else(|| document(settings, &[], None))
    }
}

/// The document for every route in `docs`, or only those tagged `tag`.
pub fn document(settings: &Settings, docs: &[Doc], tag: Option<&str>) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "Errors".into(),
        json!({
            "type": "object",
            "properties": { "errors": { "type": "array", "items": { "type": "string" } } },
            "required": ["errors"],
        }),
    );
    for doc in docs.iter().filter(|d| tag.is_none_or(|t| d.tag == t)) {
        let path = full_path(settings, doc).replace("{*", "{");
        let item = paths.entry(path).or_insert_with(|| json!({}));
        item[doc.method.to_ascii_lowercase()] = operation(doc, &mut schemas);
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
            "schemas": schemas,
        },
        "paths": paths,
    })
}

fn type_of(param: &Param) -> Value {
    match param.kind {
        Kind::String => json!({ "type": "string" }),
        Kind::Integer => json!({ "type": "integer" }),
        Kind::Boolean => json!({ "type": "boolean" }),
        Kind::Object => json!({ "type": "object" }),
        Kind::OneOf(values) => json!({ "type": "string", "enum": values }),
    }
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn operation(doc: &Doc, schemas: &mut Map<String, Value>) -> Value {
    let mut parameters = Vec::new();
    let mut body_props = Map::new();
    let mut body_required = Vec::new();
    for p in doc.params {
        let mut schema = type_of(p);
        match p.location {
            In::Body => {
                schema["description"] = json!(p.description);
                body_props.insert(p.name.into(), schema);
                if p.required {
                    body_required.push(p.name);
                }
            }
            location => {
                let place = match location {
                    In::Query => "query",
                    In::Path => "path",
                    In::Header => "header",
                    In::Body => unreachable!("handled above"),
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
    for reply in doc.responses {
        let mut response = json!({ "description": reply.description });
        let schema = match reply.body {
            Body::Described => None,
            Body::Errors => Some(reference("Errors")),
            Body::Entity(entity) => {
                (entity.collect)(schemas);
                Some(reference(&(entity.name)()))
            }
            Body::List(entity) => {
                (entity.collect)(schemas);
                Some(json!({ "type": "array", "items": reference(&(entity.name)()) }))
            }
        };
        if let Some(schema) = schema {
            response["content"] = json!({ "application/json": { "schema": schema } });
        }
        responses.insert(reply.status.to_string(), response);
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
