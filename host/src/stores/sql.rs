//! What the two SQL stores share: how a database failure maps to a kind,
//! and how rows become pages, keys and stats. Only `stores::sql`,
//! `stores::sqlite` and `stores::postgres` know sqlx.

use crate::error::{Backend, BackendError, ErrorKind};
use crate::model::{self, Cursor, Level, LogRecord, Page, Stats};

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
    Page {
        total: u64::try_from(total).unwrap_or(0),
        hits,
        next_cursor,
    }
}

/// Stats from the rows of the three stats queries: (level, count),
/// (service, count) and (bucket start, count).
pub(super) fn stats(levels: Vec<(i64, i64)>, services: Vec<(String, i64)>, buckets: Vec<(i64, i64)>) -> Stats {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut stats = Stats::default();
    for (level, n) in levels {
        if let Some(l) = u8::try_from(level).ok().and_then(Level::from_u8) {
            stats.by_level.push((l, count(n)));
            stats.total += count(n);
        }
    }
    stats.by_service = services.into_iter().map(|(s, n)| (s, count(n))).collect();
    stats.histogram = buckets.into_iter().map(|(b, n)| (b, count(n))).collect();
    stats
}

/// At most this many services are counted by the stats.
pub(super) const STATS_MAX_SERVICES: i64 = 1000;

/// Attributes as a JSON object of strings, as both stores keep them.
pub(super) fn attributes_json(attrs: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = attrs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

pub(super) fn attributes_from_json(json: &str) -> Result<Vec<(String, String)>, BackendError> {
    Ok(serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
        .map_err(|e| BackendError::corrupt(Backend::Metadata, format!("attributes: {e}")))?
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
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

    #[test]
    fn stats_fold_rows() {
        let s = stats(vec![(4, 2), (2, 3), (99, 7)], vec![("web".into(), 5)], vec![(0, 5)]);
        assert_eq!(s.total, 5, "an unknown level is not counted");
        assert_eq!(s.by_level, vec![(Level::Error, 2), (Level::Info, 3)]);
        assert_eq!(s.by_service, vec![("web".to_string(), 5)]);
        assert_eq!(s.histogram, vec![(0, 5)]);
    }
}
