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

pub mod bulk;
pub mod encoding;
pub mod loki;
pub mod otlp;
pub mod rate;
pub mod syslog;
pub mod wire;

use std::sync::Arc;

use bytes::Bytes;
use loggerhub_codec::{limits, payload};

use crate::error::{BackendError, ErrorKind};
use crate::model::ids;
use crate::model::window::{TimeWindow, TooOld};
use crate::queue::{Queue, QueueEntry};
use crate::telemetry::Metrics;
use crate::usage::{Meter, Usage};
use rate::{Limit, Rate, RateError, RateLimiter};

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

/// A tenant's daily volume, from its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daily {
    pub logs: u64,
    pub bytes: u64,
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

/// The body formats ingest accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One object, an array, or NDJSON.
    Json,
    /// One record per line, parsed by the tenant's text parser.
    Text,
}

impl Format {
    /// From a Content-Type header; none means JSON.
    pub fn from_content_type(ct: Option<&str>) -> Result<(Format, &'static str), IngestError> {
        let Some(ct) = ct else {
            return Ok((Format::Json, "application/json"));
        };
        let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            // curl -d sends form-urlencoded unless told otherwise; its body
            // is the JSON the user typed.
            "" | "application/json" | "application/x-www-form-urlencoded" => Ok((Format::Json, "application/json")),
            "application/x-ndjson" | "application/ndjson" | "application/jsonlines" | "application/x-jsonlines" => {
                Ok((Format::Json, "application/x-ndjson"))
            }
            "text/plain" => Ok((Format::Text, "text/plain")),
            _ => Err(IngestError::UnsupportedMediaType(ct.chars().take(100).collect())),
        }
    }
}

/// Who sends records, as its key and plan say: what the gate checks.
#[derive(Debug, Clone)]
pub struct Sender {
    pub tenant: String,
    pub suspended: bool,
    pub rate: Rate,
    pub daily: Daily,
    /// How long the tenant's plan keeps logs.
    pub retention: std::time::Duration,
}

/// Records may enter for a tenant now. Only `Ingest::gate` makes one; every
/// method that queues records takes one.
#[derive(Debug)]
pub struct Admission {
    tenant: String,
    rate: Rate,
    /// The times the records may carry, from their arrival.
    pub window: TimeWindow,
}

impl Admission {
    pub fn tenant(&self) -> &str {
        &self.tenant
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

/// How the protobuf-based shipper protocols (OTLP, Loki) encode a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    Protobuf,
    Json,
}

impl WireFormat {
    /// From a Content-Type; `missing` when there is none; `None` for a
    /// type the protocols do not speak.
    pub fn from_content_type(ct: Option<&str>, missing: Option<WireFormat>) -> Option<WireFormat> {
        let Some(ct) = ct else { return missing };
        let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(WireFormat::Protobuf),
            "application/json" => Some(WireFormat::Json),
            _ => None,
        }
    }
}

/// What a request's records may come to, as the JSON payload, for each
/// byte of its body (inflated). OTLP's resource and scope attributes and
/// Loki's labels are written once per request and copied into every
/// record: without a bound, a few kilobytes of gzip (one 64 KiB attribute,
/// 20,000 empty records) became gigabytes. A real SDK's request, with its
/// handful of resource attributes, converts to 2 to 4 times its size.
pub const CONVERSION_FACTOR: usize = 16;
/// What every request may come to whatever its size: the OpenTelemetry
/// Collector's default batch (8,192 records of 50 bytes, each given 2–3 KB
/// of Kubernetes resource attributes) comes to about 22 MiB, 50 times its
/// body. OTLP answers 413 as final, so a Collector would drop the batch.
pub const CONVERSION_FLOOR: usize = 32 << 20;
/// What no request may come to, whatever its size: the memory one request
/// can take while it is converted.
pub const CONVERSION_CEILING: usize = 40 << 20;
/// The least a record is charged, taken or not: `{"message":"","attributes":{}}`
/// and its newline. An empty record is two bytes of protobuf.
pub const MIN_RECORD_CHARGE: usize = 32;
pub use crate::model::CONVERTED_ENTRY_BYTES;

/// A shipper protocol's records, converted one by one into lines of the
/// JSON payload: those the payload decoder takes, and a count of the
/// others with the first one's reason (OTLP and Loki answer with it).
/// What they come to is bounded (`Converted::budget`): each record is
/// charged an estimate before it is built (at least `MIN_RECORD_CHARGE`)
/// and its line's real length once built (escapes included), whether it is
/// then taken or rejected (rejecting costs the building), and a request
/// past the bound is refused whole (413).
#[derive(Debug)]
pub struct Converted {
    /// NDJSON of the records taken into the entry being filled.
    pub body: Vec<u8>,
    pub count: usize,
    pub rejected: usize,
    pub first_error: Option<String>,
    /// The timestamps the tenant may store.
    window: TimeWindow,
    /// The request's body, inflated.
    body_len: usize,
    /// Bytes the records may come to, taken or not.
    budget: usize,
    /// Bytes charged so far.
    spent: usize,
    /// What `fits` charged for the record being built.
    estimated: usize,
    /// The request went past `budget`: nothing of it is queued.
    over: bool,
    /// The entries filled before `body`, with their records; each was
    /// allocated once at its full size, so that growing a request's
    /// records never copies them (a copy doubled the memory it took).
    full: Vec<(Vec<u8>, usize)>,
    /// The records in `body`.
    entry_count: usize,
}

/// A request whose records come to more than its conversion budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the request's records come to more than {budget} bytes once its shared attributes or labels are copied into each ({CONVERSION_FACTOR}× its body of {body} bytes, at least {CONVERSION_FLOOR} and at most {CONVERSION_CEILING}; each record at least {MIN_RECORD_CHARGE}): send fewer records per request, or fewer and smaller shared attributes"
)]
pub struct OverBudget {
    pub budget: usize,
    pub body: usize,
}

impl Converted {
    /// Nothing yet, for the records of a body of `body_len` bytes that must
    /// fall within `window`.
    pub fn within(window: TimeWindow, body_len: usize) -> Converted {
        Converted {
            body: Vec::new(),
            count: 0,
            rejected: 0,
            first_error: None,
            window,
            body_len,
            budget: Converted::budget(body_len),
            spent: 0,
            estimated: 0,
            over: false,
            full: Vec::new(),
            entry_count: 0,
        }
    }

    /// What the records of a body of `body_len` bytes may come to.
    pub fn budget(body_len: usize) -> usize {
        body_len
            .saturating_mul(CONVERSION_FACTOR)
            .clamp(CONVERSION_FLOOR, CONVERSION_CEILING)
    }

    fn charge(&mut self, bytes: usize) -> bool {
        self.spent = self.spent.saturating_add(bytes);
        if self.spent > self.budget {
            self.over = true;
        }
        !self.over
    }

    /// Charges a record of about `estimate` bytes to the budget; whether it
    /// still fits. A converter asks before it decodes or builds each
    /// record, and stops at the first no.
    pub fn fits(&mut self, estimate: usize) -> bool {
        self.estimated = estimate.max(MIN_RECORD_CHARGE);
        self.charge(self.estimated)
    }

    /// Counts a record refused before it was built (`why` names the
    /// problem); it is charged like the smallest record.
    pub fn reject(&mut self, why: &str) {
        if self.over || !self.fits(0) {
            return;
        }
        self.rejected += 1;
        self.first_error
            .get_or_insert_with(|| format!("record {}: {why}", self.count + self.rejected));
    }

    /// Bytes charged so far: what building the records cost.
    pub fn spent(&self) -> usize {
        self.spent
    }

    /// Bytes of the records taken, as queued.
    pub fn count_bytes(&self) -> usize {
        self.full.iter().map(|(b, _)| b.len()).sum::<usize>() + self.body.len()
    }

    /// The request as a whole: refused when it went past its budget.
    pub fn check_budget(&self) -> Result<(), OverBudget> {
        if self.over {
            Err(OverBudget {
                budget: self.budget,
                body: self.body_len,
            })
        } else {
            Ok(())
        }
    }

    /// When the records arrive: the window's time.
    pub fn received_at(&self) -> i64 {
        self.window.arrival
    }

    /// Takes `doc` if the payload decoder would (`check_body`'s rules for
    /// one record) and its time is not older than the window, else counts
    /// it as rejected (the first reason names the record, from 1). The
    /// line's length past what `fits` charged is charged now.
    pub fn push(&mut self, doc: &serde_json::Value, tenant: &str) {
        if self.over {
            return;
        }
        let line = serde_json::to_vec(doc).unwrap_or_default();
        let extra = (line.len() + 1).saturating_sub(std::mem::take(&mut self.estimated));
        if !self.charge(extra) {
            return;
        }
        // An entry holds at most `CONVERTED_ENTRY_BYTES`: a record larger
        // than a whole entry (escapes can make it six times its body) is
        // refused alone.
        if line.len() >= CONVERTED_ENTRY_BYTES {
            self.rejected += 1;
            self.first_error.get_or_insert_with(|| {
                format!(
                    "record {}: {} bytes once converted, over the {CONVERTED_ENTRY_BYTES} a record may take",
                    self.count + self.rejected,
                    line.len()
                )
            });
            return;
        }
        let checked = payload::scan_json(&line, tenant)
            .map_err(|e| e.message)
            .and_then(|scan| match scan.oldest {
                Some((_, ts)) => self.window.check(ts).map_err(|e| e.to_string()),
                None => Ok(()),
            })
            .map_err(|e| format!("record {}: {e}", self.count + self.rejected + 1));
        match checked {
            Ok(()) => {
                if self.entry_count > 0 && self.body.len() + line.len() >= CONVERTED_ENTRY_BYTES {
                    let next = Vec::with_capacity(CONVERTED_ENTRY_BYTES.min(self.budget - self.spent + line.len() + 1));
                    let filled = std::mem::replace(&mut self.body, next);
                    self.full.push((filled, std::mem::take(&mut self.entry_count)));
                }
                self.body.extend_from_slice(&line);
                self.body.push(b'\n');
                self.count += 1;
                self.entry_count += 1;
            }
            Err(e) => {
                self.rejected += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    /// The records taken, as queue entries of at most
    /// `CONVERTED_ENTRY_BYTES` (a larger record is refused by `push`),
    /// each with its count; takes them out.
    pub fn entries(&mut self) -> Vec<(bytes::Bytes, usize)> {
        let mut entries = std::mem::take(&mut self.full);
        if self.entry_count > 0 {
            entries.push((std::mem::take(&mut self.body), std::mem::take(&mut self.entry_count)));
        }
        entries.into_iter().map(|(body, n)| (body.into(), n)).collect()
    }
}

/// The lines of an NDJSON body, parsed (for the protocol modules' tests).
#[cfg(test)]
pub(crate) fn ndjson_lines(body: &[u8]) -> Vec<serde_json::Value> {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("a JSON line"))
        .collect()
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

    /// The gate every way in passes first, before a body is read:
    /// refuses a suspended tenant, one that used up its daily volume, or
    /// one whose buckets cannot take one record and the body's announced
    /// length now. (The request that crosses the daily line is taken; the
    /// next one is refused.)
    pub async fn gate(&self, sender: &Sender, content_length: Option<usize>) -> Result<Admission, IngestError> {
        let (tenant, rate, daily) = (sender.tenant.as_str(), sender.rate, sender.daily);
        if sender.suspended {
            self.metrics.error("tenant_suspended");
            self.metrics.tenant_refused(tenant, "suspended");
            return Err(IngestError::Suspended(tenant.to_string()));
        }
        let today = self.meter.today(tenant).await;
        // What the tenant's plugins stored counts as much as what it sent:
        // a pipeline that makes more records than it was given uses the day
        // up sooner.
        let over = if today.logs.max(today.stored_logs) >= daily.logs {
            Some(("daily_logs", daily.logs))
        } else if today.bytes.max(today.stored_bytes) >= daily.bytes {
            Some(("daily_bytes", daily.bytes))
        } else {
            None
        };
        if let Some((limit, quota)) = over {
            self.metrics.error("daily_quota");
            self.metrics.tenant_refused(tenant, "daily_quota");
            return Err(IngestError::DailyQuota {
                limit,
                quota,
                retry_after_secs: crate::usage::seconds_to_midnight(),
            });
        }
        let bytes = content_length.unwrap_or(0) as u64;
        if let Err(e) = self.rates.check(tenant, rate, 1, bytes).await {
            self.metrics.error("rate_limited");
            self.metrics.tenant_refused(tenant, "rate_limited");
            return Err(e.into());
        }
        Ok(Admission {
            tenant: tenant.to_string(),
            rate,
            window: TimeWindow::now(sender.retention),
        })
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

/// Records a body holds at least, without decoding it: its non-blank lines
/// for NDJSON and text, one for a JSON document (an array may hold more).
fn estimate_records(format: Format, content_type: &str, body: &[u8]) -> u64 {
    if format == Format::Json && content_type == "application/json" {
        return 1;
    }
    lines_in(body) as u64
}

/// The non-blank lines of a body: its records, for NDJSON and text.
pub fn lines_in(body: &[u8]) -> usize {
    body.split(|b| *b == b'\n')
        .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
        .count()
}

#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    pub count: usize,
    /// The first record's timestamp in ms (0 if it has none): places a
    /// retried idempotent batch at the same time.
    pub first_ts_ms: u64,
}

/// What ingest checks before 202: the body decodes with the same decoder
/// the JSON parser plugin runs, names no other tenant, and every time it
/// names is within `window`'s retention. (A time too far ahead is stored
/// at the arrival by the pipeline, and a text body's times are read by the
/// tenant's parser, later: the pipeline holds those to the same window.)
pub fn check_body(format: Format, body: &[u8], tenant: &str, window: &TimeWindow) -> Result<Checked, IngestError> {
    match format {
        Format::Json => {
            let scan = payload::scan_json(body, tenant).map_err(|e| IngestError::BadRequest(e.to_string()))?;
            if scan.count == 0 {
                return Err(IngestError::BadRequest("no records in body".into()));
            }
            if let Some((index, named)) = scan.foreign_tenant {
                return Err(IngestError::WrongTenant {
                    index,
                    named,
                    tenant: tenant.to_string(),
                });
            }
            if let Some((index, ts)) = scan.oldest {
                window.check(ts).map_err(|reason| IngestError::OutOfWindow {
                    record: index + 1,
                    reason,
                })?;
            }
            Ok(Checked {
                count: scan.count,
                first_ts_ms: u64::try_from(scan.first_timestamp / 1_000_000).unwrap_or(0),
            })
        }
        Format::Text => {
            let text = std::str::from_utf8(body).map_err(|e| {
                IngestError::BadRequest(format!("text body is not UTF-8 (at byte {})", e.valid_up_to()))
            })?;
            let count = text.lines().filter(|l| !l.trim().is_empty()).count();
            if count == 0 {
                return Err(IngestError::BadRequest("no lines in body".into()));
            }
            Ok(Checked { count, first_ts_ms: 0 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Wide enough for every time the tests write.
    fn any_time() -> TimeWindow {
        TimeWindow::ALL
    }

    fn check_body(format: Format, body: &[u8], tenant: &str) -> Result<Checked, IngestError> {
        super::check_body(format, body, tenant, &any_time())
    }

    #[test]
    fn times_outside_the_window_are_refused_naming_the_record() {
        const DAY: i64 = 86_400_000_000_000;
        let now = 1_800_000_000_000_000_000;
        let week = TimeWindow::at(now, std::time::Duration::from_secs(7 * 86_400));
        let line = |ts: i64| {
            format!(
                "{{\"message\":\"m\",\"timestamp\":\"{}\"}}\n",
                crate::model::format_ts(ts)
            )
        };
        let fresh = line(now - DAY) + &line(now) + "{\"message\":\"no time\"}\n";
        assert_eq!(
            super::check_body(Format::Json, fresh.as_bytes(), "t", &week)
                .map(|c| c.count)
                .ok(),
            Some(3)
        );
        let old = line(now) + &line(now - 8 * DAY);
        match super::check_body(Format::Json, old.as_bytes(), "t", &week) {
            Err(e @ IngestError::OutOfWindow { record: 2, .. }) => {
                assert!(e.to_string().contains("retention of 7 days"), "{e}")
            }
            other => panic!("expected the second record refused, got {other:?}"),
        }
        // Ahead of the clock is taken: the pipeline stores it at arrival.
        let ahead = line(now + 365 * DAY) + &line(now);
        assert_eq!(
            super::check_body(Format::Json, ahead.as_bytes(), "t", &week)
                .map(|c| c.count)
                .ok(),
            Some(2)
        );
        // A shipper's record outside the window is rejected alone.
        let mut c = Converted::within(week, 100);
        c.push(&serde_json::json!({"message": "ok"}), "t");
        c.push(
            &serde_json::json!({"message": "old", "timestamp": crate::model::format_ts(now - 8 * DAY)}),
            "t",
        );
        assert_eq!((c.count, c.rejected), (1, 1));
        assert!(
            c.first_error
                .as_ref()
                .is_some_and(|e| e.starts_with("record 2: ") && e.contains("retention")),
            "{:?}",
            c.first_error
        );
    }

    #[test]
    fn conversions_are_bounded_by_their_body() {
        assert_eq!(Converted::budget(0), CONVERSION_FLOOR);
        assert_eq!(Converted::budget(9 << 18), 36 << 20);
        assert_eq!(Converted::budget(10 << 20), CONVERSION_CEILING);
        let mut c = Converted::within(TimeWindow::ALL, 9 << 18);
        let budget = Converted::budget(9 << 18);
        assert!(c.fits(budget));
        assert!(!c.fits(budget + 1), "one byte past the budget");
        assert!(!c.fits(1), "once over, a request stays over");
        let e = c.check_budget().expect_err("over");
        assert_eq!((e.budget, e.body), (budget, 9 << 18));
        assert!(e.to_string().contains("× its body"), "{e}");
        // Records rejected cost their building too; once over, nothing
        // more is taken.
        let mut c = Converted::within(TimeWindow::ALL, 0);
        let bad = serde_json::json!({"message": "x", "level": "loud"});
        let mut tried = 0;
        while c.fits(1000) {
            c.push(&bad, "t");
            tried += 1;
        }
        assert_eq!((tried, c.rejected), (CONVERSION_FLOOR / 1000, CONVERSION_FLOOR / 1000));
        c.push(&serde_json::json!({"message": "late"}), "t");
        assert_eq!(c.count, 0);
    }

    #[test]
    fn a_record_costs_at_least_its_smallest_line_and_at_most_its_real_one() {
        // An estimate of nothing is charged as the smallest record.
        let mut c = Converted::within(TimeWindow::ALL, 0);
        let mut n = 0;
        while c.fits(0) {
            n += 1;
        }
        assert_eq!(n, CONVERSION_FLOOR / MIN_RECORD_CHARGE);
        // Escapes make a line six times its estimate: the line is charged.
        let mut c = Converted::within(TimeWindow::ALL, 0);
        let control = "\u{1}".repeat(1000);
        let doc = serde_json::json!({"message": control});
        let mut taken = 0;
        while c.fits(1000) {
            c.push(&doc, "t");
            if c.check_budget().is_ok() {
                taken += 1;
            }
        }
        let line = serde_json::to_vec(&doc).expect("json").len() + 1;
        assert!(line > 6000, "{line}");
        assert_eq!(taken, CONVERSION_FLOOR / line);
        assert!(c.body.len() <= CONVERSION_FLOOR);
        // Refused unbuilt, a record still costs the smallest charge.
        let mut c = Converted::within(TimeWindow::ALL, 0);
        c.reject("too many values");
        assert_eq!(c.first_error.as_deref(), Some("record 1: too many values"));
        assert_eq!((c.rejected, c.spent), (1, MIN_RECORD_CHARGE));
    }

    #[test]
    fn converted_records_are_queued_in_entries_the_parser_can_take() {
        let mut c = Converted::within(TimeWindow::ALL, 0);
        let doc = serde_json::json!({"message": "m".repeat(1 << 20)});
        for _ in 0..20 {
            assert!(c.fits(1 << 20));
            c.push(&doc, "t");
        }
        let entries = c.entries();
        assert_eq!(entries.iter().map(|(_, n)| n).sum::<usize>(), 20);
        assert_eq!(entries.len(), 3, "7 + 7 + 6 records of 1 MiB");
        for (body, count) in &entries {
            assert!(body.len() <= CONVERTED_ENTRY_BYTES);
            assert_eq!(ndjson_lines(body).len(), *count);
        }
        assert!(c.entries().is_empty(), "taken out");
        // One record past a whole entry is refused alone.
        let mut c = Converted::within(TimeWindow::ALL, 0);
        let huge = serde_json::json!({"message": "\u{1}".repeat(CONVERTED_ENTRY_BYTES / 5)});
        assert!(c.fits(1000));
        c.push(&huge, "t");
        assert!(c.fits(10));
        c.push(&serde_json::json!({"message": "small"}), "t");
        assert_eq!((c.count, c.rejected), (1, 1));
        assert!(
            c.first_error.as_deref().is_some_and(|e| e.starts_with("record 1: ")),
            "{:?}",
            c.first_error
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(Format::from_content_type(None).ok().map(|f| f.0), Some(Format::Json));
        assert_eq!(
            Format::from_content_type(Some("application/x-ndjson; charset=utf-8"))
                .ok()
                .map(|f| f.1),
            Some("application/x-ndjson")
        );
        assert_eq!(
            Format::from_content_type(Some("text/plain")).ok().map(|f| f.0),
            Some(Format::Text)
        );
        assert!(matches!(
            Format::from_content_type(Some("image/png")),
            Err(IngestError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn tenant_mismatch_is_refused() {
        let body = br#"[{"message":"a","tenant_id":"acme"},{"message":"b","tenant_id":"other"}]"#;
        match check_body(Format::Json, body, "acme") {
            Err(IngestError::WrongTenant { index, named, .. }) => {
                assert_eq!(index, 1);
                assert_eq!(named, "other");
            }
            other => panic!("expected WrongTenant, got {other:?}"),
        }
        assert_eq!(check_body(Format::Json, body, "other").map(|c| c.count).ok(), None);
        assert_eq!(
            check_body(
                Format::Json,
                br#"{"message":"a","timestamp":"1970-01-01T00:00:01Z"}"#,
                "acme"
            )
            .ok(),
            Some(Checked {
                count: 1,
                first_ts_ms: 1000
            })
        );
    }

    #[test]
    fn text_bodies() {
        assert_eq!(
            check_body(Format::Text, b"a\n\n b \n", "t").map(|c| c.count).ok(),
            Some(2)
        );
        assert!(check_body(Format::Text, b"\n \n", "t").is_err());
        assert!(check_body(Format::Text, &[0x61, 0xff], "t").is_err());
    }

    proptest! {
        // The decoder sees hostile input first: whatever the bytes, it
        // answers Ok or a 4xx error, never a panic.
        #[test]
        fn decoder_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = check_body(Format::Json, &body, "acme");
            let _ = check_body(Format::Text, &body, "acme");
        }

        #[test]
        fn json_shaped_garbage_never_panics(body in r#"[\[\]{}",:0-9a-z\\ \n.-]{0,200}"#) {
            let _ = check_body(Format::Json, body.as_bytes(), "acme");
        }

        // Any set of well-formed records is accepted, counted exactly, and
        // reported on the right line when one is broken.
        #[test]
        fn ndjson_counts_and_bad_lines(
            msgs in proptest::collection::vec("[ -~]{0,40}", 1..30),
            bad in any::<prop::sample::Index>(),
        ) {
            let lines: Vec<String> = msgs.iter().map(|m| serde_json::json!({"message": m, "level": "warn"}).to_string()).collect();
            let body = lines.join("\n");
            prop_assert_eq!(check_body(Format::Json, body.as_bytes(), "acme").map(|c| c.count).ok(), Some(msgs.len()));
            let bad_line = bad.index(lines.len());
            let mut broken = lines.clone();
            broken[bad_line] = r#"{"message": "x", "level": "loud"}"#.to_string();
            match check_body(Format::Json, broken.join("\n").as_bytes(), "acme") {
                Err(IngestError::BadRequest(m)) => prop_assert!(m.starts_with(&format!("line {} ", bad_line + 1)), "{}", m),
                other => prop_assert!(false, "expected a bad request, got {:?}", other),
            }
        }
    }
}
