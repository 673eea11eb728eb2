//! LoggerHub: a multi-tenant log platform in one binary.
//!
//! Data flows `api` → `ingest` → `queue` → `pipeline` (WASM stages run by
//! `runtime`, plugins managed by `plugins`) → `stores` and `search`;
//! `server` wires them. `model`, `error` and `config` are the vocabulary
//! every module shares. See docs/ARCHITECTURE.md.

pub mod api;
pub mod config;
pub mod cpu;
pub mod error;
pub mod ingest;
pub mod model;
pub mod pipeline;
pub mod plugins;
pub mod queue;
pub mod runtime;
pub mod search;
pub mod server;
pub mod stores;
pub mod syslog;
pub mod telemetry;
pub mod tenants;
pub mod upkeep;
pub mod usage;
