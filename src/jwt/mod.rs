//! Tokens: the signing key (loaded, or generated for development), compact JWS signing and
//! verification, Barong's session claims, and the JWKS that upstreams verify with.
//!
//! Signing uses aws-lc-rs directly with a key parsed once at start: jsonwebtoken's encoder
//! re-parses the private key on every call, which is most of the cost of a signature.
//! Verifying, of our tokens and of Auth0's, goes through jsonwebtoken in `verify`.

pub mod keys;
pub mod token;
pub mod verify;

pub use keys::SigningKey;
pub use token::{Bearer, Issuer, MintedToken};
pub use verify::VerifyError;
