//! Query parameters of the list view, search and stats, checked into the
//! model's filters, cursor, limit and interval.

use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use crate::model::{Cursor, Level, LogFilter};
use loggerhub_codec::limits::MAX_SERVICE_BYTES;
use loggerhub_codec::time::parse_rfc3339;

/// A JSON body, whatever its `Content-Type` says: `curl -d` says a form,
/// and a person trying the API should not have to add a header to be
/// understood. Refused as `invalid_json`, like a body that does not parse.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            super::error::ErrorCode::InvalidJson,
            format!("the body is not the JSON this takes: {e}"),
        )
    })
}

/// Largest page (DESIGN §4).
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 100;
/// Widest histogram bucket: 366 days.
const MAX_INTERVAL_NS: i64 = 366 * 86_400 * 1_000_000_000;

/// Query parameters of the list view, search and stats.
#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Search only: terms (ANDed), `"phrases"`, `-excluded`, `service:x`,
    /// `level:error`, `attributes.key:value`.
    pub q: Option<String>,
    pub service: Option<String>,
    /// trace, debug, info, warn, error or fatal.
    pub level: Option<String>,
    /// RFC 3339; inclusive.
    pub from: Option<String>,
    /// RFC 3339; exclusive.
    pub to: Option<String>,
    /// List and search: 1 to 1000, default 100.
    pub limit: Option<usize>,
    /// List and search: the `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// Stats only: a histogram bucket, as `30s`, `5m`, `1h` (default) or `1d`.
    pub interval: Option<String>,
    /// List and search: count every match for `total`; by default the
    /// count stops at 10,000 and says `"total_relation": "gte"`.
    pub track_total_hits: Option<bool>,
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
        if let Some(s) = &self.service
            && s.len() > MAX_SERVICE_BYTES
        {
            return Err(ApiError::bad_request(format!(
                "`service` is at most {MAX_SERVICE_BYTES} bytes"
            )));
        }
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
        // At most a year per bucket: a histogram needs no wider one, and
        // the product must not overflow.
        match n.checked_mul(unit_ns) {
            Some(ns) if n >= 1 && ns <= MAX_INTERVAL_NS => Ok(ns),
            _ => Err(bad()),
        }
    }
}

/// Query parameters of the dead-letter list.
#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LetterParams {
    /// 1 to 100, default 20.
    pub limit: Option<usize>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// Largest page of dead letters (each may hold a whole request).
pub const MAX_LETTER_LIMIT: usize = 100;
pub const DEFAULT_LETTER_LIMIT: usize = 20;

impl LetterParams {
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LETTER_LIMIT),
            Some(n) if (1..=MAX_LETTER_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::bad_request(format!(
                "`limit` must be 1 to {MAX_LETTER_LIMIT}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(s: &str) -> Result<i64, ApiError> {
        ListParams {
            interval: Some(s.into()),
            ..ListParams::default()
        }
        .interval_ns()
    }

    #[test]
    fn intervals_are_bounded() {
        assert_eq!(interval("30s").ok(), Some(30_000_000_000));
        assert_eq!(interval("1d").ok(), Some(86_400_000_000_000));
        assert_eq!(interval("366d").ok(), Some(MAX_INTERVAL_NS));
        for bad in ["0s", "367d", "3000000h", "99999999999999999999s", "1w", "h", "-1h", ""] {
            assert!(interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_and_times() {
        let p = |limit: Option<usize>, from: Option<&str>, to: Option<&str>| ListParams {
            limit,
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            ..ListParams::default()
        };
        assert_eq!(p(None, None, None).limit().ok(), Some(DEFAULT_LIMIT));
        assert!(p(Some(0), None, None).limit().is_err());
        assert!(p(Some(MAX_LIMIT + 1), None, None).limit().is_err());
        assert!(p(None, Some("yesterday"), None).filter().is_err());
        let long_service = ListParams {
            service: Some("s".repeat(MAX_SERVICE_BYTES + 1)),
            ..ListParams::default()
        };
        assert!(long_service.filter().is_err());
        assert!(
            p(None, Some("2025-10-10T12:00:00Z"), Some("2025-10-10T11:00:00Z"))
                .filter()
                .is_err()
        );
        assert!(
            p(None, Some("2025-10-10T11:00:00Z"), Some("2025-10-10T12:00:00Z"))
                .filter()
                .is_ok()
        );
    }
}
