//! `/identity`: what a person does before and around logging in: signup, email confirmation,
//! password reset, login (password or Auth0), logout, whitelink redemption.

pub mod auth0;
pub mod common;
pub mod sessions;
mod state;
pub mod tokens;
pub mod users;

use crate::routes::Endpoint;
pub use state::{Identity, IdentityState};

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    IdentityState: axum::extract::FromRef<S>,
{
    let mut all = sessions::endpoints();
    all.extend(auth0::endpoints());
    all.extend(users::endpoints());
    all.extend(tokens::endpoints());
    all
}
