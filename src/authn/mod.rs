//! Credentials: sessions and CSRF, API keys and their HMAC signatures, passwords, TOTP codes,
//! the KYC provider's callback signature, phone verification providers, and the rate limits
//! that keep guessing expensive.

pub mod api_keys;
pub mod auth0;
pub mod backoffice;
pub mod backoffice_2fa;
pub mod captcha;
pub mod kycaid;
pub mod passwords;
pub mod phones;
pub mod rate_limit;
pub mod sessions;
pub mod totp;
