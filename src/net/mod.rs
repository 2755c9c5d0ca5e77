//! What the network tells us about a request: the client's address and its path, both taken
//! apart the same careful way for every front.

pub mod client_ip;
pub mod cors;
pub mod form;
#[cfg(any(test, feature = "fuzzing"))]
pub mod front_models;
#[cfg(test)]
mod fuzz;
pub mod headers;
pub mod method;
pub mod outbound;
pub mod path;
