//! Full-text search: the query language, the `SearchIndex` trait and its
//! embedded implementation (Tantivy, one index per tenant).

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
    /// Adds or replaces `docs` (by id); they are durable and searchable when
    /// this returns.
    async fn index(&self, tenant: &str, rows: &[IndexRow<'_>]) -> Result<(), IndexError>;
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
