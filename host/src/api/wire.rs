//! JSON shapes of the API, one type per request and response body: only
//! `api` knows them.
//!
//! By endpoint family: `logs` (ingest, search, the tail, stats), `admin`
//! (tenants, keys, plans), `plugins` (plugins and dead letters), `ops`
//! (health, readiness, usage).

mod admin;
mod logs;
mod ops;
mod plugins;

pub use admin::{
    CreateKey, CreateTenant, KeyList, NewKeyJson, PlanList, TenantCreated, TenantJson, TenantList, UpdateTenant,
};
pub use logs::{Accepted, DetailJson, PageJson, RecordIn, RecordJson, StatsJson, TailEvent};
pub use ops::{BackendReady, DayJson, Health, Ready, ReadyDetail, UsageJson, UsageLimits};
pub use plugins::{DeadLetterList, PluginList, PluginUploaded, Replayed, Rollback, RolledBack};
