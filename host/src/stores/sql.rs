//! What the two SQL stores share: how a database failure maps to a kind,
//! and how rows become pages, keys and stats. Only `stores::sql`,
//! `stores::sqlite` and `stores::postgres` know sqlx.

use crate::error::{Backend, BackendError, ErrorKind};
use crate::model::{self, Cursor, Level, LevelCounts, LogFilter, LogRecord, Page, Stats};

/// Every database failure, with its kind: the processor retries what may
/// work later and the API answers 503 for it; a refusal of the data itself
/// (too large, against a constraint) is `Rejected`.
impl From<sqlx::Error> for BackendError {
    fn from(e: sqlx::Error) -> Self {
        let kind = match &e {
            sqlx::Error::RowNotFound => ErrorKind::NotFound,
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::TypeNotFound { .. } => ErrorKind::Corrupt,
            sqlx::Error::Database(db) => {
                let postgres = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some();
                database_kind(db.code().as_deref().unwrap_or(""), db.kind(), postgres)
            }
            _ => ErrorKind::Unavailable,
        };
        BackendError::new(Backend::Metadata, kind, e)
    }
}

/// The kind of an error the database itself answered, by SQLSTATE class on
/// PostgreSQL and by result code on SQLite (both put it in `code`).
fn database_kind(code: &str, kind: sqlx::error::ErrorKind, postgres: bool) -> ErrorKind {
    use sqlx::error::ErrorKind as Db;
    if matches!(
        kind,
        Db::UniqueViolation | Db::ForeignKeyViolation | Db::NotNullViolation | Db::CheckViolation
    ) {
        return ErrorKind::Rejected;
    }
    if !postgres {
        // SQLite: the primary result code is the low byte.
        return match code.parse::<u32>().unwrap_or(0) & 0xff {
            13 => ErrorKind::Full,          // SQLITE_FULL
            11 | 26 => ErrorKind::Corrupt,  // SQLITE_CORRUPT, SQLITE_NOTADB
            18..=20 => ErrorKind::Rejected, // TOOBIG, CONSTRAINT, MISMATCH
            _ => ErrorKind::Unavailable,    // BUSY, LOCKED, IOERR, …
        };
    }
    match code.get(..2).unwrap_or("") {
        // data exception, integrity constraint, program limit exceeded
        // (an index row over 8191 bytes)
        "22" | "23" | "54" => ErrorKind::Rejected,
        // insufficient resources (disk full, out of memory, too many
        // connections)
        "53" => ErrorKind::Full,
        "XX" => ErrorKind::Corrupt,
        _ if code == "42P01" || code == "3F000" => ErrorKind::NotFound,
        _ => ErrorKind::Unavailable,
    }
}

/// Sort key of an id as both stores keep it: 16 big-endian bytes.
pub(super) fn id_key(id: &str) -> Vec<u8> {
    model::id_sort_key(id).to_be_bytes().to_vec()
}

/// A page of a list made from up to `limit + 1` hits, newest first: the
/// extra hit only says that there is a next page.
pub(super) fn page(mut hits: Vec<LogRecord>, total: i64, limit: usize) -> Page {
    let next_cursor = if hits.len() > limit {
        hits.truncate(limit);
        hits.last().map(Cursor::of)
    } else {
        None
    };
    let total = u64::try_from(total).unwrap_or(0);
    Page {
        total: total.min(model::TOTAL_BOUND),
        total_exact: total <= model::TOTAL_BOUND,
        hits,
        next_cursor,
    }
}

/// Stats from the rows of the three stats queries: (level, count),
/// (service, count) and (bucket start, level, count), the buckets in
/// order. A level the store does not know is not counted.
pub(super) fn stats(levels: Vec<(i64, i64)>, services: Vec<(String, i64)>, buckets: Vec<(i64, i64, i64)>) -> Stats {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let level = |l: i64| u8::try_from(l).ok().and_then(Level::from_u8);
    let mut stats = Stats::default();
    for (l, n) in levels {
        if let Some(l) = level(l) {
            stats.by_level.push((l, count(n)));
            stats.total += count(n);
        }
    }
    stats.by_service = services.into_iter().map(|(s, n)| (s, count(n))).collect();
    for (b, l, n) in buckets {
        let Some(l) = level(l) else { continue };
        if stats.histogram.last().is_none_or(|(last, _)| *last != b) {
            stats.histogram.push((b, LevelCounts::default()));
        }
        if let Some((_, counts)) = stats.histogram.last_mut() {
            counts.0[l as usize] += count(n);
        }
    }
    stats.histogram.retain(|(_, c)| c.total() > 0);
    stats
}

/// At most this many services are counted by the stats.
pub(super) const STATS_MAX_SERVICES: i64 = 1000;

/// The grains of the count rollups both stores keep at write time (rows
/// of `(grain, bucket, service, level, n)`), coarsest first: stats over
/// days read hours, over hours minutes, and only the cut edges read logs.
pub(super) const MINUTE_NS: i64 = 60_000_000_000;
pub(super) const HOUR_NS: i64 = 60 * MINUTE_NS;
pub(super) const GRAINS: [i64; 2] = [HOUR_NS, MINUTE_NS];

/// The start of the `grain` bucket that holds `ts` (rounding down, also
/// before 1970).
pub(super) fn bucket_of(ts: i64, grain: i64) -> i64 {
    ts - ts.rem_euclid(grain)
}

/// A piece of a stats range and where its counts come from: a rollup's
/// grain, or the logs themselves (`None`). `None` bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub grain: Option<i64>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// Cuts `[from, to)` into spans: whole buckets of the coarsest grain that
/// divides `interval` (so that histogram buckets are unions of its
/// buckets), the cut edges from finer grains, and what no grain covers
/// whole from the logs.
pub(super) fn spans(from: Option<i64>, to: Option<i64>, interval_ns: i64) -> Vec<Span> {
    let grains: Vec<i64> = GRAINS.into_iter().filter(|g| interval_ns % g == 0).collect();
    let mut out = Vec::new();
    cut(from, to, &grains, &mut out);
    out
}

fn cut(from: Option<i64>, to: Option<i64>, grains: &[i64], out: &mut Vec<Span>) {
    let Some((&g, finer)) = grains.split_first() else {
        out.push(Span { grain: None, from, to });
        return;
    };
    let inner_from = from.map(|f| {
        let down = bucket_of(f, g);
        if down == f { f } else { down.saturating_add(g) }
    });
    let inner_to = to.map(|t| bucket_of(t, g));
    if let (Some(a), Some(b)) = (inner_from, inner_to)
        && a >= b
    {
        // No whole bucket of this grain inside.
        return cut(from, to, finer, out);
    }
    if from != inner_from {
        cut(from, inner_from, finer, out);
    }
    out.push(Span {
        grain: Some(g),
        from: inner_from,
        to: inner_to,
    });
    if to != inner_to {
        cut(inner_to, to, finer, out);
    }
}

impl Span {
    /// `filter` narrowed to this span.
    pub fn filter(&self, filter: &LogFilter) -> LogFilter {
        LogFilter {
            from: self.from,
            to: self.to,
            ..filter.clone()
        }
    }

    /// The column the span's range applies to.
    pub fn time_column(&self) -> &'static str {
        if self.grain.is_some() { "bucket" } else { "timestamp" }
    }

    /// The three stats queries of the span, each as the text before its
    /// filters (`WHERE …`, the store's own) and the text after: counts by
    /// level, by service and by histogram bucket. From a rollup its rows
    /// are summed, from the logs the rows are counted.
    pub fn stats_queries(&self, logs: &str, counts: &str, level: &str, interval: i64) -> [(String, String); 3] {
        let (table, n) = match self.grain {
            Some(_) => (counts, "CAST(SUM(n) AS BIGINT)"),
            None => (logs, "COUNT(*)"),
        };
        let time = self.time_column();
        [
            (
                format!("SELECT {level}, {n} FROM {table}"),
                " GROUP BY level".to_string(),
            ),
            (
                format!("SELECT service, {n} AS c FROM {table}"),
                format!(
                    " GROUP BY service ORDER BY c DESC, service LIMIT {}",
                    STATS_MAX_SERVICES * 10
                ),
            ),
            (
                format!(
                    "SELECT {time} - ((({time} % {interval}) + {interval}) % {interval}) AS b, {level}, {n} FROM {table}"
                ),
                // One bucket more than the cap, so the caller can tell that
                // it was exceeded: a bucket is at most one row per level.
                format!(
                    " GROUP BY b, level ORDER BY b LIMIT {}",
                    (model::STATS_MAX_BUCKETS + 1) * Level::ALL.len()
                ),
            ),
        ]
    }
}

/// What inserting (+1) or deleting (-1) the rows `(timestamp, service,
/// level)` changes in the rollups: `(grain, bucket, service, level) → n`,
/// in key order, so that concurrent writers take row locks in one order.
pub(super) fn rollup_deltas(rows: &[LoggedRow], sign: i64) -> Deltas {
    let mut deltas = Deltas::new();
    for r in rows {
        for g in GRAINS {
            *deltas
                .entry((
                    r.tenant.clone(),
                    g,
                    bucket_of(r.timestamp, g),
                    r.service.clone(),
                    r.level,
                ))
                .or_default() += sign;
        }
    }
    deltas
}

/// A log row as the rollups count it: what an insert or a delete returns.
#[derive(Debug, Clone)]
pub(super) struct LoggedRow {
    pub tenant: String,
    pub timestamp: i64,
    pub service: String,
    pub level: i64,
}

/// A rollup row's key: `(tenant, grain, bucket, service, level)`.
pub(super) type CountKey = (String, i64, i64, String, i64);
/// A change of `n` per rollup row.
pub(super) type Deltas = std::collections::BTreeMap<CountKey, i64>;

/// Sums the counts of several spans into one [`Stats`].
#[derive(Default)]
pub(super) struct StatsSum {
    levels: std::collections::BTreeMap<i64, i64>,
    services: std::collections::HashMap<String, i64>,
    buckets: std::collections::BTreeMap<(i64, i64), i64>,
}

impl StatsSum {
    pub fn add(&mut self, levels: Vec<(i64, i64)>, services: Vec<(String, i64)>, buckets: Vec<(i64, i64, i64)>) {
        for (l, n) in levels {
            *self.levels.entry(l).or_default() += n;
        }
        for (s, n) in services {
            *self.services.entry(s).or_default() += n;
        }
        for (b, l, n) in buckets {
            *self.buckets.entry((b, l)).or_default() += n;
        }
    }

    pub fn finish(self) -> Stats {
        let mut services: Vec<(String, i64)> = self.services.into_iter().filter(|(_, n)| *n > 0).collect();
        services.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        services.truncate(STATS_MAX_SERVICES as usize);
        stats(
            self.levels.into_iter().filter(|(_, n)| *n > 0).collect(),
            services,
            self.buckets
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|((b, l), n)| (b, l, n))
                .collect(),
        )
    }
}

/// Attributes as a JSON object of strings, as both stores keep them.
pub(super) fn attributes_json(attrs: &[(String, String)]) -> String {
    serde_json::Value::Object(crate::model::attributes_to_json(attrs)).to_string()
}

pub(super) fn attributes_from_json(json: &str) -> Result<Vec<(String, String)>, BackendError> {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
        .map(crate::model::attributes_from_json)
        .map_err(|e| BackendError::corrupt(Backend::Metadata, format!("attributes: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::error::ErrorKind as Db;

    #[test]
    fn database_answers_have_kinds() {
        // PostgreSQL: index row too large, value too long, disk full,
        // admin shutdown, a missing tenant schema.
        let pg = |code| database_kind(code, Db::Other, true);
        assert_eq!(pg("54000"), ErrorKind::Rejected);
        assert_eq!(pg("22001"), ErrorKind::Rejected);
        assert_eq!(pg("53100"), ErrorKind::Full);
        assert_eq!(pg("57P01"), ErrorKind::Unavailable);
        assert_eq!(pg("42P01"), ErrorKind::NotFound);
        assert_eq!(pg("08006"), ErrorKind::Unavailable);
        assert_eq!(database_kind("23505", Db::UniqueViolation, true), ErrorKind::Rejected);
        // SQLite: busy, full, a constraint's extended code, corrupt.
        let lite = |code| database_kind(code, Db::Other, false);
        assert_eq!(lite("5"), ErrorKind::Unavailable);
        assert_eq!(lite("13"), ErrorKind::Full);
        assert_eq!(lite("11"), ErrorKind::Corrupt);
        assert_eq!(lite("1555"), ErrorKind::Rejected, "SQLITE_CONSTRAINT_PRIMARYKEY");
        assert_eq!(database_kind("2067", Db::UniqueViolation, false), ErrorKind::Rejected);
        let down = BackendError::from(sqlx::Error::PoolTimedOut);
        assert_eq!((down.backend, down.kind), (Backend::Metadata, ErrorKind::Unavailable));
    }

    fn span(grain: Option<i64>, from: Option<i64>, to: Option<i64>) -> Span {
        Span { grain, from, to }
    }

    #[test]
    fn ranges_are_cut_into_rollup_buckets_and_raw_edges() {
        let (m, h) = (MINUTE_NS, HOUR_NS);
        // 00:00:30 to 02:01:10 in hours: a raw head, minutes to the first
        // hour, whole hours, a minute, a raw tail.
        assert_eq!(
            spans(Some(30_000_000_000), Some(2 * h + m + 10_000_000_000), h),
            vec![
                span(None, Some(30_000_000_000), Some(m)),
                span(Some(m), Some(m), Some(h)),
                span(Some(h), Some(h), Some(2 * h)),
                span(Some(m), Some(2 * h), Some(2 * h + m)),
                span(None, Some(2 * h + m), Some(2 * h + m + 10_000_000_000)),
            ]
        );
        // Aligned and open ranges need no edges.
        assert_eq!(spans(None, None, h), vec![span(Some(h), None, None)]);
        assert_eq!(spans(Some(h), None, 2 * h), vec![span(Some(h), Some(h), None)]);
        // A 5-minute histogram cannot use hours; 30 s buckets use no rollup.
        assert_eq!(
            spans(Some(0), Some(2 * h), 5 * m),
            vec![span(Some(m), Some(0), Some(2 * h))]
        );
        assert_eq!(
            spans(Some(0), Some(h), 30_000_000_000),
            vec![span(None, Some(0), Some(h))]
        );
        // Inside one minute: the logs only.
        assert_eq!(spans(Some(10), Some(20), h), vec![span(None, Some(10), Some(20))]);
        // Before 1970 the buckets still round down.
        assert_eq!(bucket_of(-1, m), -m);
        assert_eq!(spans(Some(-h), Some(0), h), vec![span(Some(h), Some(-h), Some(0))]);
    }

    #[test]
    fn spans_cover_the_range_once() {
        let (m, h) = (MINUTE_NS, HOUR_NS);
        for (from, to, interval) in [
            (7, 3 * h + 17, h),
            (m - 1, m + 1, m),
            (-5 * h - 3, 4 * h + 2, 2 * h),
            (0, 86_400_000_000_000, 86_400_000_000_000),
        ] {
            let s = spans(Some(from), Some(to), interval);
            assert_eq!(s.first().and_then(|s| s.from), Some(from));
            assert_eq!(s.last().and_then(|s| s.to), Some(to));
            for w in s.windows(2) {
                assert_eq!(w[0].to, w[1].from, "{s:?}");
            }
            for sp in &s {
                if let (Some(g), Some(a), Some(b)) = (sp.grain, sp.from, sp.to) {
                    assert!(a % g == 0 && b % g == 0 && a < b && interval % g == 0, "{sp:?}");
                }
            }
        }
    }

    #[test]
    fn deltas_count_each_row_in_every_grain() {
        let row = |timestamp, service: &str, level| LoggedRow {
            tenant: "acme".into(),
            timestamp,
            service: service.into(),
            level,
        };
        let d = rollup_deltas(
            &[
                row(61_000_000_000, "web", 4),
                row(62_000_000_000, "web", 4),
                row(0, "db", 2),
            ],
            -1,
        );
        let key = |g, b, s: &str, l| ("acme".to_string(), g, b, s.to_string(), l);
        assert_eq!(d[&key(MINUTE_NS, MINUTE_NS, "web", 4)], -2);
        assert_eq!(d[&key(HOUR_NS, 0, "web", 4)], -2);
        assert_eq!(d[&key(MINUTE_NS, 0, "db", 2)], -1);
        assert_eq!(d.len(), 4);
    }

    #[test]
    fn stats_fold_rows() {
        let s = stats(
            vec![(4, 2), (2, 3), (99, 7)],
            vec![("web".into(), 5)],
            vec![(0, 4, 2), (0, 2, 3), (0, 99, 7), (60, 99, 1)],
        );
        assert_eq!(s.total, 5, "an unknown level is not counted");
        assert_eq!(s.by_level, vec![(Level::Error, 2), (Level::Info, 3)]);
        assert_eq!(s.by_service, vec![("web".to_string(), 5)]);
        let mut want = LevelCounts::default();
        want.0[Level::Error as usize] = 2;
        want.0[Level::Info as usize] = 3;
        assert_eq!(
            s.histogram,
            vec![(0, want)],
            "a bucket of unknown levels only is dropped"
        );
    }
}
