//! The distributed index: OpenSearch 2.x, one index per tenant
//! (`<prefix><slug>`, prefix `loggerhub-logs-` by default) created with the
//! settings and mappings of `infra/opensearch/logs-template.json`.
//!
//! Documents are keyed by log id, so a replayed batch replaces itself.
//! Order is (timestamp desc, id_key desc) where `id_key` is the id's
//! 128-bit value as 32 hex digits: the same order as every other store, and
//! the pair is what `search_after` resumes from.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use opensearch::auth::Credentials;
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::http::{StatusCode, Url};
use opensearch::indices::{IndicesCreateParts, IndicesDeleteParts, IndicesPutIndexTemplateParts, IndicesStatsParts};
use opensearch::params::{Conflicts, Refresh};
use opensearch::{BulkParts, DeleteByQueryParts, GetParts, OpenSearch, SearchParts};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};

use super::query::{Matcher, Query};
use super::{IdPage, IndexRow, Rejected, SearchIndex};
use crate::error::{Backend, BackendError, ErrorKind};
use crate::model::{
    Cursor, Level, LevelCounts, LogFilter, LogRecord, STATS_MAX_BUCKETS, TOTAL_BOUND, format_ts, id_sort_key,
};

/// The index template, shipped with the binary so that every tenant index
/// is created exactly as `infra/` describes it.
pub const TEMPLATE: &str = include_str!("../../../infra/opensearch/logs-template.json");
const TEMPLATE_NAME: &str = "loggerhub-logs";

/// Largest bulk request body: well under OpenSearch's 100 MB
/// `http.max_content_length`, large enough that a processor batch takes a
/// few requests, not hundreds.
const BULK_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Most documents in one bulk request. A shard indexes one bulk on one
/// write thread to its end, so a tenant's 2,000-record turn as one request
/// makes every other tenant's bulk to that node wait for all of it; in
/// chunks of this size the others get in between (measured with the
/// OpenSearch API stand-in, which writes one bulk at a time: a one-record
/// bulk waited 0.3 s behind 1,600-document bulks).
const BULK_MAX_DOCS: usize = 250;
/// Items rejected for load (429) or by a node in trouble (5xx) are sent
/// again this many times within one call before the batch fails and the
/// processor retries it later.
const ITEM_RETRIES: u32 = 3;
const ITEM_BACKOFF: Duration = Duration::from_millis(200);
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

    /// Installs (or updates) the index template, so that indices created
    /// outside LoggerHub under the default prefix get the same mappings.
    async fn install_template(&self) -> Result<(), BackendError> {
        let body: Value = serde_json::from_str(TEMPLATE).map_err(|e| corrupt(format!("template: {e}")))?;
        let resp = self
            .client
            .indices()
            .put_index_template(IndicesPutIndexTemplateParts::Name(TEMPLATE_NAME))
            .body(body)
            .send()
            .await
            .map_err(os_err)?;
        expect_ok::<Value>(resp).await.map(drop)
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

    async fn ensure(&self, tenant: &str) -> Result<(), BackendError> {
        if self.provisioned.lock().contains(tenant) {
            return Ok(());
        }
        self.provision(tenant).await
    }

    /// One bulk request; returns the items' outcomes in request order.
    async fn bulk(&self, index: &str, body: Bytes) -> Result<Vec<BulkItem>, BackendError> {
        let resp = self
            .client
            .bulk(BulkParts::Index(index))
            // Searchable at the next scheduled refresh, without forcing one.
            .refresh(Refresh::WaitFor)
            .body(vec![body])
            .send()
            .await
            .map_err(os_err)?;
        let parsed: BulkResponse = expect_ok(resp).await?;
        Ok(parsed
            .items
            .into_iter()
            .map(|mut item| item.remove("index").unwrap_or_default())
            .collect())
    }
}

/// The document of one record, as the template maps it.
pub fn to_document(r: &LogRecord) -> Value {
    let attributes: serde_json::Map<String, Value> = r
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut doc = json!({
        "id": r.id,
        "id_key": id_key(&r.id),
        "tenant": r.tenant,
        "service": r.service,
        "level": r.level.as_str(),
        "timestamp": format_ts(r.timestamp),
        "received_at": format_ts(r.received_at),
        "message": r.message,
        "full_log": r.full_log,
        "attributes": attributes,
    });
    if let Some(l) = &r.language {
        doc["language"] = json!(l);
    }
    if let Some(p) = &r.raw_path {
        doc["raw_path"] = json!(p);
    }
    doc
}

fn id_key(id: &str) -> String {
    format!("{:032x}", id_sort_key(id))
}

#[derive(Deserialize)]
struct Source {
    id: String,
    tenant: String,
    service: String,
    level: String,
    timestamp: String,
    received_at: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    full_log: String,
    language: Option<String>,
    #[serde(default)]
    attributes: serde_json::Map<String, Value>,
    raw_path: Option<String>,
}

/// Reads what [`to_document`] wrote.
pub fn from_document(source: Value) -> Result<LogRecord, BackendError> {
    let s: Source = serde_json::from_value(source).map_err(|e| corrupt(e.to_string()))?;
    let ts = |v: &str| crate::model::parse_ts(v).ok_or_else(|| corrupt(format!("bad timestamp {v:?} in the index")));
    Ok(LogRecord {
        level: Level::parse(&s.level).ok_or_else(|| corrupt(format!("bad level {:?}", s.level)))?,
        timestamp: ts(&s.timestamp)?,
        received_at: ts(&s.received_at)?,
        id: s.id,
        tenant: s.tenant,
        service: s.service,
        message: s.message,
        full_log: s.full_log,
        language: s.language,
        attributes: s
            .attributes
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        raw_path: s.raw_path,
    })
}

/// The query DSL for a DESIGN §4 query plus the list filters, newest first,
/// resuming after `cursor`; asks for `size` hits and the total, exact or
/// counted up to [`TOTAL_BOUND`].
pub fn search_body(q: &Query, filter: &LogFilter, cursor: Option<&Cursor>, size: usize, exact_total: bool) -> Value {
    let mut must = Vec::new();
    let mut must_not = Vec::new();
    let mut filters = Vec::new();
    for c in &q.clauses {
        let clause = match &c.matcher {
            Matcher::Text(t) => json!({"bool": {
                "should": [{"match_phrase": {"message": t}}, {"match_phrase": {"full_log": t}}],
                "minimum_should_match": 1
            }}),
            Matcher::Service(s) => json!({"term": {"service": s}}),
            Matcher::Level(l) => json!({"term": {"level": l.as_str()}}),
            Matcher::Attribute { key, value } => json!({"term": {format!("attributes.{key}"): value}}),
        };
        match (c.negated, &c.matcher) {
            (true, _) => must_not.push(clause),
            (false, Matcher::Text(_)) => must.push(clause),
            // Exact matches do not score: filter context is cached.
            (false, _) => filters.push(clause),
        }
    }
    if let Some(s) = &filter.service {
        filters.push(json!({"term": {"service": s}}));
    }
    if let Some(l) = filter.level {
        filters.push(json!({"term": {"level": l.as_str()}}));
    }
    if filter.from.is_some() || filter.to.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(from) = filter.from {
            range.insert("gte".into(), json!(format_ts(from)));
        }
        if let Some(to) = filter.to {
            range.insert("lt".into(), json!(format_ts(to)));
        }
        filters.push(json!({"range": {"timestamp": range}}));
    }
    let mut body = json!({
        "size": size,
        "track_total_hits": if exact_total { json!(true) } else { json!(TOTAL_BOUND) },
        "_source": false,
        "query": {"bool": {"must": must, "must_not": must_not, "filter": filters}},
        "sort": [{"timestamp": "desc"}, {"id_key": "desc"}],
    });
    if let Some(c) = cursor {
        body["search_after"] = json!([c.timestamp, id_key(&c.id)]);
    }
    body
}

/// A search's histogram: the same query, no hits, a `date_histogram` of
/// `interval_ns` (whole milliseconds) with the levels counted per bucket.
pub fn histogram_body(q: &Query, filter: &LogFilter, interval_ns: i64) -> Value {
    let mut body = search_body(q, filter, None, 0, false);
    if let Some(b) = body.as_object_mut() {
        b.remove("sort");
        b.insert("track_total_hits".into(), json!(false));
        b.insert(
            "aggs".into(),
            json!({"t": {
                "date_histogram": {
                    "field": "timestamp",
                    "fixed_interval": format!("{}ms", (interval_ns / 1_000_000).max(1)),
                    "min_doc_count": 1
                },
                "aggs": {"l": {"terms": {"field": "level", "size": Level::ALL.len()}}}
            }}),
        );
    }
    body
}

/// The buckets of [`histogram_body`]'s answer, oldest first.
fn histogram_of(answer: &Value) -> Result<Vec<(i64, LevelCounts)>, BackendError> {
    let Some(buckets) = answer.pointer("/aggregations/t/buckets").and_then(Value::as_array) else {
        return Err(corrupt("a histogram answer without its buckets"));
    };
    let mut out = Vec::with_capacity(buckets.len().min(STATS_MAX_BUCKETS + 1));
    for b in buckets.iter().take(STATS_MAX_BUCKETS + 1) {
        // Keys are epoch milliseconds, also for date_nanos.
        let key = b["key"].as_i64().or_else(|| b["key"].as_f64().map(|k| k as i64));
        let key = key.ok_or_else(|| corrupt(format!("a histogram bucket without a key: {b}")))?;
        let mut counts = LevelCounts::default();
        for l in b.pointer("/l/buckets").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(level), Some(n)) = (l["key"].as_str().and_then(Level::parse), l["doc_count"].as_u64()) {
                counts.0[level as usize] += n;
            }
        }
        out.push((key.saturating_mul(1_000_000), counts));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct BulkResponse {
    items: Vec<std::collections::HashMap<String, BulkItem>>,
}

#[derive(Deserialize, Default)]
struct BulkItem {
    #[serde(default)]
    status: u16,
    error: Option<ErrorCause>,
}

#[derive(Deserialize, Default, Debug)]
struct ErrorCause {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: Option<String>,
}

impl std::fmt::Display for ErrorCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.reason.as_deref().unwrap_or(""))
    }
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<ErrorCause>,
    found: Option<bool>,
}

#[derive(Deserialize)]
struct SearchResponse {
    hits: SearchHits,
}

#[derive(Deserialize)]
struct SearchHits {
    total: Option<TotalHits>,
    hits: Vec<SearchHit>,
}

#[derive(Deserialize)]
struct TotalHits {
    value: u64,
    /// `eq`, or `gte` when the count stopped at `track_total_hits`.
    #[serde(default)]
    relation: String,
}

#[derive(Deserialize)]
struct SearchHit {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    sort: Vec<Value>,
}

#[derive(Deserialize)]
struct GetResponse {
    found: bool,
    #[serde(rename = "_source")]
    source: Option<Value>,
}

/// An OpenSearch error answer, read from its body.
struct Failure {
    status: StatusCode,
    cause: ErrorCause,
    /// `found` of a get's 404 for a missing document.
    found: Option<bool>,
}

impl Failure {
    fn is(&self, kind: &str) -> bool {
        self.cause.kind == kind
    }
}

impl From<Failure> for BackendError {
    fn from(f: Failure) -> Self {
        let status = f.status.as_u16();
        BackendError::new(Backend::Index, status_kind(status), format!("{status} {}", f.cause))
    }
}

/// The parsed body of a 2xx answer, or the error it carried.
async fn answer<T: serde::de::DeserializeOwned>(
    resp: opensearch::http::response::Response,
) -> Result<Result<T, Failure>, BackendError> {
    let status = resp.status_code();
    let bytes = resp.bytes().await.map_err(os_err)?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map(Ok)
            .map_err(|e| corrupt(format!("unexpected answer ({e}): {}", lossy(&bytes))));
    }
    let parsed = serde_json::from_slice::<ErrorResponse>(&bytes).ok();
    let found = parsed.as_ref().and_then(|p| p.found);
    let cause = parsed.and_then(|p| p.error).unwrap_or_else(|| ErrorCause {
        kind: "http_error".into(),
        reason: Some(lossy(&bytes)),
    });
    Ok(Err(Failure { status, cause, found }))
}

async fn expect_ok<T: serde::de::DeserializeOwned>(
    resp: opensearch::http::response::Response,
) -> Result<T, BackendError> {
    answer(resp).await?.map_err(BackendError::from)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned()
}

fn retryable(status: u16) -> bool {
    status == 429 || status >= 500
}

#[async_trait]
impl SearchIndex for OpenSearchIndex {
    async fn provision(&self, tenant: &str) -> Result<(), BackendError> {
        if !self.template_installed.load(Ordering::Relaxed) {
            self.install_template().await?;
            self.template_installed.store(true, Ordering::Relaxed);
        }
        let template: Value = serde_json::from_str(TEMPLATE).map_err(|e| corrupt(format!("template: {e}")))?;
        let index = self.index_name(tenant);
        let resp = self
            .client
            .indices()
            .create(IndicesCreateParts::Index(&index))
            .body(template["template"].clone())
            .send()
            .await
            .map_err(os_err)?;
        match answer::<Value>(resp).await? {
            Ok(_) => {}
            Err(f) if f.is("resource_already_exists_exception") => {}
            Err(f) => return Err(f.into()),
        }
        self.provisioned.lock().insert(tenant.to_string());
        Ok(())
    }

    async fn index(&self, tenant: &str, rows: &[IndexRow<'_>]) -> Result<Vec<Rejected>, BackendError> {
        self.ensure(tenant).await?;
        let index = self.index_name(tenant);
        let mut rejected = Vec::new();
        // Serialised once; retries resend the same bytes.
        let docs: Vec<(&LogRecord, Vec<u8>)> = rows
            .iter()
            .map(|r| {
                let mut line = serde_json::to_vec(&json!({"index": {"_id": r.record.id}})).unwrap_or_default();
                line.push(b'\n');
                // A JSON value of strings always serialises.
                serde_json::to_writer(&mut line, &to_document(r.record)).unwrap_or_default();
                line.push(b'\n');
                (r.record, line)
            })
            .collect();
        let mut start = 0;
        while start < docs.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < docs.len()
                && end - start < BULK_MAX_DOCS
                && (end == start || bytes + docs[end].1.len() <= BULK_MAX_BYTES)
            {
                bytes += docs[end].1.len();
                end += 1;
            }
            let mut pending: Vec<usize> = (start..end).collect();
            let mut attempt = 0;
            loop {
                let mut body = Vec::with_capacity(pending.iter().map(|&i| docs[i].1.len()).sum());
                for &i in &pending {
                    body.extend_from_slice(&docs[i].1);
                }
                let items = self.bulk(&index, Bytes::from(body)).await?;
                if items.len() != pending.len() {
                    return Err(corrupt(format!(
                        "bulk answered {} items for {} documents",
                        items.len(),
                        pending.len()
                    )));
                }
                let mut again = Vec::new();
                let mut last_cause = None;
                let mut last_status = 0;
                for (&i, item) in pending.iter().zip(items) {
                    if (200..300).contains(&item.status) {
                        continue;
                    }
                    let cause = item.error.unwrap_or_default();
                    if retryable(item.status) {
                        again.push(i);
                        last_status = item.status;
                        last_cause = Some(format!("{} {cause}", item.status));
                    } else {
                        rejected.push(Rejected {
                            id: docs[i].0.id.clone(),
                            reason: format!("{} {cause}", item.status),
                        });
                    }
                }
                if again.is_empty() {
                    break;
                }
                attempt += 1;
                if attempt > ITEM_RETRIES {
                    return Err(BackendError::new(
                        Backend::Index,
                        status_kind(last_status),
                        format!(
                            "{} documents not indexed after {ITEM_RETRIES} retries: {}",
                            again.len(),
                            last_cause.unwrap_or_default()
                        ),
                    ));
                }
                tokio::time::sleep(ITEM_BACKOFF * 2u32.pow(attempt - 1)).await;
                pending = again;
            }
            start = end;
        }
        Ok(rejected)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> LogRecord {
        LogRecord {
            id: "01K7ABCDEFGHJKMNPQRSTVWXYZ".into(),
            tenant: "acme".into(),
            service: "billing".into(),
            level: Level::Error,
            timestamp: 1_760_099_196_123_456_789,
            received_at: 1_760_099_197_000_000_000,
            message: "Payment failed".into(),
            full_log: "Traceback".into(),
            language: Some("python".into()),
            attributes: vec![("region".into(), "eu west".into())],
            raw_path: Some("logs/acme/x.ndjson#3".into()),
        }
    }

    #[test]
    fn documents_round_trip() {
        let r = rec();
        let doc = to_document(&r);
        assert_eq!(doc["timestamp"], "2025-10-10T12:26:36.123456789Z");
        assert_eq!(doc["id_key"].as_str().map(str::len), Some(32));
        assert_eq!(from_document(doc).expect("reads back"), r);
    }

    #[test]
    fn the_template_is_what_provision_sends() {
        let t: Value = serde_json::from_str(TEMPLATE).expect("template parses");
        assert_eq!(
            t["index_patterns"][0],
            format!("{}*", crate::config::DEFAULT_INDEX_PREFIX)
        );
        let props = &t["template"]["mappings"]["properties"];
        for field in to_document(&rec()).as_object().expect("object").keys() {
            assert!(props.get(field).is_some(), "{field} is not mapped");
        }
    }

    #[test]
    fn query_translation() {
        let q = Query::parse(r#""invalid UUID" -timeout service:billing attributes.region:eu"#).expect("parses");
        let filter = LogFilter {
            level: Some(Level::Error),
            from: Some(0),
            ..Default::default()
        };
        let cursor = Cursor {
            timestamp: 5,
            id: "00000000-0000-0000-0000-0000000000ff".into(),
        };
        let body = search_body(&q, &filter, Some(&cursor), 11, true);
        assert_eq!(
            body,
            json!({
                "size": 11, "track_total_hits": true, "_source": false,
                "query": {"bool": {
                    "must": [{"bool": {"should": [{"match_phrase": {"message": "invalid UUID"}},
                        {"match_phrase": {"full_log": "invalid UUID"}}], "minimum_should_match": 1}}],
                    "must_not": [{"bool": {"should": [{"match_phrase": {"message": "timeout"}},
                        {"match_phrase": {"full_log": "timeout"}}], "minimum_should_match": 1}}],
                    "filter": [{"term": {"service": "billing"}}, {"term": {"attributes.region": "eu"}},
                        {"term": {"level": "ERROR"}}, {"range": {"timestamp": {"gte": "1970-01-01T00:00:00Z"}}}]
                }},
                "sort": [{"timestamp": "desc"}, {"id_key": "desc"}],
                "search_after": [5, "000000000000000000000000000000ff"],
            })
        );
        // By default the count stops at the bound, as the API's does.
        let bounded = search_body(&q, &filter, None, 11, false);
        assert_eq!(bounded["track_total_hits"], json!(TOTAL_BOUND));
    }
}
