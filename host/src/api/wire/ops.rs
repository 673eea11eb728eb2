//! How the server and a tenant's use stand: `GET /health`, `GET /ready`
//! and `GET /v1/usage`.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

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
