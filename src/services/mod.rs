//! Use cases shared by the API handlers and the CLI: each one in one place, so that signup,
//! an Auth0 first login and `portcullis users create` cannot drift apart. A service takes the
//! pieces it uses (store, hasher, events, rules), never the whole node, and returns its own
//! error type; the API maps it to HTTP, the CLI prints it.
//!
//! Layering (DESIGN.md): below `api`/`fronts` and the CLI, above `gate`, `authn`, `events`
//! and `store`.

pub mod accounts;
pub mod api_keys;
pub mod backoffice;
pub mod documents;
pub mod kyc;
pub mod passwords;
