//! Ingest: checks a request body, names its batch, and makes it durable in
//! the queue.
//!
//! **The gate.** Every way records enter (`POST /v1/logs`, each shipper
//! protocol, syslog, dead-letter replay) first asks `Ingest::gate` for an
//! `Admission`: the tenant is not suspended, has not used up its day, and
//! its rate buckets can take the request now. Nothing else makes an
//! `Admission`, and every method that queues records takes one, so no way
//! in can skip the checks; each also charges the rate and counts usage as
//! it queues.
//!
//! **Invariant:** ingest never waits on a store; the 202 means "in the
//! queue". A tenant over its plan's rate is refused before its body reaches
//! the queue (`rate`). It depends on `queue`, `model` and `telemetry` alone.
//!
//! `gate` admits a sender, `body` checks a body, `conversion` bounds what
//! a shipper protocol's records come to; `Ingest` queues them.

mod body;
pub mod bulk;
mod conversion;
pub mod encoding;
mod gate;
pub mod loki;
pub mod otlp;
pub mod rate;
pub mod syslog;
pub mod wire;

use std::sync::Arc;

use bytes::Bytes;
use loggerhub_codec::limits;

use crate::error::{BackendError, ErrorKind};
use crate::model::ids;
use crate::model::window::TooOld;
use crate::queue::{Queue, QueueEntry};
use crate::telemetry::Metrics;
use crate::usage::{Meter, Usage};
use rate::{Limit, RateError, RateLimiter};

use body::estimate_records;
pub use body::{Checked, Format, WireFormat, check_body, lines_in};
#[cfg(test)]
pub(crate) use conversion::ndjson_lines;
pub use conversion::{
    CONVERSION_CEILING, CONVERSION_FACTOR, CONVERSION_FLOOR, CONVERTED_ENTRY_BYTES, Converted, MIN_RECORD_CHARGE,
    OverBudget,
};
pub use gate::{Admission, Daily, Sender};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("tenant {0:?} is suspended: ingest is refused until the operator resumes it")]
    Suspended(String),
    #[error("{0}")]
    BadRequest(String),
    /// `index` counts from 0; the message counts from 1, as people do.
    #[error("record {} names tenant {named:?}, but the key belongs to {tenant:?}", .index + 1)]
    WrongTenant {
        index: usize,
        named: String,
        tenant: String,
    },
    /// A record stamped before what the tenant may store (`model::window`);
    /// `record` counts from 1.
    #[error("record {record}: {reason}")]
    OutOfWindow { record: usize, reason: TooOld },
    #[error("unsupported content type {0:?}: send application/json, application/x-ndjson or text/plain")]
    UnsupportedMediaType(String),
    /// The queue did not take the batch: full, or unavailable.
    #[error(transparent)]
    Queue(#[from] BackendError),
    #[error("over the plan's {} of {rate}; retry after {} s", .limit.as_str(), .retry_after_secs)]
    RateLimited {
        limit: Limit,
        rate: u64,
        retry_after_secs: u32,
    },
    #[error(
        "the plan's {limit} of {quota} is used up for today (UTC), counting what the tenant's plugins stored; retry after {retry_after_secs} s, or ask for a larger plan"
    )]
    DailyQuota {
        limit: &'static str,
        quota: u64,
        retry_after_secs: u32,
    },
}

impl From<RateError> for IngestError {
    fn from(e: RateError) -> Self {
        match e {
            RateError::Limited {
                limit,
                rate,
                retry_after,
            } => IngestError::RateLimited {
                limit,
                rate,
                // Whole seconds, rounded up: a client that waits as told
                // finds room.
                retry_after_secs: u32::try_from(retry_after.as_millis().div_ceil(1000))
                    .unwrap_or(u32::MAX)
                    .max(1),
            },
            RateError::Backend(b) => IngestError::Queue(b),
        }
    }
}

/// One POST /v1/logs, admitted.
pub struct IngestRequest<'a> {
    pub content_type: Option<&'a str>,
    pub service: Option<String>,
    pub idempotency_key: Option<&'a str>,
    pub body: Bytes,
}

/// Records a shipper protocol read and checked, as NDJSON of the JSON
/// payload (`Ingest::ingest_checked`).
pub struct CheckedBatch {
    /// Records without an id of their own get ids derived from it
    /// (`ids::record_id`, by position).
    pub batch_id: ulid::Ulid,
    /// The records' service where they name none.
    pub service: Option<String>,
    pub body: Bytes,
    pub count: usize,
    /// Some records carry ids of the shipper's making: a retry may repeat
    /// them.
    pub has_ids: bool,
}

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 256;

pub struct Ingest {
    queue: Arc<dyn Queue>,
    metrics: Arc<Metrics>,
    rates: Arc<dyn RateLimiter>,
    meter: Arc<Meter>,
}

impl Ingest {
    pub fn new(queue: Arc<dyn Queue>, metrics: Arc<Metrics>, rates: Arc<dyn RateLimiter>, meter: Arc<Meter>) -> Self {
        Ingest {
            queue,
            metrics,
            rates,
            meter,
        }
    }

    /// Validates the body and queues it; returns how many records it holds.
    pub async fn ingest(&self, adm: &Admission, req: IngestRequest<'_>) -> Result<usize, IngestError> {
        let (format, content_type) = Format::from_content_type(req.content_type)?;
        if let Some(service) = &req.service {
            limits::check_name("service", service, limits::MAX_SERVICE_BYTES)
                .map_err(|e| IngestError::BadRequest(format!("header X-LoggerHub-Service: {e}")))?;
        }
        // Charged before the body is decoded, so that a tenant over its
        // rate costs the server next to nothing: records as the lines
        // count them, settled after decoding.
        let estimate = estimate_records(format, content_type, &req.body);
        if let Err(e) = self
            .rates
            .take(&adm.tenant, adm.rate, estimate, req.body.len() as u64)
            .await
        {
            self.metrics.error("rate_limited");
            self.metrics.tenant_refused(&adm.tenant, "rate_limited");
            return Err(e.into());
        }
        let checked = check_body(format, &req.body, &adm.tenant, &adm.window)?;
        if let Some(more) = (checked.count as u64).checked_sub(estimate).filter(|m| *m > 0) {
            self.rates.charge(&adm.tenant, adm.rate, more, 0).await?;
        }
        let batch_id = match req.idempotency_key {
            Some(k) if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY => {
                return Err(IngestError::BadRequest(format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
                )));
            }
            Some(k) => ids::idempotent_batch_id(&adm.tenant, k, checked.first_ts_ms),
            None => ulid::Ulid::new(),
        };
        let entry = QueueEntry {
            tenant: adm.tenant.clone(),
            batch_id,
            received_at: adm.window.arrival,
            content_type: content_type.to_string(),
            service: req.service,
            idempotent: req.idempotency_key.is_some(),
            body: req.body,
        };
        self.enqueue(entry, checked.count).await
    }

    /// Queues records a shipper protocol already read into the JSON
    /// payload's form and checked (`bulk`): charged to the tenant's rate
    /// as they are, then queued as NDJSON.
    pub async fn ingest_checked(&self, adm: &Admission, batch: CheckedBatch) -> Result<usize, IngestError> {
        if let Err(e) = self
            .rates
            .take(&adm.tenant, adm.rate, batch.count as u64, batch.body.len() as u64)
            .await
        {
            self.metrics.error("rate_limited");
            self.metrics.tenant_refused(&adm.tenant, "rate_limited");
            return Err(e.into());
        }
        let entry = QueueEntry {
            tenant: adm.tenant.clone(),
            batch_id: batch.batch_id,
            received_at: adm.window.arrival,
            content_type: "application/x-ndjson".to_string(),
            service: batch.service,
            // Records with a shipper's own id may have been stored before.
            idempotent: batch.has_ids,
            body: batch.body,
        };
        self.enqueue(entry, batch.count).await
    }

    /// Charges the bytes of a request refused after its body was read (a
    /// conversion past its bound, a body that does not decode) to the
    /// tenant's rate: refusing cost the server the reading, and a tenant
    /// must not be able to repeat that for free.
    pub async fn charge_refused(&self, adm: &Admission, bytes: usize) {
        let _ = self.rates.charge(&adm.tenant, adm.rate, 0, bytes as u64).await;
    }

    /// Queues a shipper request's converted records (`Converted::entries`):
    /// charged to the tenant's rate as one request, queued as one entry
    /// for each part. Should the queue fill between two parts, the first
    /// are kept and the request is answered 503: a shipper's retry stores
    /// them again (records from these protocols carry no ids).
    pub async fn ingest_converted(
        &self,
        adm: &Admission,
        service: Option<String>,
        entries: Vec<(Bytes, usize)>,
    ) -> Result<usize, IngestError> {
        let logs: usize = entries.iter().map(|(_, n)| n).sum();
        let bytes: usize = entries.iter().map(|(b, _)| b.len()).sum();
        if let Err(e) = self.rates.take(&adm.tenant, adm.rate, logs as u64, bytes as u64).await {
            self.metrics.error("rate_limited");
            self.metrics.tenant_refused(&adm.tenant, "rate_limited");
            return Err(e.into());
        }
        for (body, count) in entries {
            let entry = QueueEntry {
                tenant: adm.tenant.clone(),
                batch_id: ulid::Ulid::new(),
                received_at: adm.window.arrival,
                content_type: "application/x-ndjson".to_string(),
                service: service.clone(),
                idempotent: false,
                body,
            };
            self.enqueue(entry, count).await?;
        }
        Ok(logs)
    }

    /// Queues a dead letter's entry again (`count` records): charged to the
    /// tenant's rate and counted in its usage as any request. Its records
    /// keep their ids and times: replay stores nothing twice.
    pub async fn replay(&self, adm: &Admission, entry: QueueEntry, count: usize) -> Result<usize, IngestError> {
        if entry.tenant != adm.tenant {
            return Err(IngestError::WrongTenant {
                index: 0,
                named: entry.tenant,
                tenant: adm.tenant.clone(),
            });
        }
        if let Err(e) = self
            .rates
            .take(&adm.tenant, adm.rate, count as u64, entry.body.len() as u64)
            .await
        {
            self.metrics.error("rate_limited");
            self.metrics.tenant_refused(&adm.tenant, "rate_limited");
            return Err(e.into());
        }
        self.enqueue(entry, count).await
    }

    async fn enqueue(&self, entry: QueueEntry, count: usize) -> Result<usize, IngestError> {
        let bytes = entry.body.len();
        let tenant = entry.tenant.clone();
        // Not measured apart: a request's push is a few µs here (the
        // queue's writer thread counts as the queue's), and two more reads
        // of the thread's clock a request cost more than that measures.
        match self.queue.push(entry).await {
            Ok(()) => {
                self.metrics.logs_accepted(count, bytes);
                self.meter.record(
                    &tenant,
                    Usage {
                        logs: count as u64,
                        bytes: bytes as u64,
                        ..Usage::default()
                    },
                );
                Ok(count)
            }
            Err(e) => {
                self.metrics.error(if e.kind == ErrorKind::Full {
                    "queue_full"
                } else {
                    "queue"
                });
                Err(IngestError::Queue(e))
            }
        }
    }
}
