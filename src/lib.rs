//! Portcullis: an authentication and authorization gateway for trading platforms, a drop-in
//! replacement for Barong. See DESIGN.md for the picture; `gate` is the heart.
//!
//! # Layers
//!
//! Imports point down this list only, and no two modules import each other
//! (`scripts/layering.py` checks it in CI):
//!
//! - `cli`, `server`: entry points, the only places that know every part;
//! - `app`: the builder that owns the pieces and hands each adapter its narrow state;
//! - `fronts`, `api`: adapters, HTTP or gRPC in, the gate or a service, HTTP out;
//! - `services`, `audit`, `policies`: use cases shared by handlers and the CLI;
//! - `gate`: the decision, pure steps over a policy snapshot and two ports;
//! - `authn`, `jwt`, `events`: credentials, tokens, the outbox and mailer;
//! - `store` (all SQL), `kv` (Redis);
//! - `domain`, `net`, `config`, `routes`, `crypto`, `cache`, `telemetry`: types and parsing.

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
pub mod uploads;
