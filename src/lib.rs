//! Portcullis: an authentication and authorization gateway for trading platforms, a drop-in
//! replacement for Barong. See DESIGN.md for the picture; `gate` is the heart.

pub mod api;
pub mod app;
pub mod audit;
pub mod authn;
pub mod cache;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod events;
pub mod fronts;
pub mod gate;
pub mod jwt;
pub mod kv;
pub mod net;
pub mod policies;
pub mod routes;
pub mod server;
pub mod services;
pub mod store;
pub mod telemetry;
