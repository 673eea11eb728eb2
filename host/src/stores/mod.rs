//! Where records land: the metadata store (tenants, keys, the list view)
//! and the raw store (NDJSON batches). The search index is in `search`.

pub mod raw;
pub mod sqlite;

use async_trait::async_trait;

use crate::model::{Cursor, LogFilter, LogRecord, Page, Stats};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("object store: {0}")]
    Object(#[from] object_store::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    #[error("invalid store url: {0}")]
    BadUrl(String),
}

/// A tenant as the metadata store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub slug: String,
    pub created_at: i64,
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
    /// Creates the tenant; false if it already existed.
    async fn create_tenant(&self, slug: &str) -> Result<bool, StoreError>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    async fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    async fn find_key(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    async fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key of `tenant`; false if there is no such key.
    async fn revoke_key(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;

    /// Inserts records, skipping ids already present (replays are no-ops).
    /// Returns how many were new.
    async fn insert_logs(&self, rows: &[MetaRow<'_>]) -> Result<u64, StoreError>;
    /// Newest first by (timestamp, id).
    async fn list_logs(
        &self,
        tenant: &str,
        filter: &LogFilter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError>;
    /// The records of `ids` that exist, in no particular order.
    async fn get_logs(&self, tenant: &str, ids: &[String]) -> Result<Vec<LogRecord>, StoreError>;
    async fn stats(&self, tenant: &str, filter: &LogFilter, interval_ns: i64) -> Result<Stats, StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
}
