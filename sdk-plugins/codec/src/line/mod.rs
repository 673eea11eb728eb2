//! Reading a log line's own time and level, in the conventions of common
//! software (docs/PARSING.md lists them, with the corpus and the figures):
//! RFC 3339 / ISO 8601 in their variants, syslog (RFC 3164 and 5424),
//! Apache and nginx, log4j and logback, Python, Go, java.util.logging,
//! Android logcat, klog, Redis, PostgreSQL, compact and year-less dates,
//! epoch seconds.
//!
//! The built-in line parser reads every `text/plain` line with it, and the
//! JSON decoder reads a shipped line with it (`payload::parse_json_ref_reading_lines`):
//! a record that names no level of its own, as Fluent Bit, Filebeat,
//! Promtail and Vector wrap the lines they tail.

mod level;
mod stamp;

use crate::Level;

/// The timestamp (unix ns) and level a line carries, if it does; `now`
/// places times written without a year or a date.
pub fn detect(line: &str, now: i64) -> (Option<i64>, Option<Level>) {
    let found = stamp::find(line, now);
    (found.map(|f| f.ns), level::find(line, found.map(|f| f.end)))
}

/// Now, in unix ns, for [`detect`]. (In a plugin the host grants the
/// clock; a batch parsed later than it arrived, such as a dead letter
/// replayed, still places year-less times within the year.)
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
