//! JSON shapes of the API: only `api` knows them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{Cursor, Level, LogFilter, LogRecord, Page, format_ts};
use crate::search::service::Source;
use loggerhub_codec::time::parse_rfc3339;

use super::error::ApiError;

/// Largest page (DESIGN §4).
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 100;

#[derive(Serialize)]
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
    pub attributes: Map<String, Value>,
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

#[derive(Serialize)]
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

#[derive(Serialize)]
pub struct PageJson {
    pub total: u64,
    pub hits: Vec<RecordJson>,
    pub next_cursor: Option<String>,
}

impl From<Page> for PageJson {
    fn from(p: Page) -> Self {
        PageJson {
            total: p.total,
            hits: p.hits.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor.map(|c| c.to_string()),
        }
    }
}

/// Query parameters of the list view, search and stats.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub q: Option<String>,
    pub service: Option<String>,
    pub level: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    pub interval: Option<String>,
}

fn time_param(name: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            parse_rfc3339(s)
                .ok_or_else(|| ApiError::bad_request(format!("`{name}` must be an RFC 3339 time, got {s:?}")))
        })
        .transpose()
}

impl ListParams {
    pub fn filter(&self) -> Result<LogFilter, ApiError> {
        let level = self
            .level
            .as_deref()
            .map(|l| Level::parse(l).ok_or_else(|| ApiError::bad_request(format!("unknown level {l:?}"))))
            .transpose()?;
        let f = LogFilter {
            service: self.service.clone().filter(|s| !s.is_empty()),
            level,
            from: time_param("from", &self.from)?,
            to: time_param("to", &self.to)?,
        };
        if let (Some(a), Some(b)) = (f.from, f.to)
            && a > b
        {
            return Err(ApiError::bad_request("`from` is after `to`"));
        }
        Ok(f)
    }

    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(0) => Err(ApiError::bad_request("`limit` must be at least 1")),
            Some(n) if n > MAX_LIMIT => Err(ApiError::bad_request(format!("`limit` must be at most {MAX_LIMIT}"))),
            Some(n) => Ok(n),
        }
    }

    pub fn cursor(&self) -> Result<Option<Cursor>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| Cursor::parse(c).ok_or_else(|| ApiError::bad_request("invalid `cursor`")))
            .transpose()
    }

    /// `interval` as `30s`, `5m`, `1h`, `1d`; default 1h.
    pub fn interval_ns(&self) -> Result<i64, ApiError> {
        let Some(s) = self.interval.as_deref() else {
            return Ok(3_600_000_000_000);
        };
        let bad = || ApiError::bad_request(format!("`interval` must look like 30s, 5m, 1h or 1d, got {s:?}"));
        let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
        let n: i64 = num.parse().map_err(|_| bad())?;
        let unit_ns: i64 = match unit {
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return Err(bad()),
        };
        if !(1..=366 * 86_400).contains(&n) {
            return Err(bad());
        }
        Ok(n * unit_ns)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub slug: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[serde(default)]
    pub scopes: Vec<String>,
}
