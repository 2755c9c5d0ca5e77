//! The header names Portcullis reads and writes, as constants: looking a header up by a
//! `&str` parses and hashes the name on every call, which shows on the hot path.

use http::HeaderName;

pub const X_AUTH_APIKEY: HeaderName = HeaderName::from_static("x-auth-apikey");
pub const X_AUTH_NONCE: HeaderName = HeaderName::from_static("x-auth-nonce");
pub const X_AUTH_SIGNATURE: HeaderName = HeaderName::from_static("x-auth-signature");
pub const X_CSRF_TOKEN: HeaderName = HeaderName::from_static("x-csrf-token");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
pub const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
pub const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
pub const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub const TRUE_CLIENT_IP: HeaderName = HeaderName::from_static("true-client-ip");
pub const X_AUTHZ_STATUS: HeaderName = HeaderName::from_static("x-authz-status");
pub const X_AUTHZ_ERROR: HeaderName = HeaderName::from_static("x-authz-error");
pub const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
pub const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
