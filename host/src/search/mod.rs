//! Full-text search: the query language, the `SearchIndex` trait, its
//! embedded implementation (Tantivy, one index per tenant) and its
//! distributed one (OpenSearch, one index per tenant), and the read paths
//! the API serves (`search::service`).
//!
//! **Invariant:** only `search::tantivy` knows Tantivy and only
//! `search::opensearch` knows the OpenSearch client and query DSL. Search
//! depends on `model`, `error`, `config` and `stores` (the read paths join
//! index hits with the metadata and raw stores).

pub mod numbers;
pub mod opensearch;
pub mod query;
pub mod service;
pub mod tail;
pub mod tantivy;
pub mod terms;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::IndexBackend;
use crate::error::BackendError;
use crate::model::{Cursor, LogFilter, LogRecord};
pub use numbers::{Numbers, Summary};
pub use query::{Query, QueryError};
pub use terms::{SeriesBucket, Terms, TermsField};

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
    /// Matches over all pages; a lower bound when `total_is_lower_bound`
    /// (the index stopped counting at [`crate::model::TOTAL_BOUND`]).
    pub total: u64,
    pub total_is_lower_bound: bool,
    pub ids: Vec<String>,
    pub next_cursor: Option<Cursor>,
}

#[async_trait]
pub trait SearchIndex: Send + Sync + 'static {
    /// Creates the tenant's index (idempotent).
    async fn provision(&self, tenant: &str) -> Result<(), BackendError>;
    /// Adds or replaces `rows` (by id); they are durable and searchable when
    /// this returns, except the ones returned as rejected. Transient
    /// failures are errors: the caller retries the whole batch.
    async fn index(&self, tenant: &str, rows: &[IndexRow<'_>]) -> Result<Vec<Rejected>, BackendError>;
    /// A page of ids; the total counts every match when `exact_total`,
    /// else may stop at [`crate::model::TOTAL_BOUND`].
    async fn search(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        cursor: Option<&Cursor>,
        limit: usize,
        exact_total: bool,
    ) -> Result<IdPage, BackendError>;
    /// The matches of `query` within `filter`, per bucket of `interval_ns`
    /// and level, oldest first: a search's histogram. At most
    /// [`crate::model::STATS_MAX_BUCKETS`] + 1 buckets (the caller refuses
    /// more), whatever the range.
    async fn histogram(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        interval_ns: i64,
    ) -> Result<Vec<(i64, crate::model::LevelCounts)>, BackendError>;
    /// The values of `field` in the matches of `query` within `filter`:
    /// the `size` most common (at most [`terms::MAX_TERMS_SIZE`]), with
    /// every match counted; with `interval_ns`, also per time bucket of
    /// it (`Terms::series`).
    async fn terms(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        field: &TermsField,
        size: usize,
        interval_ns: Option<i64>,
    ) -> Result<Terms, BackendError>;
    /// Statistics of the number attribute `key` over the matches: of all,
    /// of each of `group`'s most common values, or per bucket of
    /// `interval_ns` (`numbers`).
    async fn numbers(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        key: &str,
        group: Option<(&TermsField, usize)>,
        interval_ns: Option<i64>,
    ) -> Result<Numbers, BackendError>;
    /// The whole record, as indexed.
    async fn get(&self, tenant: &str, id: &str) -> Result<Option<LogRecord>, BackendError>;
    /// Deletes up to `max` of the tenant's records whose timestamp is before
    /// `before` (unix ns); returns how many (at most `max`).
    async fn delete_before(&self, tenant: &str, before: i64, max: usize) -> Result<u64, BackendError>;
    /// Removes the tenant's index and everything in it (idempotent).
    async fn drop_tenant(&self, tenant: &str) -> Result<(), BackendError>;
    /// Bytes the tenant's index takes.
    async fn stored_bytes(&self, tenant: &str) -> Result<u64, BackendError>;
    async fn ping(&self) -> Result<(), BackendError>;
}

/// Opens the index the settings name (`OPENSEARCH_URL`).
pub fn open(backend: &IndexBackend) -> Result<Arc<dyn SearchIndex>, BackendError> {
    Ok(match backend {
        IndexBackend::Tantivy(dir) => Arc::new(self::tantivy::TantivyIndex::open(dir)?),
        IndexBackend::OpenSearch { url, prefix } => Arc::new(self::opensearch::OpenSearchIndex::open(url, prefix)?),
    })
}
