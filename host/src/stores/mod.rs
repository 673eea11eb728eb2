//! Where records land: the metadata store (tenants, keys, the list view)
//! and the raw store (NDJSON batches). The search index is in `search`.

pub mod postgres;
pub mod raw;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

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

/// Opens the metadata store `DATABASE_URL` names: `postgres://…` for
/// PostgreSQL, `sqlite://<file>` for SQLite; `None` means the embedded
/// SQLite file in the data dir.
pub async fn open_metadata(url: Option<&str>, data_dir: &Path) -> Result<Arc<dyn MetadataStore>, StoreError> {
    match url {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            Ok(Arc::new(postgres::PgStore::open(u).await?))
        }
        Some(u) => match u.strip_prefix("sqlite://") {
            Some(path) => Ok(Arc::new(sqlite::SqliteStore::open(Path::new(path)).await?)),
            None => Err(StoreError::BadUrl(format!(
                "DATABASE_URL {u:?}: expected postgres://… or sqlite://…"
            ))),
        },
        None => Ok(Arc::new(
            sqlite::SqliteStore::open(&data_dir.join("metadata.db")).await?,
        )),
    }
}

/// A page of a list made from up to `limit + 1` hits, newest first: the
/// extra hit only says that there is a next page.
pub(crate) fn page(mut hits: Vec<LogRecord>, total: i64, limit: usize) -> Page {
    let next_cursor = if hits.len() > limit {
        hits.truncate(limit);
        hits.last().map(Cursor::of)
    } else {
        None
    };
    Page {
        total: u64::try_from(total).unwrap_or(0),
        hits,
        next_cursor,
    }
}

/// Counts `n` records of the stored level `level` into `stats`.
pub(crate) fn add_level(stats: &mut Stats, level: i64, n: i64) {
    if let Some(l) = u8::try_from(level).ok().and_then(crate::model::Level::from_u8) {
        let n = u64::try_from(n).unwrap_or(0);
        stats.by_level.push((l, n));
        stats.total += n;
    }
}

/// Attributes as a JSON object of strings, as both SQL stores keep them.
pub(crate) fn attributes_json(attrs: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = attrs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

pub(crate) fn attributes_from_json(json: &str) -> Result<Vec<(String, String)>, StoreError> {
    Ok(serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
        .map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))?
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}
