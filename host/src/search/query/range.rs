//! `timestamp:` ranges: `>`, `>=`, `<`, `<=` before one time, or
//! `[from TO to]` with `{`/`}` for an end left out and `*` for an open
//! one, as OpenSearch's `query_string` writes them. A time is RFC 3339, a
//! date (`2025-10-10`, UTC), or `now` give or take whole units
//! (`now-15m`; `s`, `m`, `h`, `d`, `w`), read once when the query is.
//!
//! A date stands for its whole day, as OpenSearch rounds a date with parts
//! missing: `>=` and `[` start at its first instant, `<=` and `]` end at
//! its last, `>` and `{` start after it, `<` and `}` end before it.

use loggerhub_codec::time::parse_rfc3339;

use super::{Matcher, QueryError};

const NS: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * NS;

/// Most digits in `now-<n><unit>`: a billion weeks is past any record.
const MAX_AMOUNT_DIGITS: usize = 9;

fn err(message: impl Into<String>, at: usize) -> QueryError {
    QueryError {
        message: message.into(),
        at,
    }
}

/// Which end a time bounds, and whether the time itself is in.
#[derive(Clone, Copy)]
enum End {
    From { inclusive: bool },
    To { inclusive: bool },
}

/// The value after `timestamp:` as a matcher; `at` is where the term
/// starts, `now` what `now` means.
pub(super) fn time_range(value: &str, now: i64, at: usize) -> Result<Matcher, QueryError> {
    let one = |v: &str, end: End| -> Result<Option<i64>, QueryError> { bound(v.trim(), end, now, at).map(Some) };
    let (from, to) = if let Some(v) = value.strip_prefix(">=") {
        (one(v, End::From { inclusive: true })?, None)
    } else if let Some(v) = value.strip_prefix('>') {
        (one(v, End::From { inclusive: false })?, None)
    } else if let Some(v) = value.strip_prefix("<=") {
        (None, one(v, End::To { inclusive: true })?)
    } else if let Some(v) = value.strip_prefix('<') {
        (None, one(v, End::To { inclusive: false })?)
    } else if let Some(open) = value.strip_prefix(['[', '{']) {
        let from_in = value.starts_with('[');
        let (inner, to_in) = match (open.strip_suffix(']'), open.strip_suffix('}')) {
            (Some(inner), _) => (inner, true),
            (_, Some(inner)) => (inner, false),
            _ => return Err(err("a range ends with `]` or `}`", at)),
        };
        let Some((lo, hi)) = inner.split_once(" TO ") else {
            return Err(err("a range is `[from TO to]`", at));
        };
        let side = |v: &str, end: End| -> Result<Option<i64>, QueryError> {
            match v.trim() {
                "*" => Ok(None),
                v => one(v, end),
            }
        };
        (
            side(lo, End::From { inclusive: from_in })?,
            side(hi, End::To { inclusive: to_in })?,
        )
    } else {
        return Err(err(
            "`timestamp:` takes a range: `>`, `>=`, `<`, `<=` a time, or `[from TO to]`",
            at,
        ));
    };
    Ok(Matcher::Time { from, to })
}

/// One end of a range, in unix ns, the time itself in or out.
fn bound(v: &str, end: End, now: i64, at: usize) -> Result<i64, QueryError> {
    let (first, last) = instant(v, now).ok_or_else(|| {
        err(
            format!("{v:?} is not a time: write RFC 3339, a date (2025-10-10) or now-15m"),
            at,
        )
    })?;
    Ok(match end {
        End::From { inclusive: true } => first,
        End::From { inclusive: false } => last.saturating_add(1),
        End::To { inclusive: true } => last,
        End::To { inclusive: false } => first.saturating_sub(1),
    })
}

/// The first and last nanosecond `v` names: one instant, or a whole day.
fn instant(v: &str, now: i64) -> Option<(i64, i64)> {
    if let Some(math) = v.strip_prefix("now") {
        let t = relative(math, now)?;
        return Some((t, t));
    }
    if v.len() == 10 {
        let day = parse_rfc3339(&format!("{v}T00:00:00Z"))?;
        return Some((day, day.saturating_add(DAY_NS - 1)));
    }
    let t = parse_rfc3339(v)?;
    Some((t, t))
}

/// `now` moved by `-15m`, `+1h` (or not at all).
fn relative(math: &str, now: i64) -> Option<i64> {
    if math.is_empty() {
        return Some(now);
    }
    let (sign, rest) = match math.as_bytes().first()? {
        b'-' => (-1, &math[1..]),
        b'+' => (1, &math[1..]),
        _ => return None,
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > MAX_AMOUNT_DIGITS {
        return None;
    }
    let amount: i64 = rest[..digits].parse().ok()?;
    let unit = match &rest[digits..] {
        "s" => NS,
        "m" => 60 * NS,
        "h" => 3_600 * NS,
        "d" => DAY_NS,
        "w" => 7 * DAY_NS,
        _ => return None,
    };
    Some(now.saturating_add(sign * amount.saturating_mul(unit)))
}
