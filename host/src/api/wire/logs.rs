//! The logs' bodies: a record as sent to `POST /v1/logs` and its 202, and
//! records as read back (search pages, one record, the tail, stats).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::model::{LogRecord, Page, Stats, format_ts};
use crate::search::service::Source;

#[derive(Serialize, ToSchema)]
pub struct RecordJson {
    pub id: String,
    pub tenant: String,
    pub service: String,
    pub level: &'static str,
    pub timestamp: String,
    pub received_at: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Each value as it was sent: a string, a number or a boolean.
    #[schema(value_type = BTreeMap<String, Object>)]
    pub attributes: Map<String, Value>,
}

/// A log record as sent to `POST /v1/logs` (DESIGN §3). Field names
/// shippers use are read too (`@timestamp`, `time`, `ts`, `log`, `msg`,
/// `severity`, `log.level`, `service.name`, …).
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: ingest decodes bodies itself (`ingest`)
pub struct RecordIn {
    /// A ULID or UUID; assigned when absent.
    id: Option<String>,
    /// The key's tenant; another one is refused (403).
    tenant_id: Option<String>,
    service: Option<String>,
    /// trace, debug, info, warn, error or fatal, in any case, or their
    /// usual aliases; `info` when absent.
    level: Option<String>,
    /// RFC 3339, or epoch seconds or milliseconds; arrival time when absent.
    timestamp: Option<String>,
    message: String,
    /// The whole log, e.g. a stack trace.
    full_log: Option<String>,
    language: Option<String>,
    /// Strings, numbers and booleans keep their type; a nested object
    /// becomes dotted keys (`http.status`).
    #[schema(value_type = Option<BTreeMap<String, Object>>)]
    attributes: Option<BTreeMap<String, Value>>,
}

impl From<LogRecord> for RecordJson {
    fn from(r: LogRecord) -> Self {
        RecordJson {
            level: r.level.as_str(),
            timestamp: format_ts(r.timestamp),
            received_at: format_ts(r.received_at),
            attributes: crate::model::attributes_to_json(&r.attributes),
            id: r.id,
            tenant: r.tenant,
            service: r.service,
            message: r.message,
            language: r.language,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DetailJson {
    #[serde(flatten)]
    pub record: RecordJson,
    pub full_log: String,
    pub raw_path: Option<String>,
    pub source: &'static str,
}

impl DetailJson {
    pub fn new(mut r: LogRecord, source: Source) -> Self {
        let full_log = std::mem::take(&mut r.full_log);
        let raw_path = r.raw_path.take();
        DetailJson {
            record: r.into(),
            full_log,
            raw_path,
            source: source.as_str(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PageJson {
    /// Matches over all pages: exact (`total_relation` `eq`), or at least
    /// this many (`gte`, past 10,000 unless `track_total_hits=true`).
    pub total: u64,
    /// `eq` or `gte`, as OpenSearch says it.
    pub total_relation: &'static str,
    pub hits: Vec<RecordJson>,
    pub next_cursor: Option<String>,
}

impl From<Page> for PageJson {
    fn from(p: Page) -> Self {
        PageJson {
            total: p.total,
            total_relation: if p.total_exact { "eq" } else { "gte" },
            hits: p.hits.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor.map(|c| c.to_string()),
        }
    }
}

/// One `logs` event of GET /v1/tail.
#[derive(Serialize, ToSchema)]
pub struct TailEvent {
    /// Oldest first.
    pub hits: Vec<RecordJson>,
    /// New logs the tail could not read in time (a flood); search finds them.
    pub dropped: u64,
}

/// 202 of POST /v1/logs.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub accepted: usize,
}

#[derive(Serialize, ToSchema)]
pub struct Bucket {
    pub start: String,
    pub count: u64,
    /// The bucket's count per level (levels with none are left out), for
    /// a histogram stacked by level.
    #[schema(value_type = BTreeMap<String, u64>)]
    pub by_level: BTreeMap<&'static str, u64>,
}

/// GET /v1/stats.
#[derive(Serialize, ToSchema)]
pub struct StatsJson {
    pub total: u64,
    pub by_level: BTreeMap<&'static str, u64>,
    pub by_service: BTreeMap<String, u64>,
    pub interval_seconds: i64,
    pub histogram: Vec<Bucket>,
}

impl StatsJson {
    pub fn new(s: Stats, interval_ns: i64) -> Self {
        StatsJson {
            total: s.total,
            by_level: s.by_level.iter().map(|(l, n)| (l.as_str(), *n)).collect(),
            by_service: s.by_service.into_iter().collect(),
            interval_seconds: interval_ns / 1_000_000_000,
            histogram: s
                .histogram
                .into_iter()
                .map(|(t, counts)| Bucket {
                    start: format_ts(t),
                    count: counts.total(),
                    by_level: counts.iter().map(|(l, n)| (l.as_str(), n)).collect(),
                })
                .collect(),
        }
    }
}
