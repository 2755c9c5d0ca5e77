//! Guards in front of the auth API: the same gate the decision fronts use.
//!
//! Identity and public routes are reachable without identity, but restrictions still apply
//! to them (blocklogin only matters on the routes that open a session), exactly as they would
//! behind Envoy ([`restrictions`]). Resource routes need an identified user ([`subject`]): a
//! Bearer token we minted, as Envoy forwards a request it had us decide, or, reached directly,
//! the gate's decision on the request itself. The guards resolve the client's address once and
//! leave it in the request for the handler ([`ClientAddr`]), with the user ([`Authenticated`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::authn::api_keys::ApiKeyHeaders;
use crate::gate::clock::Now;
use crate::gate::{Access, Denial, Facts, Gate};
use crate::net::client_ip::ClientIpResolver;
use crate::net::path::public_path;
use crate::net::respond::error_response;

/// The client's address as the guard resolved it (see `net::client_ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// What the guard uses. Cheap to clone.
#[derive(Clone)]
pub struct GuardState(Arc<Guarding>);

pub struct Guarding {
    pub gate: Arc<Gate>,
    /// The session cookie's name (`session.cookie_name`).
    pub cookie_name: String,
    pub client_ip: Arc<ClientIpResolver>,
    /// `api.mount`: where this service serves the auth API.
    pub mount: String,
    /// `api.public_prefix`: where clients see it, as rules name it.
    pub public_prefix: String,
}

impl GuardState {
    pub fn new(guarding: Guarding) -> GuardState {
        GuardState(Arc::new(guarding))
    }
}

impl Guarding {
    /// The client's address, or the refusal of a forwarded-for chain that cannot be read.
    fn client(&self, peer: SocketAddr, request: &Request) -> Result<IpAddr, Denial> {
        self.client_ip
            .resolve(peer.ip(), request.headers())
            .map_err(|_| Denial::INVALID_FORWARDED_FOR)
    }

    /// The public path (as rules see it) of a request to our own API at `request_path`.
    pub fn public_path_of(&self, request_path: &str) -> String {
        public_path(&self.mount, &self.public_prefix, request_path)
    }
}

/// Restrictions (whitelist, maintenance, blacklist, blocklogin) for the request's public path.
pub async fn restrictions(
    State(guard): State<GuardState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let ip = match guard.0.client(peer, &request) {
        Ok(ip) => ip,
        Err(denial) => return refuse(denial),
    };
    let public_path = guard.0.public_path_of(request.uri().path());
    // Restrictions look at the address and the path only.
    let facts = Facts {
        verb: request.method().as_str(),
        path: &public_path,
        query: None,
        ip,
        user_agent: "",
        session_id: None,
        bearer: None,
        csrf_token: None,
        api_key: ApiKeyHeaders::default(),
    };
    let policy = guard.0.gate.policy.current();
    if let Err(denial) = guard.0.gate.check_restrictions(&policy, &facts) {
        return refuse(denial);
    }
    drop(policy);
    request.extensions_mut().insert(ClientAddr(ip));
    next.run(request).await
}

fn refuse(denial: Denial) -> Response {
    error_response(denial.status, denial.code)
}

/// The user a resource request is for: the `uid` of the token or of the gate's subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub uid: String,
}

/// An identified user, or the answer Barong gives: a Bearer token that does not verify is
/// 401 `jwt.decode_and_verify`; without one the gate decides on the request (its `authz.*`
/// denials, CSRF included), as it would for Envoy.
pub async fn subject(
    State(guard): State<GuardState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let ip = match guard.0.client(peer, &request) {
        Ok(ip) => ip,
        Err(denial) => return refuse(denial),
    };
    let uid = match bearer(request.headers()) {
        // A Back Office access token: its family must be live and its user may hold a token,
        // checked on every request (a sign-out or a ban takes effect at once).
        Some(token) if let Some(claims) = guard.0.gate.backoffice_claims(token, Now::system()) => {
            match guard.0.gate.backoffice_subject(&claims).await {
                Ok(subject) => Some(subject.record.uid.clone()),
                Err(denial) if denial.status.is_server_error() => return refuse(denial),
                // Barong's answer for a token it will not take.
                Err(_) => None,
            }
        }
        Some(token) => {
            match guard
                .0
                .gate
                .issuer
                .verify(token, Some("session"), Now::system().unix_secs())
            {
                Ok(claims) => claims
                    .get("uid")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                Err(_) => None,
            }
        }
        None => {
            let public_path = guard.0.public_path_of(request.uri().path());
            let Some(verb) = crate::net::method::canonical(request.method().as_str()) else {
                return refuse(Denial::INVALID_REQUEST);
            };
            let facts = Facts::from_headers(
                verb,
                &public_path,
                request.uri().query(),
                ip,
                request.headers(),
                &guard.0.cookie_name,
            );
            if facts.session_id.is_none() && !facts.api_key.any_present() {
                // No credential at all: Barong's resource API answers for its missing header.
                return error_response(http::StatusCode::UNAUTHORIZED, "jwt.decode_and_verify");
            }
            // The decision alone: our own handlers need the subject, not a token to forward.
            match guard.0.gate.decide(&facts, Now::system()).await {
                Ok(access) => match access {
                    Access::Subject { subject, .. } => Some(subject.record.uid.clone()),
                    // A pass rule over the resource API names nobody.
                    Access::Anonymous => None,
                },
                Err(denial) => return refuse(denial),
            }
        }
    };
    let Some(uid) = uid else {
        return error_response(http::StatusCode::UNAUTHORIZED, "jwt.decode_and_verify");
    };
    request.extensions_mut().insert(ClientAddr(ip));
    request.extensions_mut().insert(Authenticated { uid });
    next.run(request).await
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}
