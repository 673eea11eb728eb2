//! The distributed index: OpenSearch 2.x, one index per tenant
//! (`<prefix><slug>`, prefix `loggerhub-logs-` by default) created with the
//! settings and mappings of `infra/opensearch/logs-template.json`.
//!
//! Documents are keyed by log id, so a replayed batch replaces itself.
//! Order is (timestamp desc, id_key desc) where `id_key` is the id's
//! 128-bit value as 32 hex digits: the same order as every other store, and
//! the pair is what `search_after` resumes from.
//!
//! One concept a file: `template` (the index template and provisioning),
//! `documents` (a record as a document and back), `dsl` (the query DSL
//! bodies), `bulk` (bulk writes with per-item retry) and `answers`
//! (OpenSearch's answers and error bodies read).

mod answers;
mod bulk;
mod documents;
mod dsl;
mod numbers;
mod template;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use async_trait::async_trait;
use opensearch::auth::Credentials;
use opensearch::http::Url;
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::indices::{IndicesDeleteParts, IndicesStatsParts};
use opensearch::params::Conflicts;
use opensearch::{DeleteByQueryParts, GetParts, OpenSearch, SearchParts};
use parking_lot::Mutex;
use serde_json::{Value, json};

use self::answers::{GetResponse, SearchResponse, answer, expect_ok};
pub use self::documents::{from_document, to_document};
pub use self::dsl::{histogram_body, search_body, terms_body};
use self::dsl::{histogram_of, terms_of};
pub use self::numbers::numbers_body;
use self::numbers::numbers_of;
pub use self::template::TEMPLATE;
use super::query::Query;
use super::{IdPage, IndexRow, Numbers, Rejected, SearchIndex, Terms, TermsField};
use crate::error::{Backend, BackendError, ErrorKind};
use crate::model::{Cursor, LevelCounts, LogFilter, LogRecord, format_ts};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct OpenSearchIndex {
    client: OpenSearch,
    prefix: String,
    /// Tenants whose index this process has created or found.
    provisioned: Mutex<HashSet<String>>,
    /// Whether this process has installed the index template.
    template_installed: AtomicBool,
}

/// The request did not get an answer (refused, timed out, reset).
fn os_err(e: opensearch::Error) -> BackendError {
    BackendError::unavailable(Backend::Index, e)
}

fn corrupt(what: impl Into<String>) -> BackendError {
    BackendError::corrupt(Backend::Index, what.into())
}

/// The kind of an error answer, by status: overload is `Full`, a request
/// refused for its content is `Rejected`, a node in trouble `Unavailable`.
fn status_kind(status: u16) -> ErrorKind {
    match status {
        429 => ErrorKind::Full,
        404 => ErrorKind::NotFound,
        400..=499 => ErrorKind::Rejected,
        _ => ErrorKind::Unavailable,
    }
}

impl OpenSearchIndex {
    /// A client for `url` (`http[s]://[user:password@]host:port`); indices
    /// are named `<prefix><tenant>`. Nothing is sent yet: a process starts
    /// while OpenSearch is down, and the index template is installed with
    /// the first index this process creates.
    pub fn open(url: &str, prefix: &str) -> Result<OpenSearchIndex, BackendError> {
        let mut url = Url::parse(url)
            .map_err(|e| BackendError::rejected(Backend::Index, format!("OPENSEARCH_URL {url:?}: {e}")))?;
        let credentials = (!url.username().is_empty()).then(|| {
            Credentials::Basic(
                url.username().to_string(),
                url.password().unwrap_or_default().to_string(),
            )
        });
        // The credentials travel as a header, not in every request's URL.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .disable_proxy()
            .timeout(REQUEST_TIMEOUT);
        if let Some(c) = credentials {
            builder = builder.auth(c);
        }
        Ok(OpenSearchIndex {
            client: OpenSearch::new(
                builder
                    .build()
                    .map_err(|e| BackendError::rejected(Backend::Index, format!("OPENSEARCH_URL: {e}")))?,
            ),
            prefix: prefix.to_string(),
            provisioned: Mutex::new(HashSet::new()),
            template_installed: AtomicBool::new(false),
        })
    }

    pub fn index_name(&self, tenant: &str) -> String {
        format!("{}{tenant}", self.prefix)
    }

    /// "opensearch 2.9.0" and the like, from `GET /`: tests print which
    /// server they ran against.
    pub async fn server_version(&self) -> Result<String, BackendError> {
        let resp = self.client.info().send().await.map_err(os_err)?;
        let info: Value = expect_ok(resp).await?;
        let v = &info["version"];
        let mut s = format!(
            "{} {}",
            v["distribution"].as_str().unwrap_or("elasticsearch"),
            v["number"].as_str().unwrap_or("?")
        );
        if let Some(hash) = v["build_hash"].as_str().filter(|h| !h.is_empty() && h.len() < 16) {
            s.push_str(&format!(" (build {hash})"));
        }
        Ok(s)
    }
}

#[async_trait]
impl SearchIndex for OpenSearchIndex {
    async fn provision(&self, tenant: &str) -> Result<(), BackendError> {
        self.provision_tenant(tenant).await
    }

    async fn index(&self, tenant: &str, rows: &[IndexRow<'_>]) -> Result<Vec<Rejected>, BackendError> {
        self.bulk_index(tenant, rows).await
    }

    async fn search(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        cursor: Option<&Cursor>,
        limit: usize,
        exact_total: bool,
    ) -> Result<IdPage, BackendError> {
        let index = self.index_name(tenant);
        let resp = self
            .client
            .search(SearchParts::Index(&[&index]))
            .body(search_body(query, filter, cursor, limit + 1, exact_total))
            .send()
            .await
            .map_err(os_err)?;
        let found: SearchResponse = match answer(resp).await? {
            Ok(r) => r,
            // Nothing was ever indexed for this tenant.
            Err(f) if f.is("index_not_found_exception") => return Ok(IdPage::default()),
            Err(f) => return Err(f.into()),
        };
        let (total, total_is_lower_bound) = found.hits.total.map_or((0, false), |t| (t.value, t.relation == "gte"));
        let mut hits = found.hits.hits;
        let has_more = hits.len() > limit;
        hits.truncate(limit);
        let next_cursor = match hits.last() {
            Some(last) if has_more => {
                let timestamp =
                    last.sort.first().and_then(Value::as_i64).ok_or_else(|| {
                        corrupt(format!("hit {} has no numeric sort value: {:?}", last.id, last.sort))
                    })?;
                Some(Cursor {
                    timestamp,
                    id: last.id.clone(),
                })
            }
            _ => None,
        };
        Ok(IdPage {
            total,
            total_is_lower_bound,
            ids: hits.into_iter().map(|h| h.id).collect(),
            next_cursor,
        })
    }

    async fn histogram(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        interval_ns: i64,
    ) -> Result<Vec<(i64, LevelCounts)>, BackendError> {
        let index = self.index_name(tenant);
        let resp = self
            .client
            .search(SearchParts::Index(&[&index]))
            .body(histogram_body(query, filter, interval_ns))
            .send()
            .await
            .map_err(os_err)?;
        match answer::<Value>(resp).await? {
            Ok(v) => histogram_of(&v),
            Err(f) if f.is("index_not_found_exception") => Ok(Vec::new()),
            Err(f) => Err(f.into()),
        }
    }

    async fn terms(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        field: &TermsField,
        size: usize,
        interval_ns: Option<i64>,
    ) -> Result<Terms, BackendError> {
        let index = self.index_name(tenant);
        let resp = self
            .client
            .search(SearchParts::Index(&[&index]))
            .body(terms_body(query, filter, field, size, interval_ns))
            .send()
            .await
            .map_err(os_err)?;
        match answer::<Value>(resp).await? {
            Ok(v) => terms_of(&v, field, size),
            Err(f) if f.is("index_not_found_exception") => Ok(Terms::default()),
            Err(f) => Err(f.into()),
        }
    }

    async fn numbers(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        key: &str,
        group: Option<(&TermsField, usize)>,
        interval_ns: Option<i64>,
    ) -> Result<Numbers, BackendError> {
        let index = self.index_name(tenant);
        let resp = self
            .client
            .search(SearchParts::Index(&[&index]))
            .body(numbers_body(query, filter, key, group, interval_ns))
            .send()
            .await
            .map_err(os_err)?;
        match answer::<Value>(resp).await? {
            Ok(v) => numbers_of(&v, group, interval_ns),
            Err(f) if f.is("index_not_found_exception") => Ok(Numbers::default()),
            Err(f) => Err(f.into()),
        }
    }

    async fn get(&self, tenant: &str, id: &str) -> Result<Option<LogRecord>, BackendError> {
        let index = self.index_name(tenant);
        let resp = self
            .client
            .get(GetParts::IndexId(&index, id))
            .send()
            .await
            .map_err(os_err)?;
        let got: GetResponse = match answer(resp).await? {
            Ok(r) => r,
            // A missing document is a 404 whose body is a normal answer.
            Err(f) if f.found == Some(false) || f.is("index_not_found_exception") => return Ok(None),
            Err(f) => return Err(f.into()),
        };
        if !got.found {
            return Ok(None);
        }
        got.source.map(from_document).transpose()
    }

    async fn delete_before(&self, tenant: &str, before: i64, max: usize) -> Result<u64, BackendError> {
        let index = self.index_name(tenant);
        let resp = self
            .client
            .delete_by_query(DeleteByQueryParts::Index(&[&index]))
            .max_docs(i64::try_from(max).unwrap_or(i64::MAX))
            // A record replaced while the sweep runs is simply left for
            // the next one.
            .conflicts(Conflicts::Proceed)
            .refresh(true)
            .body(json!({"query": {"range": {"timestamp": {"lt": format_ts(before)}}}}))
            .send()
            .await
            .map_err(os_err)?;
        match answer::<Value>(resp).await? {
            Ok(v) => Ok(v["deleted"].as_u64().unwrap_or(0)),
            Err(f) if f.is("index_not_found_exception") => Ok(0),
            Err(f) => Err(f.into()),
        }
    }

    async fn drop_tenant(&self, tenant: &str) -> Result<(), BackendError> {
        let index = self.index_name(tenant);
        let resp = self
            .client
            .indices()
            .delete(IndicesDeleteParts::Index(&[&index]))
            .send()
            .await
            .map_err(os_err)?;
        self.provisioned.lock().remove(tenant);
        match answer::<Value>(resp).await? {
            Ok(_) => Ok(()),
            Err(f) if f.is("index_not_found_exception") => Ok(()),
            Err(f) => Err(f.into()),
        }
    }

    async fn stored_bytes(&self, tenant: &str) -> Result<u64, BackendError> {
        let index = self.index_name(tenant);
        let resp = self
            .client
            .indices()
            .stats(IndicesStatsParts::IndexMetric(&[&index], &["store"]))
            .send()
            .await
            .map_err(os_err)?;
        match answer::<Value>(resp).await? {
            Ok(v) => Ok(v["indices"][&index]["primaries"]["store"]["size_in_bytes"]
                .as_u64()
                .unwrap_or(0)),
            Err(f) if f.is("index_not_found_exception") => Ok(0),
            Err(f) => Err(f.into()),
        }
    }

    async fn ping(&self) -> Result<(), BackendError> {
        let resp = self.client.ping().send().await.map_err(os_err)?;
        if resp.status_code().is_success() {
            Ok(())
        } else {
            Err(BackendError::new(
                Backend::Index,
                status_kind(resp.status_code().as_u16()),
                format!("ping answered {}", resp.status_code()),
            ))
        }
    }
}
