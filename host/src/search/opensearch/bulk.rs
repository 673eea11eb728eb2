//! Bulk writes: records sent in bounded bulk requests, the items refused
//! for load sent again, those refused for good reported.

use std::time::Duration;

use bytes::Bytes;
use opensearch::BulkParts;
use opensearch::params::Refresh;
use serde::Deserialize;
use serde_json::json;

use super::answers::{ErrorCause, expect_ok};
use super::documents::to_document;
use super::{OpenSearchIndex, corrupt, os_err, status_kind};
use crate::error::{Backend, BackendError};
use crate::model::LogRecord;
use crate::search::{IndexRow, Rejected};

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

impl OpenSearchIndex {
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

    /// `SearchIndex::index`: the rows in bulks of at most `BULK_MAX_DOCS`
    /// documents and `BULK_MAX_BYTES`, each item refused for load sent
    /// again up to `ITEM_RETRIES` times.
    pub(super) async fn bulk_index(&self, tenant: &str, rows: &[IndexRow<'_>]) -> Result<Vec<Rejected>, BackendError> {
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

fn retryable(status: u16) -> bool {
    status == 429 || status >= 500
}
