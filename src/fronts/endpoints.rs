//! The decision fronts' routes and their documentation.

use axum::routing::{any, get, post};

use super::{barong, forward_auth, grpc, nginx};
use axum::extract::FromRef;

use super::DecisionState;
use crate::routes::{Base, Doc, Endpoint, Guard, In, Reply, param, reply};

const DECISION_RESPONSES: &[Reply] = const {
    &[
        reply(
            200,
            "Allowed: empty body; Authorization: Bearer <JWT> unless the path passed anonymously",
        ),
        reply(
            400,
            "authz.invalid_path, authz.invalid_request (unknown method), authz.invalid_forwarded_for",
        ),
        reply(401, "authz.* denial (see the error catalogue)"),
        reply(
            403,
            "authz.* denial, or a 5xx denial shown as a 4xx (the real status is in X-Authz-Status)",
        ),
        reply(
            404,
            "The caller is not a trusted proxy (decision.callers): no such route",
        ),
        reply(422, "authz.invalid_api_key_headers"),
        reply(
            429,
            "authz.too_many_attempts (too many unknown API key ids from this address)",
        ),
    ]
};

fn grpc_endpoint<S>(path: &'static str) -> Endpoint<S>
where
    S: Clone + Send + Sync + 'static,
    DecisionState: FromRef<S>,
{
    Endpoint {
        doc: Doc {
            method: "POST",
            base: Base::Root,
            path,
            tag: "decisions",
            summary: "Envoy gRPC ext_authz Check (HTTP/2, application/grpc): OK with Authorization set on the upstream request, or a denied_response with the real status and {\"errors\":[code]}",
            params: &[],
            responses: const {
                &[reply(
                    200,
                    "gRPC; grpc-status 0 with a CheckResponse: OK, or a denied_response (a malformed, oversized or non-gRPC call is a 400 denial, never a failed call)",
                )]
            },
        },
        guard: Guard::Proxies,
        handler: post(grpc::handle),
    }
}

/// The decision fronts' routes.
/// The decision fronts' routes, for any router state the fronts' own state comes from.
pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    DecisionState: FromRef<S>,
{
    let key_headers: &'static [crate::routes::Param] = const {
        &[
            param("Cookie", In::Header, false, "The session cookie"),
            param(
                "X-CSRF-Token",
                In::Header,
                false,
                "CSRF token of the session, for POST, PUT, PATCH, DELETE",
            ),
            param("X-Auth-Apikey", In::Header, false, "API key id"),
            param(
                "X-Auth-Nonce",
                In::Header,
                false,
                "Milliseconds since the epoch",
            ),
            param(
                "X-Auth-Signature",
                In::Header,
                false,
                "hex(HMAC-SHA256(secret, nonce + kid))",
            ),
        ]
    };
    vec![
        Endpoint {
            doc: Doc {
                method: "GET",
                base: Base::Decision,
                path: "_/nginx",
                tag: "decisions",
                summary: "nginx auth_request: decides on X-Original-Method and X-Original-URI",
                params: const {
                    &[
                        param(
                            "X-Original-Method",
                            In::Header,
                            true,
                            "Method of the original request",
                        ),
                        param(
                            "X-Original-URI",
                            In::Header,
                            true,
                            "Path and query of the original request",
                        ),
                    ]
                },
                responses: const {
                    &[
                        reply(
                            200,
                            "Allowed; Authorization: Bearer <JWT> unless passed anonymously",
                        ),
                        reply(401, "Denied with 401 (X-Authz-Status, X-Authz-Error)"),
                        reply(
                            403,
                            "Denied otherwise (a missing original method or URI too: 400 authz.invalid_request); the real status and code are in X-Authz-Status and X-Authz-Error",
                        ),
                        reply(
                            404,
                            "The caller is not a trusted proxy (decision.callers): no such route",
                        ),
                    ]
                },
            },
            guard: Guard::Proxies,
            handler: get(nginx::handle),
        },
        Endpoint {
            doc: Doc {
                method: "GET",
                base: Base::Decision,
                path: "_/nginx/denied",
                tag: "decisions",
                summary: "Renders a denial nginx captured (X-Authz-Status, X-Authz-Error) for the client",
                params: const {
                    &[
                        param(
                            "X-Authz-Status",
                            In::Header,
                            true,
                            "Real status of the denial (400-599)",
                        ),
                        param(
                            "X-Authz-Error",
                            In::Header,
                            true,
                            "authz.* code of the denial",
                        ),
                    ]
                },
                responses: const { &[reply(400, "The captured status and {\"errors\":[code]}")] },
            },
            guard: Guard::Proxies,
            handler: any(nginx::denied),
        },
        Endpoint {
            doc: Doc {
                method: "GET",
                base: Base::Decision,
                path: "_/forward-auth",
                tag: "decisions",
                summary: "Traefik forwardAuth: decides on X-Forwarded-Method and X-Forwarded-Uri",
                params: const {
                    &[
                        param(
                            "X-Forwarded-Method",
                            In::Header,
                            true,
                            "Method of the original request",
                        ),
                        param(
                            "X-Forwarded-Uri",
                            In::Header,
                            true,
                            "Path and query of the original request",
                        ),
                    ]
                },
                responses: DECISION_RESPONSES,
            },
            guard: Guard::Proxies,
            handler: any(forward_auth::handle),
        },
        grpc_endpoint(grpc::CHECK_V3),
        grpc_endpoint(grpc::CHECK_V2),
        Endpoint {
            doc: Doc {
                method: "GET",
                base: Base::Decision,
                path: "{*path}",
                tag: "decisions",
                summary: "Barong's decision endpoint (Envoy ext_authz): any method, the original path after the prefix",
                params: key_headers,
                responses: DECISION_RESPONSES,
            },
            guard: Guard::Proxies,
            handler: any(barong::handle),
        },
        Endpoint {
            doc: Doc {
                method: "GET",
                base: Base::Decision,
                path: "/",
                tag: "decisions",
                summary: "Barong's decision endpoint for the root path: any method",
                params: key_headers,
                responses: DECISION_RESPONSES,
            },
            guard: Guard::Proxies,
            handler: any(barong::handle),
        },
    ]
}
