//! Where records land: the metadata store (`AccountStore`: tenants and
//! keys; `MetadataStore`: the rows of the list view, their counts, usage),
//! the raw store (NDJSON batches), folders of small objects beside the raw
//! logs (`blobs`), and the dead letters kept in one (`dead_letters`). The
//! search index is in `search`.
//!
//! **Invariant:** only `stores::sql`, `stores::accounts`, `stores::sqlite`
//! and `stores::postgres` know sqlx; only `stores::raw` and `stores::blobs` know
//! object_store. Stores depend on `model`, `error` and `config` alone.

mod accounts;
pub mod blobs;
pub mod dead_letters;
pub mod postgres;
pub mod raw;
mod sql;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::MetadataBackend;
use crate::error::BackendError;
use crate::model::{Cursor, LogFilter, LogRecord, Page, Stats};

/// A tenant as the metadata store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub slug: String,
    pub created_at: i64,
    /// The name of the plan it is on (`tenants::plans`).
    pub plan: String,
    pub state: TenantState,
    /// When `state` last changed (unix ns; 0 if never).
    pub state_since: i64,
}

/// Where a tenant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TenantState {
    #[default]
    Active,
    /// Ingest is refused; reads still work.
    Suspended,
    /// Its keys no longer work and its data is being removed from every
    /// store; the tenant disappears when that is done.
    Deleting,
}

impl TenantState {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::Suspended => "suspended",
            TenantState::Deleting => "deleting",
        }
    }

    /// A stored state; anything unknown reads as suspended, the state that
    /// lets the fewest things happen without losing data.
    pub fn parse(s: &str) -> TenantState {
        match s {
            "active" => TenantState::Active,
            "deleting" => TenantState::Deleting,
            _ => TenantState::Suspended,
        }
    }
}

/// An API key as stored: only the SHA-256 of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public id, shown in listings and used to revoke.
    pub id: String,
    pub tenant: String,
    pub hash: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub revoked: bool,
}

/// What a tenant used on one day (UTC), added to as it happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Records and body bytes ingest accepted.
    pub logs: u64,
    pub bytes: u64,
    /// CPU time of the tenant's own plugins, in microseconds.
    pub plugin_cpu_us: u64,
    pub dead_letters: u64,
    /// Records and bytes the pipeline stored (what the tenant's plugins
    /// made of what was accepted: more, when they add records).
    pub stored_logs: u64,
    pub stored_bytes: u64,
}

impl Usage {
    pub fn is_zero(&self) -> bool {
        *self == Usage::default()
    }

    pub fn add(&mut self, o: &Usage) {
        self.logs = self.logs.saturating_add(o.logs);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.plugin_cpu_us = self.plugin_cpu_us.saturating_add(o.plugin_cpu_us);
        self.dead_letters = self.dead_letters.saturating_add(o.dead_letters);
        self.stored_logs = self.stored_logs.saturating_add(o.stored_logs);
        self.stored_bytes = self.stored_bytes.saturating_add(o.stored_bytes);
    }
}

/// What a tenant's data takes in each store, as last measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    pub metadata: u64,
    pub raw: u64,
    pub index: u64,
}

/// One day of a tenant's usage; `day` counts days since 1970-01-01 (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageDay {
    pub day: i64,
    pub used: Usage,
    /// The last measure taken that day, if any.
    pub stored: Option<Stored>,
}

/// A record bound for the metadata store, and whether the index has it.
#[derive(Debug, Clone, Copy)]
pub struct MetaRow<'a> {
    pub record: &'a LogRecord,
    pub indexed: bool,
    /// The record's entry was delivered before (a redelivery): the row may
    /// be stored already.
    pub may_exist: bool,
}

/// Accounts: tenants (plan, state) and their API keys. Only `tenants`
/// (and the tenant deletion job) reach them.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Creates the tenant on `plan`; false if it already existed.
    async fn create_tenant(&self, slug: &str, plan: &str) -> Result<bool, BackendError>;
    /// Moves the tenant to `plan`; false if there is no such tenant.
    async fn set_plan(&self, slug: &str, plan: &str) -> Result<bool, BackendError>;
    /// Moves the tenant to `state` (and stamps when); false if there is no
    /// such tenant.
    async fn set_state(&self, slug: &str, state: TenantState) -> Result<bool, BackendError>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>, BackendError>;
    async fn get_tenant(&self, slug: &str) -> Result<Option<Tenant>, BackendError>;
    async fn insert_key(&self, key: &ApiKey) -> Result<(), BackendError>;
    async fn find_key(&self, hash: &str) -> Result<Option<ApiKey>, BackendError>;
    async fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, BackendError>;
    /// Revokes a key of `tenant`; false if there is no such key.
    async fn revoke_key(&self, tenant: &str, id: &str) -> Result<bool, BackendError>;
    /// Saves `s` under its name, replacing the tenant's search of that
    /// name; a new name only while the tenant keeps fewer than `max`.
    async fn put_saved_search(&self, s: &SavedSearch, max: usize) -> Result<Saved, BackendError>;
    /// The tenant's saved searches, by name.
    async fn list_saved_searches(&self, tenant: &str) -> Result<Vec<SavedSearch>, BackendError>;
    async fn get_saved_search(&self, tenant: &str, name: &str) -> Result<Option<SavedSearch>, BackendError>;
    /// False if the tenant has no search of that name.
    async fn delete_saved_search(&self, tenant: &str, name: &str) -> Result<bool, BackendError>;
}

/// A search a tenant keeps under a name: its query and its filters (a JSON
/// object `tenants::saved` reads and writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSearch {
    pub tenant: String,
    pub name: String,
    pub query: String,
    pub filters: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What saving a search did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Created,
    Replaced,
    /// A new name, and the tenant keeps `max` already.
    Full,
}

/// Structured metadata: one row per log record, the counts kept with
/// them, and each tenant's usage per day.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Inserts records, skipping ids already present (replays are no-ops).
    /// Returns how many were new.
    async fn insert_logs(&self, rows: &[MetaRow<'_>]) -> Result<u64, BackendError>;
    /// Newest first by (timestamp, id).
    async fn list_logs(
        &self,
        tenant: &str,
        filter: &LogFilter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, BackendError>;
    /// The records of `ids` that exist, in no particular order.
    async fn get_logs(&self, tenant: &str, ids: &[String]) -> Result<Vec<LogRecord>, BackendError>;
    async fn stats(&self, tenant: &str, filter: &LogFilter, interval_ns: i64) -> Result<Stats, BackendError>;
    /// Deletes up to `max` of the tenant's records whose timestamp is
    /// before `before` (unix ns), oldest first; returns how many.
    async fn delete_logs_before(&self, tenant: &str, before: i64, max: usize) -> Result<u64, BackendError>;
    /// Deletes up to `max` of the tenant's records; once none is left, its
    /// keys, its usage and the tenant itself. True once the tenant is gone.
    async fn purge_tenant(&self, tenant: &str, max: usize) -> Result<bool, BackendError>;
    /// Bytes the tenant's records take in this store (an estimate where the
    /// database cannot say per tenant).
    async fn stored_bytes(&self, tenant: &str) -> Result<u64, BackendError>;

    /// Adds to each tenant's usage of a day (tenant, day, what was used).
    async fn add_usage(&self, rows: &[(String, i64, Usage)]) -> Result<(), BackendError>;
    /// Records what the tenant's data takes, as measured on `day`.
    async fn set_stored(&self, tenant: &str, day: i64, stored: Stored) -> Result<(), BackendError>;
    /// The tenant's usage from `from_day` on, oldest first (days with
    /// nothing recorded are absent).
    async fn usage(&self, tenant: &str, from_day: i64) -> Result<Vec<UsageDay>, BackendError>;
    async fn ping(&self) -> Result<(), BackendError>;
}

/// The metadata database as opened: its accounts and its records, over
/// one connection pool.
#[derive(Clone)]
pub struct Metadata {
    pub accounts: Arc<dyn AccountStore>,
    pub logs: Arc<dyn MetadataStore>,
}

impl Metadata {
    fn of<S: AccountStore + MetadataStore>(store: S) -> Metadata {
        let store = Arc::new(store);
        Metadata {
            accounts: store.clone(),
            logs: store,
        }
    }
}

/// Opens the metadata store the settings name (`DATABASE_URL`).
pub async fn open_metadata(backend: &MetadataBackend) -> Result<Metadata, BackendError> {
    Ok(match backend {
        MetadataBackend::Sqlite(path) => Metadata::of(sqlite::SqliteStore::open(path).await?),
        MetadataBackend::Postgres(url) => Metadata::of(postgres::PgStore::open(url).await?),
    })
}
