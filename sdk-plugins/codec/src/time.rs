//! RFC 3339 timestamps <-> unix nanoseconds, without dependencies, so that the
//! host and WebAssembly plugins read timestamps exactly alike.

const NS_PER_SEC: i64 = 1_000_000_000;

/// Parses `2025-10-10T12:26:36Z`, `2025-10-10 12:26:36.123+02:00` and the
/// like into unix nanoseconds. Years 0000-9999.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = NS_PER_SEC / 10;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            frac_ns += i64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_secs = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec.min(59) - offset_secs;
    secs.checked_mul(NS_PER_SEC)?.checked_add(frac_ns)
}

/// Unix nanoseconds of a civil date and time `offset_secs` east of UTC;
/// `None` for a date or time that does not exist.
#[allow(clippy::too_many_arguments)]
pub fn from_parts(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    min: i64,
    sec: i64,
    frac_ns: i64,
    offset_secs: i64,
) -> Option<i64> {
    if !(0..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&min)
        || !(0..=60).contains(&sec)
        || !(0..NS_PER_SEC).contains(&frac_ns)
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec.min(59) - offset_secs;
    secs.checked_mul(NS_PER_SEC)?.checked_add(frac_ns)
}

/// Formats unix nanoseconds as `2025-10-10T12:26:36.123456789Z`, dropping
/// trailing zeros of the fraction (and the fraction when it is zero).
pub fn format_rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(NS_PER_SEC);
    let frac = ns.rem_euclid(NS_PER_SEC);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if frac != 0 {
        let f = format!("{frac:09}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// (year, month, day) of unix nanoseconds, for date-partitioned keys.
pub fn civil_date(ns: i64) -> (i64, i64, i64) {
    civil_from_days(ns.div_euclid(NS_PER_SEC).div_euclid(86_400))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's algorithms, proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let ns = parse_rfc3339("2025-10-10T12:26:36Z");
        assert_eq!(ns, Some(1_760_099_196 * NS_PER_SEC));
        assert_eq!(format_rfc3339(1_760_099_196 * NS_PER_SEC), "2025-10-10T12:26:36Z");
        assert_eq!(
            parse_rfc3339("2025-10-10T14:26:36.5+02:00"),
            Some(1_760_099_196 * NS_PER_SEC + 500_000_000)
        );
        assert_eq!(
            format_rfc3339(1_760_099_196 * NS_PER_SEC + 500_000_000),
            "2025-10-10T12:26:36.5Z"
        );
        assert_eq!(parse_rfc3339("1970-01-01 00:00:00.000000001z"), Some(1));
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(civil_date(1_760_099_196 * NS_PER_SEC), (2025, 10, 10));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2025-10-10",
            "2025-13-10T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "2025-10-10T24:00:00Z",
            "2025-10-10T12:26:36",
            "2025-10-10T12:26:36.Z",
            "2025-10-10T12:26:36+0200",
            "yesterday at noon",
            "2025-10-10T12:26:36Zjunk",
            "20٢5-10-10T12:26:36Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_across_centuries() {
        for ns in [
            0,
            951_782_400 * NS_PER_SEC,
            4_102_444_800 * NS_PER_SEC + 123,
            -2_208_988_800 * NS_PER_SEC,
        ] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ns)), Some(ns));
        }
    }
}
