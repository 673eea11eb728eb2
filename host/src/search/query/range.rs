//! Ranges of numbers (`attributes.<key>:>500`) and of times.
//!
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
use loggerhub_codec::value::is_number;

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
    let (from, to) = ends(value, at, "a time", |v, end| bound(v, end, now, at))?;
    Ok(Matcher::Time { from, to })
}

/// The value after `attributes.<key>:` when it is a range: the numbers
/// from `from` to `to`, both in, as [`sortable`] keys (an end left out is
/// the next number in, so that every backend compares `>=` and `<=`).
pub(super) fn number_range(key: &str, value: &str, at: usize) -> Result<Matcher, QueryError> {
    let (from, to) = ends(value, at, "a number", |v, end| {
        let x: f64 = v.parse().ok().filter(|_| is_number(v)).ok_or_else(|| {
            err(
                format!(
                    "{v:?} is not a number: an attribute's range takes numbers as JSON writes them (500, -1.5, 2e3)"
                ),
                at,
            )
        })?;
        let x = if x == 0.0 { 0.0 } else { x };
        let bound = match end {
            End::From { inclusive: false } => x.next_up(),
            End::To { inclusive: false } => x.next_down(),
            End::From { .. } | End::To { .. } => x,
        };
        // Past the largest number there is none: an infinite end would
        // be no end at all to OpenSearch (JSON has no infinity).
        if !bound.is_finite() {
            return Err(err(format!("no number lies beyond {v}"), at));
        }
        Ok(sortable(bound))
    })?;
    Ok(Matcher::Number {
        key: key.to_string(),
        from,
        to,
    })
}

/// Whether an attribute's value (after `attributes.<key>:`) is a range
/// rather than a value: what `query_string` reads as one.
pub(super) fn is_range(value: &str) -> bool {
    value.starts_with(['>', '<', '[', '{'])
}

/// The ends `value` names, each read by `one` (`*` is an open end):
/// `>`, `>=`, `<`, `<=` one value, or `[from TO to]` with `{`/`}` for an
/// end left out.
fn ends<T>(
    value: &str,
    at: usize,
    what: &str,
    one: impl Fn(&str, End) -> Result<T, QueryError>,
) -> Result<(Option<T>, Option<T>), QueryError> {
    let one = |v: &str, end: End| one(v.trim(), end).map(Some);
    Ok(if let Some(v) = value.strip_prefix(">=") {
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
        let side = |v: &str, end: End| match v.trim() {
            "*" => Ok(None),
            v => one(v, end),
        };
        (
            side(lo, End::From { inclusive: from_in })?,
            side(hi, End::To { inclusive: to_in })?,
        )
    } else {
        return Err(err(
            format!("this takes a range: `>`, `>=`, `<`, `<=` {what}, or `[from TO to]`"),
            at,
        ));
    })
}

/// `x` as a u64 that orders as the numbers do (-0 is 0), so that a range
/// of numbers is a range of keys: the sign bit flipped for a positive
/// number, every bit for a negative one.
pub fn sortable(x: f64) -> u64 {
    let bits = if x == 0.0 { 0.0f64 } else { x }.to_bits();
    if bits >> 63 == 1 { !bits } else { bits | 1 << 63 }
}

/// The number a [`sortable`] key stands for.
pub fn unsortable(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 { key & !(1 << 63) } else { !key })
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

#[cfg(test)]
mod tests {
    use super::super::{Expr, Query};
    use super::*;

    #[test]
    fn number_ranges_on_attributes() {
        let range = |q: &str| match Query::parse(q).map(|q| q.expr) {
            Ok(Some(Expr::Match(Matcher::Number { key, from, to }))) => (key, from.map(unsortable), to.map(unsortable)),
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(range("@ms:>=500"), ("ms".into(), Some(500.0), None));
        assert_eq!(range("@ms:>500"), ("ms".into(), Some(500f64.next_up()), None));
        assert_eq!(
            range("attributes.http.status:[500 TO 599]"),
            ("http.status".into(), Some(500.0), Some(599.0))
        );
        assert_eq!(
            range("@ms:{-1.5 TO 2e3}"),
            ("ms".into(), Some((-1.5f64).next_up()), Some(2e3f64.next_down()))
        );
        assert_eq!(range("@ms:<0"), ("ms".into(), None, Some(0f64.next_down())));
        assert_eq!(range("@ms:[* TO *]"), ("ms".into(), None, None));
        assert_eq!(range("@ms:<=-0"), ("ms".into(), None, Some(0.0)));
        // Quoted, it is a value.
        assert!(matches!(
            Query::parse(r#"@op:">=""#).map(|q| q.expr),
            Ok(Some(Expr::Match(Matcher::Attribute { .. })))
        ));
        let at = |q: &str| Query::parse(q).expect_err(q);
        assert_eq!(at("level:error @ms:>fast").at, 13);
        assert!(at("@ms:>fast").message.contains("not a number"), "{}", at("@ms:>fast"));
        assert!(at("@ms:[1 TO 2").message.contains("not closed"));
        assert!(at("@ms:>1e999").message.contains("not a number"));
        assert!(at("@ms:>NaN").message.contains("not a number"));
        assert!(
            at("@ms:>1.7976931348623157e308")
                .message
                .contains("no number lies beyond")
        );
        assert!(
            at("@ms:<-1.7976931348623157e308")
                .message
                .contains("no number lies beyond")
        );
        assert!(Query::parse("@ms:>=1.7976931348623157e308").is_ok());
        // Keys order as numbers do, -0 and 0 alike.
        let mut xs = [-1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, 1e300];
        xs.sort_by_key(|x| sortable(*x));
        assert_eq!(xs.map(|x| x == 0.0), [false, false, true, true, false, false, false]);
        assert_eq!(sortable(-0.0), sortable(0.0));
        for x in xs {
            assert_eq!(unsortable(sortable(x)), if x == 0.0 { 0.0 } else { x });
        }
    }
}
