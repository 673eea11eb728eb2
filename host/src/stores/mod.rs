//! Where records land: the metadata store (tenants, keys, the list view),
//! the raw store (NDJSON batches), and folders of small objects beside the
//! raw logs (`blobs`: dead letters, shared plugins). The search index is in
//! `search`.
//!
//! **Invariant:** only `stores::sql`, `stores::accounts`, `stores::sqlite`
//! and `stores::postgres` know sqlx; only `stores::raw` and `stores::blobs` know
//! object_store. Stores depend on `model`, `error` and `config` alone.

mod accounts;
pub mod blobs;
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

/// A record bound for the metadata store, and whether the index has it.
#[derive(Debug, Clone, Copy)]
pub struct MetaRow<'a> {
    pub record: &'a LogRecord,
    pub indexed: bool,
}

/// Structured metadata: tenants, keys and one row per log record.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Creates the tenant on `plan`; false if it already existed.
    async fn create_tenant(&self, slug: &str, plan: &str) -> Result<bool, BackendError>;
    /// Moves the tenant to `plan`; false if there is no such tenant.
    async fn set_plan(&self, slug: &str, plan: &str) -> Result<bool, BackendError>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>, BackendError>;
    async fn get_tenant(&self, slug: &str) -> Result<Option<Tenant>, BackendError>;
    async fn insert_key(&self, key: &ApiKey) -> Result<(), BackendError>;
    async fn find_key(&self, hash: &str) -> Result<Option<ApiKey>, BackendError>;
    async fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, BackendError>;
    /// Revokes a key of `tenant`; false if there is no such key.
    async fn revoke_key(&self, tenant: &str, id: &str) -> Result<bool, BackendError>;

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
    async fn ping(&self) -> Result<(), BackendError>;
}

/// Opens the metadata store the settings name (`DATABASE_URL`).
pub async fn open_metadata(backend: &MetadataBackend) -> Result<Arc<dyn MetadataStore>, BackendError> {
    Ok(match backend {
        MetadataBackend::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path).await?),
        MetadataBackend::Postgres(url) => Arc::new(postgres::PgStore::open(url).await?),
    })
}
