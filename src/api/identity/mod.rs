//! `/identity`: what a person does before and around logging in: signup, email confirmation,
//! password reset, login (password or Auth0), logout, whitelink redemption.

pub mod auth0;
pub mod common;
pub mod sessions;
pub mod tokens;
pub mod users;

use crate::app::App;
use crate::routes::Endpoint;

pub fn endpoints() -> Vec<Endpoint<App>> {
    let mut all = sessions::endpoints();
    all.extend(auth0::endpoints());
    all.extend(users::endpoints());
    all.extend(tokens::endpoints());
    all
}
