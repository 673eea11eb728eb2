//! LoggerHub: a multi-tenant log platform in one binary.
//!
//! Data flows `api` → `ingest` → `queue` → `pipeline` (WASM stages run by
//! `runtime`) → `stores` and `search`; `server` wires them. See
//! docs/ARCHITECTURE.md.

pub mod api;
pub mod config;
pub mod ingest;
pub mod model;
pub mod pipeline;
pub mod queue;
pub mod runtime;
pub mod search;
pub mod server;
pub mod stores;
pub mod telemetry;
pub mod tenants;
