//! The auth API (identity, public, resource, admin, Back Office): handlers, their parameters, entities and
//! errors. Each endpoint is declared once, as a `routes::Endpoint` (its documentation, guard
//! and handler); the server builds the router and the OpenAPI document from them.

pub mod admin;
pub mod backoffice;
pub mod entities;
pub mod error;
pub mod guard;
pub mod identity;
pub mod kyc;
pub mod multipart;
pub mod openapi;
pub mod pagination;
pub mod params;
pub mod profiles;
pub mod public;
pub mod readers;
pub mod resource;

use std::sync::Arc;

use axum::extract::FromRef;

use crate::config::Settings;
use crate::routes::Endpoint;
use identity::IdentityState;

/// The auth API's own endpoints (identity, public, KYC callbacks), for any router state the
/// handlers' own states come from. The OpenAPI endpoints are added by the server, which alone
/// knows every route ([`openapi::endpoints`]).
pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    IdentityState: FromRef<S>,
    resource::ResourceState: FromRef<S>,
    admin::AdminState: FromRef<S>,
    backoffice::BackOfficeState: FromRef<S>,
    Arc<Settings>: FromRef<S>,
{
    let mut all = Vec::new();
    all.extend(identity::endpoints());
    all.extend(public::endpoints());
    all.extend(kyc::endpoints());
    all.extend(resource::endpoints());
    all.extend(admin::endpoints());
    all.extend(backoffice::endpoints());
    all
}
