//! A refusal: the status and the `authz.*` code the client sees, with the catalogue of every
//! code the gate (and the fronts, before they call it) can answer with.

use http::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    pub status: StatusCode,
    pub code: &'static str,
}

impl Denial {
    const fn new(status: u16, code: &'static str) -> Denial {
        Denial {
            status: match StatusCode::from_u16(status) {
                Ok(s) => s,
                Err(_) => StatusCode::FORBIDDEN,
            },
            code,
        }
    }

    /// A restriction's answer: its category's code, with the row's status.
    pub fn restricted(status: u16, code: &'static str) -> Denial {
        Denial {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            code,
        }
    }

    /// Postgres or Redis could not answer: the decision fails closed.
    pub const UNAVAILABLE: Denial = Denial::new(503, "authz.unavailable");
    /// A path whose meaning proxies or upstreams disagree on (see `net::path::judge`).
    pub const INVALID_PATH: Denial = Denial::new(400, "authz.invalid_path");
    /// The original method or URI is missing, or the method is not one the gate knows.
    pub const INVALID_REQUEST: Denial = Denial::new(400, "authz.invalid_request");
    /// A trusted proxy's X-Forwarded-For cannot be read where it must be believed.
    pub const INVALID_FORWARDED_FOR: Denial = Denial::new(400, "authz.invalid_forwarded_for");
    /// The path is under a block rule.
    pub const PERMISSION_DENIED: Denial = Denial::new(401, "authz.permission_denied");
    pub const MISSING_CSRF: Denial = Denial::new(401, "authz.missing_csrf_token");
    pub const CSRF_MISMATCH: Denial = Denial::new(401, "authz.csrf_token_mismatch");
    /// No session, or (Barong) an API-key holder whose state may not hold a token.
    pub const INVALID_SESSION: Denial = Denial::new(401, "authz.invalid_session");
    pub const SESSION_MISMATCH: Denial = Denial::new(401, "authz.client_session_mismatch");
    pub const USER_NOT_ACTIVE: Denial = Denial::new(401, "authz.user_not_active");
    pub const INVALID_PERMISSION: Denial = Denial::new(401, "authz.invalid_permission");
    pub const INVALID_KEY_HEADERS: Denial = Denial::new(422, "authz.invalid_api_key_headers");
    /// No such key, or its holder is gone.
    pub const UNEXISTENT_KEY: Denial = Denial::new(401, "authz.unexistent_apikey");
    pub const NONCE_NOT_TIMESTAMP: Denial = Denial::new(401, "authz.nonce_not_valid_timestamp");
    /// Outside the window, or (with the replay guard) seen before.
    pub const NONCE_EXPIRED: Denial = Denial::new(401, "authz.nonce_expired");
    pub const INVALID_SIGNATURE: Denial = Denial::new(401, "authz.invalid_signature");
    pub const KEY_NOT_ACTIVE: Denial = Denial::new(401, "authz.apikey_not_active");
    pub const DISABLED_2FA: Denial = Denial::new(401, "authz.disabled_2fa");
    /// The address asked for too many unknown key ids lately (see `authn::api_keys`).
    pub const TOO_MANY_UNKNOWN_KEYS: Denial = Denial::new(429, "authz.too_many_attempts");
}
