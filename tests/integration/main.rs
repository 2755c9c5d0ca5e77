//! Integration tests: Portcullis against real Postgres, Redis and nginx. Each test makes its
//! own database and Redis namespace (see `support`).

mod support;

mod admin;
mod api_keys;
mod auth0;
mod backoffice;
mod backoffice_gate;
mod caching;
mod cli;
mod client_address;
mod connections;
mod database_failover;
mod events;
mod examples;
mod failures;
mod fronts;
mod grpc;
mod hostile_input;
mod identity;
mod kyc;
mod kyc_flow;
mod mail;
mod nginx;
mod policy;
mod redis_modes;
mod resource;
mod resource_api_keys;
mod resource_documents;
mod resource_journey;
mod resource_otp;
mod resource_phones;
mod resource_service_accounts;
mod sessions;
mod store_tls;
