//! `/identity`: what a person does before and around logging in.

pub mod sessions;

use super::Endpoint;

pub fn endpoints() -> Vec<Endpoint> {
    sessions::endpoints()
}
