//! The read paths: list (metadata), search (index → ids → metadata),
//! detail (index, else rebuilt from the raw store) and stats. Every read
//! takes the tenant from the caller's key, never from the request.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Numbers, Query, SearchIndex, Terms, TermsField};
use crate::error::BackendError;
use crate::model::{Cursor, LogFilter, LogRecord, Page, Stats, TOTAL_BOUND};
use crate::stores::MetadataStore;
use crate::stores::raw::RawStore;

/// Which store answered a detail read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Index,
    Raw,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Index => "index",
            Source::Raw => "raw",
        }
    }
}

pub struct Reader {
    meta: Arc<dyn MetadataStore>,
    raw: RawStore,
    index: Arc<dyn SearchIndex>,
}

impl Reader {
    pub fn new(meta: Arc<dyn MetadataStore>, raw: RawStore, index: Arc<dyn SearchIndex>) -> Self {
        Reader { meta, raw, index }
    }

    /// The list view: the metadata store alone, so it works without the
    /// index.
    pub async fn list(
        &self,
        tenant: &str,
        f: &LogFilter,
        cursor: Option<&Cursor>,
        limit: usize,
        exact_total: bool,
    ) -> Result<Page, BackendError> {
        let mut page = self.meta.list_logs(tenant, f, cursor, limit).await?;
        if exact_total && !page.total_exact {
            // The rollups count any range without reading its rows; with
            // hourly buckets the hourly rollup serves all but the edges.
            const HOUR_NS: i64 = 3_600_000_000_000;
            page.total = self.meta.stats(tenant, f, HOUR_NS).await?.total;
            page.total_exact = true;
        }
        Ok(page)
    }

    pub async fn search(
        &self,
        tenant: &str,
        q: &Query,
        f: &LogFilter,
        cursor: Option<&Cursor>,
        limit: usize,
        exact_total: bool,
    ) -> Result<Page, BackendError> {
        let ids = self.index.search(tenant, q, f, cursor, limit, exact_total).await?;
        let found = self.meta.get_logs(tenant, &ids.ids).await?;
        let mut by_id: HashMap<String, LogRecord> = found.into_iter().map(|r| (r.id.clone(), r)).collect();
        let mut hits = Vec::with_capacity(ids.ids.len());
        for id in &ids.ids {
            match by_id.remove(id) {
                Some(r) => hits.push(r),
                // Routed to the index only: serve the indexed copy.
                None => {
                    if let Some(mut r) = self.index.get(tenant, id).await? {
                        r.full_log.clear();
                        hits.push(r);
                    }
                }
            }
        }
        let total_exact = !ids.total_is_lower_bound && (exact_total || ids.total <= TOTAL_BOUND);
        Ok(Page {
            total: if total_exact { ids.total } else { TOTAL_BOUND },
            total_exact,
            hits,
            next_cursor: ids.next_cursor,
        })
    }

    /// The whole record: from the index, else rebuilt from the raw store.
    pub async fn detail(&self, tenant: &str, id: &str) -> Result<Option<(LogRecord, Source)>, BackendError> {
        match self.index.get(tenant, id).await {
            Ok(Some(r)) if r.tenant == tenant => return Ok(Some((r, Source::Index))),
            Ok(_) => {}
            Err(e) => tracing::warn!(tenant, id, error = %e, "index unavailable for detail; trying the raw store"),
        }
        let Some(meta) = self.meta.get_logs(tenant, &[id.to_string()]).await?.pop() else {
            return Ok(None);
        };
        let Some(path) = &meta.raw_path else {
            return Ok(None);
        };
        Ok(self
            .raw
            .read(path)
            .await?
            .filter(|r| r.tenant == tenant && r.id == id)
            .map(|r| (r, Source::Raw)))
    }

    pub async fn stats(&self, tenant: &str, f: &LogFilter, interval_ns: i64) -> Result<Stats, BackendError> {
        self.meta.stats(tenant, f, interval_ns).await
    }

    /// A search's matches counted by a field, from the index.
    pub async fn terms(
        &self,
        tenant: &str,
        q: &Query,
        f: &LogFilter,
        field: &TermsField,
        size: usize,
        interval_ns: Option<i64>,
    ) -> Result<Terms, BackendError> {
        self.index.terms(tenant, q, f, field, size, interval_ns).await
    }

    /// Statistics of a number attribute over a search's matches, from the
    /// index.
    pub async fn numbers(
        &self,
        tenant: &str,
        q: &Query,
        f: &LogFilter,
        key: &str,
        group: Option<(&TermsField, usize)>,
        interval_ns: Option<i64>,
    ) -> Result<Numbers, BackendError> {
        self.index.numbers(tenant, q, f, key, group, interval_ns).await
    }

    /// A search's histogram, from the index: its matches per bucket and
    /// level (no counts by service).
    pub async fn search_stats(
        &self,
        tenant: &str,
        q: &Query,
        f: &LogFilter,
        interval_ns: i64,
    ) -> Result<Stats, BackendError> {
        let histogram = self.index.histogram(tenant, q, f, interval_ns).await?;
        let mut levels = crate::model::LevelCounts::default();
        for (_, c) in &histogram {
            for (l, n) in c.iter() {
                levels.0[l as usize] += n;
            }
        }
        Ok(Stats {
            total: levels.total(),
            by_level: levels.iter().collect(),
            by_service: Vec::new(),
            histogram,
        })
    }
}
