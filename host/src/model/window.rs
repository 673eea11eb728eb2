//! The times a tenant may store (DESIGN §6, time). Counted from when a
//! record arrived:
//!
//! - **older than the plan's retention**: refused. Ingest answers 400
//!   `timestamp_out_of_range` (the shipper protocols refuse the record
//!   alone); a text line the tenant's parser stamps so is dead-lettered
//!   with that kind. Taken in, it would be deleted at the next sweep.
//! - **more than `FUTURE_GRACE` ahead**: stored at its arrival time, the
//!   time it carried kept as the attribute `ORIGINAL_TIMESTAMP`. Such times
//!   come from a wrong clock or a zone-less local time read as UTC (RFC
//!   3164 syslog east of Greenwich); refusing them would lose the logs,
//!   keeping them would pin the newest end of every view.
//!
//! So retention, raw-object names and the live tail can rely on every
//! stored timestamp being in range.

use std::time::Duration;

use super::format_ts;

/// How far ahead of the arrival time a record may be stamped: clocks
/// drift, and shippers batch. Loki's `creation_grace_period` is the same
/// ten minutes.
pub const FUTURE_GRACE: Duration = Duration::from_secs(600);

/// The attribute that keeps a time that was too far ahead.
pub const ORIGINAL_TIMESTAMP: &str = "original_timestamp";

/// The range of timestamps a tenant may store, for records that arrived at
/// one moment (or over a span).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Unix ns; older is refused.
    pub oldest: i64,
    /// Unix ns; newer is stored at `arrival`.
    pub newest: i64,
    /// Unix ns: when the records arrived (the last of them, for a span).
    pub arrival: i64,
    retention: Duration,
}

/// A time older than the tenant may store; the message names the bound and
/// why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "timestamp {ts} is older than the plan's retention of {retention} (the oldest accepted now is {oldest}): it would be deleted at once"
)]
pub struct TooOld {
    ts: String,
    retention: String,
    oldest: String,
}

/// What a record's time comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// In the window: kept as it is.
    Kept,
    /// Too far ahead: stored at this time (the arrival), the original kept
    /// as `ORIGINAL_TIMESTAMP`.
    Clamped(i64),
}

impl TimeWindow {
    /// For records arriving at `arrival` (unix ns) to a tenant whose plan
    /// keeps logs for `retention`.
    pub fn at(arrival: i64, retention: Duration) -> TimeWindow {
        let ns = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        TimeWindow {
            oldest: arrival.saturating_sub(ns(retention)),
            newest: arrival.saturating_add(ns(FUTURE_GRACE)),
            arrival,
            retention,
        }
    }

    /// For records that arrived from `first` to `last` (unix ns): the
    /// oldest bound of the first, the newest of the last.
    pub fn spanning(first: i64, last: i64, retention: Duration) -> TimeWindow {
        TimeWindow {
            oldest: Self::at(first, retention).oldest,
            ..Self::at(last, retention)
        }
    }

    /// Every time: for tests of what is not about time.
    #[cfg(test)]
    pub const ALL: TimeWindow = TimeWindow {
        oldest: i64::MIN,
        newest: i64::MAX,
        arrival: 0,
        retention: Duration::MAX,
    };

    /// For records arriving now.
    pub fn now(retention: Duration) -> TimeWindow {
        Self::at(super::now_ns(), retention)
    }

    /// Refuses a time older than the retention.
    pub fn check(&self, ts: i64) -> Result<(), TooOld> {
        if ts < self.oldest {
            Err(TooOld {
                ts: format_ts(ts),
                retention: human(self.retention),
                oldest: format_ts(self.oldest),
            })
        } else {
            Ok(())
        }
    }

    /// Where a time that is not too old is stored.
    pub fn place(&self, ts: i64) -> Placed {
        if ts > self.newest {
            Placed::Clamped(self.arrival)
        } else {
            Placed::Kept
        }
    }
}

/// `7 days`, `10 minutes`, `90 seconds`: the largest unit that divides
/// (years of 365 days).
fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = [(365 * 86_400, "year"), (86_400, "day"), (3600, "hour"), (60, "minute")]
        .into_iter()
        .find(|&(u, _)| s >= u && s.is_multiple_of(u))
        .map_or((s, "second"), |(u, name)| (s / u, name));
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn old_is_refused_and_ahead_is_placed_at_arrival() {
        let arrival = 1_800_000_000 * S;
        let w = TimeWindow::at(arrival, Duration::from_secs(7 * 86_400));
        assert_eq!(w.check(arrival), Ok(()));
        assert_eq!(w.check(arrival - 7 * 86_400 * S), Ok(()));
        let old = w.check(arrival - 7 * 86_400 * S - 1).expect_err("too old");
        assert!(old.to_string().contains("retention of 7 days"), "{old}");
        assert_eq!(w.place(arrival + 600 * S), Placed::Kept);
        assert_eq!(w.place(arrival + 600 * S + 1), Placed::Clamped(arrival));
        // The far future and the far past saturate instead of wrapping.
        assert_eq!(
            TimeWindow::at(i64::MAX - 1, Duration::MAX).place(i64::MAX),
            Placed::Kept
        );
        assert_eq!(TimeWindow::at(i64::MIN + 1, Duration::MAX).check(i64::MIN), Ok(()));
        // A span: the first arrival's oldest bound, the last one's newest.
        let span = TimeWindow::spanning(arrival, arrival + 60 * S, Duration::from_secs(60));
        assert_eq!(
            (span.oldest, span.newest, span.arrival),
            (arrival - 60 * S, arrival + 660 * S, arrival + 60 * S)
        );
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(86_400)), "1 day");
        assert_eq!(human(Duration::from_secs(36_500 * 86_400)), "100 years");
        assert_eq!(human(Duration::from_secs(30 * 86_400)), "30 days");
        assert_eq!(human(Duration::from_secs(7200)), "2 hours");
        assert_eq!(human(Duration::from_secs(90)), "90 seconds");
    }
}
