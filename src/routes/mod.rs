//! The vocabulary every HTTP adapter and the server share: an [`Endpoint`] is a route's
//! documentation, its guard and its handler. Adapters (`api`, `fronts`) declare their
//! endpoints; the server, the only module that knows every part, assembles them into the
//! router and the OpenAPI document ([`openapi`]), so the two cannot drift.
//!
//! This module sits at the bottom of the layering: it knows axum and the settings, and no
//! adapter, so every adapter may import it without forming a cycle.

pub mod openapi;

use std::sync::Arc;

use axum::routing::MethodRouter;

use crate::config::Settings;

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Query,
    Path,
    /// Form field or JSON member of the body.
    Body,
    Header,
}

/// A parameter's OpenAPI type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Boolean,
    /// A nested object (`captcha_response[geetest_challenge]=…` in a form).
    Object,
    /// One of the listed strings.
    OneOf(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub location: In,
    pub required: bool,
    pub kind: Kind,
    pub description: &'static str,
}

/// A text parameter; [`Param::integer`], [`Param::boolean`], [`Param::object`] and
/// [`Param::one_of`] retype it.
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
        kind: Kind::String,
        description,
    }
}

impl Param {
    pub const fn integer(self) -> Param {
        Param {
            kind: Kind::Integer,
            ..self
        }
    }

    pub const fn boolean(self) -> Param {
        Param {
            kind: Kind::Boolean,
            ..self
        }
    }

    pub const fn object(self) -> Param {
        Param {
            kind: Kind::Object,
            ..self
        }
    }

    pub const fn one_of(self, values: &'static [&'static str]) -> Param {
        Param {
            kind: Kind::OneOf(values),
            ..self
        }
    }
}

/// What a route's path is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// `api.mount` (the auth API).
    Mount,
    /// `decision.prefix` (the decision fronts).
    Decision,
    /// `backoffice.prefix` (the Back Office token API; served only when `backoffice.enabled`).
    BackOffice,
    /// The server root.
    Root,
    /// `telemetry.metrics_path` (the route exists only when that is set).
    Metrics,
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
    /// An identified user: a Bearer token we minted (as Envoy forwards it after deciding), or
    /// the gate's own decision on the request (session cookie with CSRF, or API key): the
    /// resource API.
    Subject,
}

/// The body of a response, as the document describes it.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// Described in words only (empty, a bare value, or a shape of a front's host).
    Described,
    /// `{"errors":["<code>", …]}`.
    Errors,
    /// One entity, by its schema (see [`openapi::Entity`]).
    Entity(openapi::Entity),
    /// A JSON array of one entity.
    List(openapi::Entity),
}

/// One documented response.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub description: &'static str,
    pub body: Body,
}

/// A response described in words; error statuses (400 and up) carry `{"errors":[…]}`.
pub const fn reply(status: u16, description: &'static str) -> Reply {
    Reply {
        status,
        description,
        body: if status >= 400 {
            Body::Errors
        } else {
            Body::Described
        },
    }
}

/// A response described in words whatever its status (a body that is not `{"errors":[…]}`).
pub const fn described(status: u16, description: &'static str) -> Reply {
    Reply {
        status,
        description,
        body: Body::Described,
    }
}

/// A response whose body is the entity `T`.
pub const fn returns<T: openapi::Schema>(status: u16, description: &'static str) -> Reply {
    Reply {
        status,
        description,
        body: Body::Entity(openapi::Entity::of::<T>()),
    }
}

/// A response whose body is a list of the entity `T`.
pub const fn returns_list<T: openapi::Schema>(status: u16, description: &'static str) -> Reply {
    Reply {
        status,
        description,
        body: Body::List(openapi::Entity::of::<T>()),
    }
}

/// The documentation of one route.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    pub method: &'static str,
    pub base: Base,
    /// Relative to `base`, without a leading slash; `{name}` marks path parameters; "" is the
    /// base itself and "/" the base with a trailing slash.
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub params: &'static [Param],
    pub responses: &'static [Reply],
}

impl Doc {
    /// Whether the route documents a parameter of this name (any location).
    pub fn documents_param(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name == name)
    }

    /// Whether the route documents `status` answered with the entity named `name` (alone or
    /// as a list).
    pub fn documents_entity(&self, status: u16, name: &str) -> bool {
        self.responses.iter().any(|reply| {
            reply.status == status
                && match reply.body {
                    Body::Entity(entity) | Body::List(entity) => (entity.name)() == name,
                    Body::Described | Body::Errors => false,
                }
        })
    }
}

/// Set on a response (debug builds) by the handler that wrote an entity: its schema's name.
#[derive(Debug, Clone)]
pub struct ReturnedEntity(pub std::borrow::Cow<'static, str>);

/// A route: its documentation, its guard and its handler, over the router's state `S`.
pub struct Endpoint<S> {
    pub doc: Doc,
    pub guard: Guard,
    pub handler: MethodRouter<S>,
}

/// The absolute path of a route under the given settings.
pub fn full_path(settings: &Settings, doc: &Doc) -> String {
    let base = match doc.base {
        Base::Mount => settings.api.mount.as_str(),
        Base::Decision => settings.decision.prefix.as_str(),
        Base::BackOffice => settings.backoffice.prefix.as_str(),
        Base::Root => "",
        // Not served when off (see `server::router`).
        Base::Metrics => settings
            .telemetry
            .metrics_path
            .as_deref()
            .unwrap_or_default(),
    };
    let base = base.trim_end_matches('/');
    if doc.path == "/" {
        format!("{base}/")
    } else if doc.path.is_empty() {
        if base.is_empty() {
            "/".into()
        } else {
            base.to_string()
        }
    } else {
        format!("{base}/{}", doc.path)
    }
}

/// Keeps a connection's slot taken while something outlives its HTTP exchange (a websocket
/// tunnel). The server puts one in the extensions of requests that ask for an upgrade; the
/// proxy keeps it until the tunnel closes. Opaque here, so that adapters need not know the
/// server's connection bookkeeping.
#[derive(Clone)]
pub struct ConnectionHold(pub Arc<dyn Send + Sync>);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, utoipa::ToSchema)]
    struct Thing {
        name: String,
    }

    const DOC: Doc = Doc {
        method: "GET",
        base: Base::Mount,
        path: "things/{id}",
        tag: "things",
        summary: "",
        params: &[param("id", In::Path, true, "")],
        responses: &[
            returns::<Thing>(200, "The thing"),
            reply(404, "things.not_found"),
        ],
    };

    #[test]
    fn a_route_documents_the_entities_it_answers_with_per_status() {
        assert!(DOC.documents_entity(200, "Thing"));
        assert!(!DOC.documents_entity(201, "Thing"));
        assert!(!DOC.documents_entity(200, "Other"));
        assert!(!DOC.documents_entity(404, "Thing"));
        assert!(DOC.documents_param("id") && !DOC.documents_param("name"));
    }

    #[test]
    fn paths_resolve_against_their_base() {
        let settings = Settings::from_toml("").expect("defaults");
        assert_eq!(full_path(&settings, &DOC), "/api/v2/auth/things/{id}");
        let root = Doc {
            base: Base::Decision,
            path: "/",
            ..DOC
        };
        assert_eq!(full_path(&settings, &root), "/api/v2/auth/");
    }
}
