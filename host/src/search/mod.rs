//! Full-text search: the query language, the `SearchIndex` trait, its
//! embedded implementation (Tantivy, one index per tenant) and its
//! distributed one (OpenSearch, one index per tenant).

pub mod opensearch;
pub mod query;
pub mod service;
pub mod tantivy;

use async_trait::async_trait;

use crate::model::{Cursor, LogFilter, LogRecord};
pub use query::{Query, QueryError};

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index: {0}")]
    Tantivy(#[from] ::tantivy::TantivyError),
    #[error("index directory: {0}")]
    Directory(String),
    #[error("index i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt index document: {0}")]
    Corrupt(String),
    #[error("index task failed: {0}")]
    Task(String),
    #[error("opensearch: {0}")]
    OpenSearch(String),
}

/// A record the index refused for good (a mapping conflict, a term too
/// long): it stays in the metadata and raw stores, and retrying would not
/// help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub id: String,
    pub reason: String,
}

/// A record bound for the index.
#[derive(Debug, Clone, Copy)]
pub struct IndexRow<'a> {
    pub record: &'a LogRecord,
    /// False only when the id is known to be new (made by the host for a
    /// first delivery): then no earlier copy needs replacing.
    pub may_exist: bool,
}

/// One page of ids, newest first by (timestamp, id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdPage {
    pub total: u64,
    pub ids: Vec<String>,
    pub next_cursor: Option<Cursor>,
}

#[async_trait]
pub trait SearchIndex: Send + Sync + 'static {
    /// Creates the tenant's index (idempotent).
    async fn provision(&self, tenant: &str) -> Result<(), IndexError>;
    /// Adds or replaces `rows` (by id); they are durable and searchable when
    /// this returns, except the ones returned as rejected. Transient
    /// failures are errors: the caller retries the whole batch.
    async fn index(&self, tenant: &str, rows: &[IndexRow<'_>]) -> Result<Vec<Rejected>, IndexError>;
    async fn search(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<IdPage, IndexError>;
    /// The whole record, as indexed.
    async fn get(&self, tenant: &str, id: &str) -> Result<Option<LogRecord>, IndexError>;
    async fn ping(&self) -> Result<(), IndexError>;
}
