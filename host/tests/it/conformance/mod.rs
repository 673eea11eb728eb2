//! Conformance suites, one per backend trait.

pub mod differential;
pub mod index;
pub mod metadata;
pub mod queue;
pub mod raw;

use loggerhub::model::{LogRecord, id_sort_key};

/// A recent instant (a multiple of 10 s) the suites' records start at.
pub const T0: i64 = 1_760_000_000_000_000_000;
pub const SEC: i64 = 1_000_000_000;

/// The ids of `recs` in the order every store answers: newest first by
/// (timestamp, id).
pub fn newest_first(recs: impl IntoIterator<Item = LogRecord>) -> Vec<String> {
    let mut v: Vec<LogRecord> = recs.into_iter().collect();
    v.sort_by_key(|r| std::cmp::Reverse((r.timestamp, id_sort_key(&r.id))));
    v.into_iter().map(|r| r.id).collect()
}
