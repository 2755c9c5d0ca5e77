//! What the identity handlers (and the KYC callback, which shares their limits and caller
//! handling) use: the stores, the credential machinery, events and outbound calls. Not the
//! gate, the upstreams or the metrics registry. Cheap to clone; handlers take it as axum
//! state.

use std::sync::Arc;

use crate::authn::auth0::Auth0;
use crate::authn::passwords::Hasher;
use crate::authn::rate_limit::RateLimiter;
use crate::authn::sessions::Sessions;
use crate::config::Settings;
use crate::crypto::SecretBox;
use crate::events::Events;
use crate::jwt::Issuer;
use crate::kv::Kv;
use crate::net::client_ip::ClientIpResolver;
use crate::net::cors::Cors;
use crate::net::outbound::Outbound;
use crate::store::Store;

#[derive(Clone)]
pub struct IdentityState(Arc<Identity>);

pub struct Identity {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub kv: Kv,
    pub sessions: Sessions,
    pub hasher: Hasher,
    pub rate_limiter: RateLimiter,
    pub events: Arc<Events>,
    /// Calls to other services (captcha, Auth0).
    pub outbound: Outbound,
    pub auth0: Arc<Auth0>,
    /// The compiled `cors.*` policy (login forms from other sites are refused by it).
    pub cors: Arc<Cors>,
    pub issuer: Arc<Issuer>,
    pub secrets: Arc<SecretBox>,
    /// For routes the restrictions guard does not cover (see `common::Caller`).
    pub client_ip: Arc<ClientIpResolver>,
    /// The caller's country for activity records (`None`: no database configured).
    pub geoip: Option<Arc<crate::net::geoip::GeoIp>>,
}

impl IdentityState {
    pub fn new(identity: Identity) -> IdentityState {
        IdentityState(Arc::new(identity))
    }
}

impl std::ops::Deref for IdentityState {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

impl Identity {
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }
}
