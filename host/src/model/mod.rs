//! The log record as the host stores and serves it, and the vocabulary
//! shared by every store and service: tenant slugs, ids, filters, cursors,
//! pages, and the record's JSON form. Depends on nothing else in the host.

pub mod ids;
pub mod json;
pub mod window;

use std::fmt;

pub use json::{
    attr_from_json, attr_to_json, attributes_from_json, attributes_to_json, record_from_json, record_to_json,
    settle_attr,
};
use loggerhub_codec::time;
pub use loggerhub_codec::{Level, Record};

/// `^[a-z][a-z0-9_]{1,39}$` (DESIGN §4): a tenant slug, safe in schema,
/// index, object and directory names on every backend. Every slug that
/// comes from outside (a route, a body, the CLI, a directory or object name)
/// is parsed into one; a `Slug` cannot hold a separator, `..`, an absolute
/// path or a control character.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

/// A string that is not a tenant slug (kept short for messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant slug {0:?}: must match ^[a-z][a-z0-9_]{{1,39}}$")]
pub struct BadSlug(pub String);

impl Slug {
    pub fn parse(s: &str) -> Result<Slug, BadSlug> {
        if valid_slug(s) {
            Ok(Slug(s.to_string()))
        } else {
            Err(BadSlug(s.chars().take(60).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Slug {
    type Err = BadSlug;
    fn from_str(s: &str) -> Result<Slug, BadSlug> {
        Slug::parse(s)
    }
}

/// Whether `s` is a tenant slug; [`Slug::parse`] where the slug is kept.
pub fn valid_slug(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=40).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// A log record after the pipeline: what the stores hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub id: String,
    pub tenant: String,
    pub service: String,
    pub level: Level,
    /// Unix nanoseconds.
    pub timestamp: i64,
    /// Unix nanoseconds.
    pub received_at: i64,
    pub message: String,
    pub full_log: String,
    pub language: Option<String>,
    pub attributes: Vec<(String, String)>,
    /// `<object key>#<line>` in the raw store, when the record went there.
    pub raw_path: Option<String>,
}

impl LogRecord {
    /// About what the record takes as a raw line: its strings and the
    /// JSON around them (what usage counts as stored bytes).
    pub fn size(&self) -> usize {
        const FRAME: usize = 120;
        FRAME
            + self.id.len()
            + self.service.len()
            + self.message.len()
            + self.full_log.len()
            + self.language.as_ref().map_or(0, String::len)
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>()
    }
}

/// The metadata store keeps this many characters of a message (DESIGN §3).
pub const MESSAGE_PREVIEW_CHARS: usize = 500;

/// The most one queue entry of a shipper's converted records holds
/// (`ingest::Converted`): a larger request is queued as several, so the
/// pipeline's parser is never handed more than a `POST /v1/logs` of the
/// default limit could give it, and a dead letter of one fits the
/// dead-letter byte cap (`config`).
pub const CONVERTED_ENTRY_BYTES: usize = 8 << 20;

/// The first [`MESSAGE_PREVIEW_CHARS`] characters of `s`.
pub fn preview(s: &str) -> &str {
    match s.char_indices().nth(MESSAGE_PREVIEW_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Sort key of an id: its 128-bit value for ULIDs and UUIDs, so that every
/// store breaks timestamp ties the same way.
pub fn id_sort_key(id: &str) -> u128 {
    if let Ok(u) = ulid::Ulid::from_string(id) {
        return u.0;
    }
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    u128::from_str_radix(&hex, 16).unwrap_or(0)
}

/// Filters of the list view, search and stats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub service: Option<String>,
    pub level: Option<Level>,
    /// Inclusive lower bound, unix ns.
    pub from: Option<i64>,
    /// Exclusive upper bound, unix ns.
    pub to: Option<i64>,
}

/// Where a page ends: the (timestamp, id) of its last hit. Results are
/// ordered newest first by (timestamp, id), so the next page holds what
/// sorts strictly before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub timestamp: i64,
    pub id: String,
}

impl Cursor {
    pub fn of(rec: &LogRecord) -> Self {
        Cursor {
            timestamp: rec.timestamp,
            id: rec.id.clone(),
        }
    }

    /// Whether (timestamp, id) sorts strictly before the cursor.
    pub fn admits(&self, timestamp: i64, id: &str) -> bool {
        (timestamp, id_sort_key(id)) < (self.timestamp, id_sort_key(&self.id))
    }

    /// Parses the opaque form produced by `Display`.
    pub fn parse(s: &str) -> Option<Cursor> {
        let (ts, id) = s.split_once('_')?;
        let timestamp = ts.parse().ok()?;
        if id.is_empty() || id.len() > 64 {
            return None;
        }
        Some(Cursor {
            timestamp,
            id: id.to_string(),
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.timestamp, self.id)
    }
}

/// A page's total is counted up to this many matches; past it the page
/// says "at least" (as OpenSearch's `track_total_hits` does), unless the
/// caller asks for the exact count: a first page must not cost a count
/// of everything.
pub const TOTAL_BOUND: u64 = 10_000;

/// One page of a list or search.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Matches for the filters over all pages: exact, or (when
    /// `total_exact` is false) [`TOTAL_BOUND`], a lower bound.
    pub total: u64,
    pub total_exact: bool,
    pub hits: Vec<LogRecord>,
    pub next_cursor: Option<Cursor>,
}

/// Most buckets a stats histogram holds: more than any chart draws. A wider
/// request is refused (400) instead of built.
pub const STATS_MAX_BUCKETS: usize = 10_000;

/// Counts by level and service and a time histogram.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub total: u64,
    pub by_level: Vec<(Level, u64)>,
    pub by_service: Vec<(String, u64)>,
    /// (bucket start in unix ns, count per level), oldest first.
    pub histogram: Vec<(i64, LevelCounts)>,
}

/// Counts indexed by level (`Level as usize`), for a histogram stacked
/// by level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LevelCounts(pub [u64; Level::ALL.len()]);

impl LevelCounts {
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The non-zero counts, by level.
    pub fn iter(&self) -> impl Iterator<Item = (Level, u64)> + '_ {
        Level::ALL
            .iter()
            .zip(self.0)
            .filter(|(_, n)| *n > 0)
            .map(|(l, n)| (*l, n))
    }

    /// One level's count, as a test writes it.
    pub fn of(level: Level, n: u64) -> LevelCounts {
        let mut c = LevelCounts::default();
        c.0[level as usize] = n;
        c
    }
}

pub fn format_ts(ns: i64) -> String {
    time::format_rfc3339(ns)
}

/// Nanoseconds in a day.
pub const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// The UTC day of a unix-ns instant, counted from 1970-01-01.
pub fn day_of(ns: i64) -> i64 {
    ns.div_euclid(DAY_NS)
}

/// Reads RFC 3339 (what [`format_ts`] writes) into unix ns.
pub fn parse_ts(s: &str) -> Option<i64> {
    time::parse_rfc3339(s)
}

pub fn now_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["ab", "tenant_a", "a1", &format!("a{}", "b".repeat(39))] {
            assert!(valid_slug(ok), "{ok}");
        }
        for bad in [
            "a",
            "1a",
            "_a",
            "Tenant",
            "ten-ant",
            "tenant a",
            "",
            &format!("a{}", "b".repeat(40)),
            "tenänt",
            "../a",
            "a/b",
            "a\\b",
            "/ab",
            "ab\0",
            "ab\n",
            "..",
        ] {
            assert!(!valid_slug(bad), "{bad}");
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Slug::parse("tenant_a").map(|s| s.to_string()),
            Ok("tenant_a".to_string())
        );
    }

    proptest::proptest! {
        // Whatever the string, a slug that parses is one plain path
        // component of the allowed bytes, and parsing is exactly the check.
        #[test]
        fn parsed_slugs_are_single_safe_components(s in "\\PC{0,50}|[a-z0-9./\\\\%_-]{0,12}") {
            let parsed = Slug::parse(&s);
            proptest::prop_assert_eq!(parsed.is_ok(), valid_slug(&s));
            if let Ok(slug) = parsed {
                let mut parts = std::path::Path::new(slug.as_str()).components();
                proptest::prop_assert!(matches!(parts.next(), Some(std::path::Component::Normal(_))));
                proptest::prop_assert!(parts.next().is_none());
                proptest::prop_assert!(slug.as_str().bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'));
            }
        }
    }

    #[test]
    fn cursor_round_trip_and_order() {
        let c = Cursor {
            timestamp: 5,
            id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
        };
        assert_eq!(Cursor::parse(&c.to_string()), Some(c.clone()));
        assert!(c.admits(4, "01ARZ3NDEKTSV4RRFFQ69G5FAZ"));
        assert!(c.admits(5, "01ARZ3NDEKTSV4RRFFQ69G5FAT"));
        assert!(!c.admits(5, "01ARZ3NDEKTSV4RRFFQ69G5FAV"));
        assert!(!c.admits(6, "01ARZ3NDEKTSV4RRFFQ69G5FA0"));
        assert_eq!(Cursor::parse("nope"), None);
        assert_eq!(Cursor::parse("x_y"), None);
    }

    #[test]
    fn preview_cuts_on_chars() {
        let s = "é".repeat(600);
        assert_eq!(preview(&s).chars().count(), MESSAGE_PREVIEW_CHARS);
        assert_eq!(preview("short"), "short");
    }

    #[test]
    fn uuid_and_ulid_sort_keys() {
        assert_eq!(id_sort_key("00000000-0000-0000-0000-0000000000ff"), 255);
        assert!(id_sort_key("01ARZ3NDEKTSV4RRFFQ69G5FAW") > id_sort_key("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
    }
}
