//! JSON shapes of the API, one type per request and response body: only
//! `api` knows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::model::{LogRecord, Page, Stats, format_ts};
use crate::plugins::PluginInfo;
use crate::plugins::stats::Figures;
use crate::search::service::Source;
use crate::stores::dead_letters::LetterPage;
use crate::stores::{ApiKey, Tenant};
use crate::tenants::NewKey;

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
    #[schema(value_type = BTreeMap<String, String>)]
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
    attributes: Option<BTreeMap<String, String>>,
}

impl From<LogRecord> for RecordJson {
    fn from(r: LogRecord) -> Self {
        RecordJson {
            level: r.level.as_str(),
            timestamp: format_ts(r.timestamp),
            received_at: format_ts(r.received_at),
            attributes: r.attributes.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub slug: String,
    /// The operator's default plan when absent.
    #[serde(default)]
    pub plan: Option<String>,
}

/// PATCH /v1/admin/tenants/{slug}.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub plan: Option<String>,
    /// `active` or `suspended`.
    pub state: Option<String>,
}

/// GET /v1/admin/plans.
#[derive(Serialize, ToSchema)]
pub struct PlanList {
    pub plans: BTreeMap<String, crate::tenants::plans::Plan>,
}

impl From<&crate::tenants::plans::Plans> for PlanList {
    fn from(plans: &crate::tenants::plans::Plans) -> Self {
        PlanList {
            plans: plans.iter().map(|(n, p)| (n.to_string(), p.clone())).collect(),
        }
    }
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[serde(default)]
    pub scopes: Vec<String>,
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

/// A key as minted: the secret is in this answer only.
#[derive(Serialize, ToSchema)]
pub struct NewKeyJson {
    pub id: String,
    pub key: String,
    pub scopes: Vec<&'static str>,
}

impl From<NewKey> for NewKeyJson {
    fn from(k: NewKey) -> Self {
        NewKeyJson {
            scopes: k.scopes.iter().map(|s| s.as_str()).collect(),
            id: k.id,
            key: k.secret,
        }
    }
}

/// 201 of POST /v1/admin/tenants.
#[derive(Serialize, ToSchema)]
pub struct TenantCreated {
    pub tenant: String,
    pub plan: String,
    pub api_key: NewKeyJson,
}

#[derive(Serialize, ToSchema)]
pub struct TenantJson {
    pub slug: String,
    pub created_at: String,
    pub plan: String,
    /// `active`, `suspended` or `deleting`.
    pub state: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantJson>,
}

impl From<Tenant> for TenantJson {
    fn from(t: Tenant) -> Self {
        TenantJson {
            created_at: format_ts(t.created_at),
            slug: t.slug,
            plan: t.plan,
            state: t.state.as_str(),
        }
    }
}

impl From<Vec<Tenant>> for TenantList {
    fn from(tenants: Vec<Tenant>) -> Self {
        TenantList {
            tenants: tenants.into_iter().map(TenantJson::from).collect(),
        }
    }
}

/// A key as listed: never its secret.
#[derive(Serialize, ToSchema)]
pub struct KeyJson {
    pub id: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub revoked: bool,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyJson>,
}

impl From<Vec<ApiKey>> for KeyList {
    fn from(keys: Vec<ApiKey>) -> Self {
        KeyList {
            keys: keys
                .into_iter()
                .map(|k| KeyJson {
                    created_at: format_ts(k.created_at),
                    id: k.id,
                    scopes: k.scopes,
                    revoked: k.revoked,
                })
                .collect(),
        }
    }
}

/// 201 of PUT /v1/plugins/{stage}/{name}.
#[derive(Serialize, ToSchema)]
pub struct PluginUploaded {
    pub stage: &'static str,
    pub name: String,
    pub version: u32,
    pub active: u32,
}

#[derive(Serialize, ToSchema)]
pub struct PluginJson {
    pub stage: &'static str,
    pub name: String,
    pub builtin: bool,
    pub versions: Vec<u32>,
    pub active: Option<u32>,
    /// Why the plugin was disabled, if it was.
    pub disabled: Option<String>,
    /// Its calls since this server process started.
    pub figures: PluginFigures,
}

/// A plugin's calls since the process started (in a cluster, this
/// processor's).
#[derive(Serialize, ToSchema)]
pub struct PluginFigures {
    pub calls: u64,
    /// Calls that trapped, timed out, or returned an error or a bad batch.
    pub errors: u64,
    /// Records given to it (for a parser: request bodies).
    pub records_in: u64,
    pub records_out: u64,
    /// Mean time per call.
    pub mean_ms: f64,
    /// The slowest call.
    pub max_ms: f64,
}

impl From<Figures> for PluginFigures {
    fn from(f: Figures) -> Self {
        PluginFigures {
            calls: f.calls,
            errors: f.errors,
            records_in: f.records_in,
            records_out: f.records_out,
            mean_ms: if f.calls == 0 {
                0.0
            } else {
                f.busy_us as f64 / f.calls as f64 / 1000.0
            },
            max_ms: f.max_us as f64 / 1000.0,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PluginList {
    pub plugins: Vec<PluginJson>,
}

impl From<Vec<PluginInfo>> for PluginList {
    fn from(plugins: Vec<PluginInfo>) -> Self {
        PluginList {
            plugins: plugins
                .into_iter()
                .map(|p| PluginJson {
                    stage: p.stage,
                    name: p.name,
                    builtin: p.builtin,
                    versions: p.versions,
                    active: p.active,
                    disabled: p.disabled,
                    figures: p.figures.into(),
                })
                .collect(),
        }
    }
}

/// POST …/rollback.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    pub version: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct RolledBack {
    pub name: String,
    pub active: u32,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterJson {
    pub batch_id: String,
    pub received_at: String,
    pub content_type: String,
    pub plugin: String,
    pub kind: String,
    pub reason: String,
    /// The failed request or records; omitted for a key without the
    /// `search` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// How many records the body holds, when it holds records (a whole
    /// entry's body is as the client sent it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterList {
    /// Newest first.
    pub dead_letters: Vec<DeadLetterJson>,
    pub next_cursor: Option<String>,
    /// Letters the tenant holds (at most the operator's cap).
    pub total: usize,
    /// Letters dropped, oldest first, because the tenant was over its cap.
    pub dropped: u64,
}

impl From<LetterPage> for DeadLetterList {
    fn from(page: LetterPage) -> Self {
        DeadLetterList {
            next_cursor: page.next_cursor,
            total: page.total,
            dropped: page.dropped,
            dead_letters: page
                .letters
                .into_iter()
                .map(|d| DeadLetterJson {
                    batch_id: d.batch_id,
                    received_at: d.received_at,
                    content_type: d.content_type,
                    plugin: d.plugin,
                    kind: d.kind,
                    reason: d.reason,
                    body: Some(d.body),
                    records: d.records,
                })
                .collect(),
        }
    }
}

/// 202 of POST /v1/dead-letters/{id}/replay.
#[derive(Serialize, ToSchema)]
pub struct Replayed {
    pub replayed: String,
}

/// GET /health.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// One backend in GET /ready: "ok" or why not; the queue adds its depth.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum BackendReady {
    Status(String),
    Queue { status: String, entries: u64, bytes: u64 },
}

/// GET /ready.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    pub status: &'static str,
    /// The detail, for the operator only when an operator token is set.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub detail: Option<ReadyDetail>,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyDetail {
    pub roles: String,
    pub backends: BTreeMap<&'static str, BackendReady>,
}

/// GET /v1/usage.
#[derive(Serialize, ToSchema)]
pub struct UsageJson {
    pub tenant: String,
    pub plan: String,
    pub today: DayJson,
    pub limits: UsageLimits,
    /// What is used up for today: `daily_logs`, `daily_bytes`, `plugin_cpu`.
    pub exhausted: Vec<&'static str>,
    /// What the tenant's data takes in each store, as last measured.
    pub stored: Option<StoredJson>,
    /// The last 30 days with any use, oldest first, today last.
    pub days: Vec<DayJson>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageLimits {
    pub logs_per_second: u64,
    pub bytes_per_second: u64,
    pub daily_logs: u64,
    pub daily_bytes: u64,
    pub plugin_cpu_seconds_per_day: u64,
    pub retention_seconds: u64,
    pub dead_letter_cap: u32,
}

impl From<&crate::tenants::plans::Plan> for UsageLimits {
    fn from(p: &crate::tenants::plans::Plan) -> Self {
        UsageLimits {
            logs_per_second: p.logs_per_second,
            bytes_per_second: p.bytes_per_second,
            daily_logs: p.daily_logs,
            daily_bytes: p.daily_bytes,
            plugin_cpu_seconds_per_day: p.plugin_cpu_seconds_per_day,
            retention_seconds: p.retention().as_secs(),
            dead_letter_cap: p.dead_letter_cap,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DayJson {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// Records and body bytes ingest accepted.
    pub logs: u64,
    pub bytes: u64,
    /// Records and bytes the pipeline stored: what the tenant's plugins
    /// made of what was accepted (more, when they add records).
    pub stored_logs: u64,
    pub stored_bytes: u64,
    pub plugin_cpu_seconds: f64,
    pub dead_letters: u64,
    pub stored: Option<StoredJson>,
}

impl From<crate::usage::UsageDay> for DayJson {
    fn from(d: crate::usage::UsageDay) -> Self {
        let (y, m, dd) = loggerhub_codec::time::civil_date(d.day.saturating_mul(crate::model::DAY_NS));
        DayJson {
            day: format!("{y:04}-{m:02}-{dd:02}"),
            logs: d.used.logs,
            bytes: d.used.bytes,
            stored_logs: d.used.stored_logs,
            stored_bytes: d.used.stored_bytes,
            plugin_cpu_seconds: d.used.plugin_cpu_us as f64 / 1e6,
            dead_letters: d.used.dead_letters,
            stored: d.stored.map(Into::into),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct StoredJson {
    pub metadata_bytes: u64,
    pub raw_bytes: u64,
    pub index_bytes: u64,
}

impl From<crate::usage::Stored> for StoredJson {
    fn from(s: crate::usage::Stored) -> Self {
        StoredJson {
            metadata_bytes: s.metadata,
            raw_bytes: s.raw,
            index_bytes: s.index,
        }
    }
}
