//! What the network tells us about a request, and the plain HTTP pieces every adapter shares:
//! the client's address (and where it is, from GeoIP) and its path (taken apart the same
//! careful way for every front), methods, headers, forms, CORS, calls to other services, and
//! the error body.

pub mod client_ip;
pub mod cors;
pub mod form;
#[cfg(any(test, feature = "fuzzing"))]
pub mod front_models;
#[cfg(test)]
pub(crate) mod fuzz;
pub mod geoip;
pub mod headers;
pub mod method;
pub mod multipart;
pub mod outbound;
pub mod path;
pub mod respond;
