//! Finding a line's own timestamp: the date and time conventions of common
//! software, looked for at the start of the line and of its first few
//! words. Times without a zone are UTC; a time without a year takes the
//! year that puts it closest before `now` (a day's grace for clocks ahead),
//! and a time without a date, the day that does.

use crate::time::from_parts;

/// Words of a line whose starts are tried: timestamps sit in the first few
/// (after a PID, a host or a file name at most).
const WORDS_TRIED: usize = 5;
/// How far into a line a timestamp may start.
const WINDOW: usize = 96;
const NS: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * NS;

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];
const WEEKDAYS: [&[u8; 3]; 7] = [b"mon", b"tue", b"wed", b"thu", b"fri", b"sat", b"sun"];

/// A timestamp found in a line: unix ns, and where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub ns: i64,
    pub end: usize,
}

/// The line's timestamp, if it has one near its start.
pub fn find(line: &str, now: i64) -> Option<Found> {
    let b = line.as_bytes();
    let window = b.len().min(WINDOW);
    let mut starts = Vec::with_capacity(WORDS_TRIED + 2);
    let mut i = 0;
    // `<PRI>` of a syslog line.
    if b.first() == Some(&b'<')
        && let Some(close) = b.iter().take(5).position(|c| *c == b'>')
    {
        i = close + 1;
    }
    let mut word = 0;
    while i < window && word < WORDS_TRIED {
        while i < window && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        if i >= window {
            break;
        }
        starts.push(i);
        // Inside brackets and after `key=` (`time="…"`, `[2025-…]`).
        let mut j = i;
        while j < window && matches!(b[j], b'[' | b'(' | b'"' | b'\'') {
            j += 1;
            starts.push(j);
        }
        while j < window && !matches!(b[j], b' ' | b'\t') {
            if b[j] == b'=' && j + 1 < window {
                starts.push(j + 1 + usize::from(b.get(j + 1) == Some(&b'"')));
            }
            j += 1;
        }
        i = j;
        word += 1;
    }
    starts.into_iter().find_map(|s| at(b, s, now))
}

/// A timestamp starting at `s`, in any of the known forms.
fn at(b: &[u8], s: usize, now: i64) -> Option<Found> {
    let c = Cur { b, i: s };
    let first = *b.get(s)?;
    if first.is_ascii_digit() {
        iso(c)
            .or_else(|| slashed_short(c))
            .or_else(|| compact(c))
            .or_else(|| clf(c))
            .or_else(|| day_month_year(c))
            .or_else(|| month_day(c, now))
            .or_else(|| time_only(c, now))
            .or_else(|| epoch(c))
    } else if first.is_ascii_alphabetic() {
        ctime(c).or_else(|| month_name(c, now)).or_else(|| klog(c, now))
    } else {
        None
    }
}

/// A cursor over the line's bytes; every reader returns the advanced copy.
#[derive(Clone, Copy)]
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn num(self, n: usize) -> Option<(i64, Cur<'a>)> {
        let digits = self.b.get(self.i..self.i + n)?;
        let mut v = 0i64;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(d - b'0');
        }
        Some((v, Cur { i: self.i + n, ..self }))
    }

    /// One or two digits (`Oct  9`, `Oct 9`, `Oct 09`): a padded day.
    fn day(self) -> Option<(i64, Cur<'a>)> {
        let c = self.skip(b' ');
        c.num(2).or_else(|| c.num(1))
    }

    fn lit(self, chars: &[u8]) -> Option<Cur<'a>> {
        let &c = self.b.get(self.i)?;
        chars.contains(&c).then_some(Cur { i: self.i + 1, ..self })
    }

    fn skip(self, c: u8) -> Cur<'a> {
        let mut i = self.i;
        while self.b.get(i) == Some(&c) {
            i += 1;
        }
        Cur { i, ..self }
    }

    fn peek(self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// `hh:mm:ss` (or with `sep`), then an optional fraction after `.`,
    /// `,` or `:`; returns seconds of the day and the fraction in ns.
    fn clock(self, seps: &[u8]) -> Option<(i64, i64, Cur<'a>)> {
        let (h, c) = self.num(2).or_else(|| self.num(1))?;
        let (m, c) = c.lit(seps)?.num(2)?;
        let (s, c) = c.lit(seps)?.num(2)?;
        if h > 23 || m > 59 || s > 60 {
            return None;
        }
        let (frac, c) = c.fraction();
        Some((h * 3600 + m * 60 + s.min(59), frac, c))
    }

    fn fraction(self) -> (i64, Cur<'a>) {
        let Some(c) = self.lit(b".,:") else {
            return (0, self);
        };
        let mut i = c.i;
        let mut frac = 0i64;
        let mut scale = NS / 10;
        while let Some(d) = self.b.get(i).filter(|d| d.is_ascii_digit()) {
            frac += i64::from(d - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == c.i { (0, self) } else { (frac, Cur { i, ..self }) }
    }

    /// `Z`, `±hh:mm`, `±hhmm`, `±hh`, ` UTC`, ` GMT`: seconds east of UTC;
    /// none is UTC.
    fn zone(self) -> (i64, Cur<'a>) {
        if let Some(c) = self.lit(b"Zz") {
            return (0, c);
        }
        let c = self.skip(b' ');
        for name in [&b"UTC"[..], b"GMT"] {
            if c.b.get(c.i..c.i + 3) == Some(name) {
                return (0, Cur { i: c.i + 3, ..c });
            }
        }
        let Some(sign) = c.peek().filter(|s| matches!(s, b'+' | b'-')) else {
            return (0, self);
        };
        let c1 = Cur { i: c.i + 1, ..c };
        let Some((h, c2)) = c1.num(2) else { return (0, self) };
        let (m, c3) = match c2.lit(b":").and_then(|c| c.num(2)).or_else(|| c2.num(2)) {
            Some(v) => v,
            None => (0, c2),
        };
        if h > 23 || m > 59 {
            return (0, self);
        }
        let off = h * 3600 + m * 60;
        (if sign == b'+' { off } else { -off }, c3)
    }

    /// Ends at a word boundary: not in the middle of a longer number.
    fn ends(self) -> bool {
        self.peek().is_none_or(|c| !c.is_ascii_alphanumeric())
    }
}

fn month_of(word: &[u8]) -> Option<i64> {
    let w = word.get(..3)?.to_ascii_lowercase();
    MONTHS.iter().position(|m| m[..] == w[..]).map(|p| p as i64 + 1)
}

fn month_word(c: Cur<'_>) -> Option<(i64, Cur<'_>)> {
    let m = month_of(c.b.get(c.i..c.i + 3)?)?;
    // `Oct` or `October`.
    let mut i = c.i + 3;
    while c.b.get(i).is_some_and(u8::is_ascii_alphabetic) {
        i += 1;
    }
    Some((m, Cur { i, ..c }))
}

fn found(ns: Option<i64>, c: Cur<'_>) -> Option<Found> {
    ns.map(|ns| Found { ns, end: c.i })
}

fn stamp(y: i64, mo: i64, d: i64, secs: i64, frac: i64, off: i64) -> Option<i64> {
    from_parts(y, mo, d, secs / 3600, secs / 60 % 60, secs % 60, frac, off)
}

/// `2025-10-10T12:26:36.123+02:00`, `2025-10-10 12:26:36,123`,
/// `2025/10/10 12:26:36` (nginx, Go), `2005-06-03-15.42.50.675872` (BGL),
/// `2025.10.10 12:26:36`.
fn iso(c: Cur<'_>) -> Option<Found> {
    let (y, c) = c.num(4)?;
    let sep = c.peek()?;
    if !matches!(sep, b'-' | b'/' | b'.') {
        return None;
    }
    let (mo, c) = c.lit(&[sep])?.num(2)?;
    let (d, c) = c.lit(&[sep])?.num(2)?;
    let c = c.lit(b"Tt _-")?.skip(b' ');
    let (secs, frac, c) = c.clock(b":").or_else(|| c.clock(b"."))?;
    let (off, c) = c.zone();
    found(stamp(y, mo, d, secs, frac, off), c)
}

/// `17/06/09 20:10:40` (Spark's default: yy/MM/dd).
fn slashed_short(c: Cur<'_>) -> Option<Found> {
    let (y, c) = c.num(2)?;
    let (mo, c) = c.lit(b"/")?.num(2)?;
    let (d, c) = c.lit(b"/")?.num(2)?;
    let (secs, frac, c) = c.lit(b" ")?.clock(b":")?;
    found(stamp(2000 + y, mo, d, secs, frac, 0), c)
}

/// `081109 203615` (HDFS: yyMMdd HHmmss), `20171223-22:15:29:606`
/// (HealthApp), `20251010T122636Z` (ISO 8601 basic).
fn compact(c: Cur<'_>) -> Option<Found> {
    if let Some((ymd, c1)) = c.num(6)
        && let Some(c2) = c1.lit(b" ")
        && let Some((hms, c3)) = c2.num(6)
        && c3.ends()
    {
        let (y, mo, d) = (2000 + ymd / 10_000, ymd / 100 % 100, ymd % 100);
        let secs = hms / 10_000 * 3600 + hms / 100 % 100 * 60 + hms % 100;
        if hms / 10_000 < 24 && hms / 100 % 100 < 60 && hms % 100 < 61 {
            return found(stamp(y, mo, d, secs, 0, 0), c3);
        }
    }
    let (ymd, c) = c.num(8)?;
    let (y, mo, d) = (ymd / 10_000, ymd / 100 % 100, ymd % 100);
    let c = c.lit(b"-Tt ")?;
    let (secs, frac, c) = match c.clock(b":") {
        Some(v) => v,
        None => {
            let (hms, c) = c.num(6)?;
            let (frac, c) = c.fraction();
            (hms / 10_000 * 3600 + hms / 100 % 100 * 60 + hms % 100, frac, c)
        }
    };
    let (off, c) = c.zone();
    found(stamp(y, mo, d, secs, frac, off), c)
}

/// `10/Oct/2000:13:55:36 -0700` (the access logs' common log format).
fn clf(c: Cur<'_>) -> Option<Found> {
    let (d, c) = c.num(2)?;
    let (mo, c) = month_word(c.lit(b"/")?)?;
    let (y, c) = c.lit(b"/")?.num(4)?;
    let (secs, frac, c) = c.lit(b":")?.clock(b":")?;
    let (off, c) = c.zone();
    found(stamp(y, mo, d, secs, frac, off), c)
}

/// `10 Oct 2025 12:26:36.123` (Redis).
fn day_month_year(c: Cur<'_>) -> Option<Found> {
    let (d, c) = c.num(2).or_else(|| c.num(1))?;
    let (mo, c) = month_word(c.lit(b" ")?)?;
    let (y, c) = c.lit(b" ")?.num(4)?;
    let (secs, frac, c) = c.lit(b" ")?.clock(b":")?;
    let (off, c) = c.zone();
    found(stamp(y, mo, d, secs, frac, off), c)
}

/// Year-less month and day: `03-17 16:13:38.811` (Android logcat),
/// `10.30 16:49:06` (Proxifier).
fn month_day(c: Cur<'_>, now: i64) -> Option<Found> {
    let (mo, c) = c.num(2)?;
    let (d, c) = c.lit(b"-.")?.num(2)?;
    let (secs, frac, c) = c.lit(b" ")?.clock(b":")?;
    found(yearless(mo, d, secs, frac, now), c)
}

/// `12:26:36.123` alone (logback's and log4j2's default layouts): today,
/// or yesterday when that is later than now.
fn time_only(c: Cur<'_>, now: i64) -> Option<Found> {
    let (secs, frac, c) = c.clock(b":")?;
    if !c.ends() {
        return None;
    }
    let midnight = now.div_euclid(DAY_NS) * DAY_NS;
    let mut ns = midnight + secs * NS + frac;
    if ns > now + DAY_NS / 24 {
        ns -= DAY_NS;
    }
    found(Some(ns), c)
}

/// Unix seconds (10 digits, with an optional fraction) or milliseconds
/// (13 digits) standing alone: Squid's access log, BGL.
fn epoch(c: Cur<'_>) -> Option<Found> {
    // The same years in milliseconds.
    if let Some((ms, c13)) = c.num(13)
        && c13.ends()
        && (1_000_000_000_000..2_000_000_000_000).contains(&ms)
    {
        return found(ms.checked_mul(1_000_000), c13);
    }
    let (s, c) = c.num(10)?;
    let (frac, c) = c.lit(b".").map_or((0, c), |_| c.fraction());
    // 2001-09-09 to 2033-05-18: what a 10-digit count of seconds in a log is.
    if !c.ends() || !(1_000_000_000..2_000_000_000).contains(&s) {
        return None;
    }
    found(Some(s * NS + frac), c)
}

/// `Wed Oct 11 14:32:52.123456 2000` (Apache's error log, ctime).
fn ctime(c: Cur<'_>) -> Option<Found> {
    let w = c.b.get(c.i..c.i + 3)?.to_ascii_lowercase();
    if !WEEKDAYS.iter().any(|d| d[..] == w[..]) {
        return None;
    }
    let mut c = Cur { i: c.i + 3, ..c };
    while c.peek().is_some_and(|x| x.is_ascii_alphabetic()) {
        c.i += 1;
    }
    let c = c.skip(b',').lit(b" ")?;
    let (mo, c) = month_word(c)?;
    let (d, c) = c.lit(b" ")?.day()?;
    let (secs, frac, c) = c.lit(b" ")?.clock(b":")?;
    let (y, c) = c.lit(b" ")?.num(4)?;
    found(stamp(y, mo, d, secs, frac, 0), c)
}

/// `Oct 11 22:14:15` (syslog, year-less), `Oct 10, 2025 12:26:36 PM`
/// (java.util.logging), `Oct 10 2025 12:26:36`.
fn month_name(c: Cur<'_>, now: i64) -> Option<Found> {
    let (mo, c) = month_word(c)?;
    let (d, c) = c.lit(b" ")?.day()?;
    let c = c.skip(b',');
    if let Some(c1) = c.lit(b" ")
        && let Some((y, c2)) = c1.num(4)
        && let Some(c3) = c2.lit(b" ")
        && let Some((secs, frac, c4)) = c3.clock(b":")
    {
        let (secs, c5) = meridiem(secs, c4);
        return found(stamp(y, mo, d, secs, frac, 0), c5);
    }
    let (secs, frac, c) = c.lit(b" ")?.clock(b":")?;
    found(yearless(mo, d, secs, frac, now), c)
}

/// ` AM` / ` PM` after a 12-hour clock.
fn meridiem(secs: i64, c: Cur<'_>) -> (i64, Cur<'_>) {
    let sp = c.skip(b' ');
    match sp.b.get(sp.i..sp.i + 2).map(<[u8]>::to_ascii_uppercase).as_deref() {
        Some(b"AM") => (
            if secs >= 12 * 3600 { secs - 12 * 3600 } else { secs },
            Cur { i: sp.i + 2, ..sp },
        ),
        Some(b"PM") => (
            if secs < 12 * 3600 { secs + 12 * 3600 } else { secs },
            Cur { i: sp.i + 2, ..sp },
        ),
        _ => (secs, c),
    }
}

/// `I1010 12:26:36.123456` (Kubernetes' klog): a level letter, then MMDD.
fn klog(c: Cur<'_>, now: i64) -> Option<Found> {
    let c = c.lit(b"IWEF")?;
    let (mmdd, c) = c.num(4)?;
    let (secs, frac, c) = c.lit(b" ")?.clock(b":")?;
    found(yearless(mmdd / 100, mmdd % 100, secs, frac, now), c)
}

/// Month, day and time of the year that puts them closest before `now`.
fn yearless(mo: i64, d: i64, secs: i64, frac: i64, now: i64) -> Option<i64> {
    let (year, _, _) = crate::time::civil_date(now);
    (0..=4)
        .filter_map(|back| stamp(year - back, mo, d, secs, frac, 0))
        .find(|ns| *ns <= now + DAY_NS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{format_rfc3339, parse_rfc3339};

    fn ts(line: &str, now: &str) -> Option<String> {
        find(line, parse_rfc3339(now).expect("now")).map(|f| format_rfc3339(f.ns))
    }

    #[test]
    fn forms() {
        let now = "2025-12-15T23:00:00Z";
        for (line, want) in [
            ("2025-10-10T12:26:36.123+02:00 INFO x", "2025-10-10T10:26:36.123Z"),
            ("2025-10-10 12:26:36,123 INFO x", "2025-10-10T12:26:36.123Z"),
            ("2025/10/10 12:26:36 [error] 12#0: x", "2025-10-10T12:26:36Z"),
            (
                "[2025-10-10T12:26:36,123][INFO ][o.e.n.Node]",
                "2025-10-10T12:26:36.123Z",
            ),
            ("time=\"2025-10-10T12:26:36Z\" level=info msg=x", "2025-10-10T12:26:36Z"),
            (
                "2025-10-10 12:26:36.123 UTC [1234] LOG:  ready",
                "2025-10-10T12:26:36.123Z",
            ),
            ("17/06/09 20:10:40 INFO executor.Backend: x", "2017-06-09T20:10:40Z"),
            ("081109 203615 148 INFO dfs.DataNode: x", "2008-11-09T20:36:15Z"),
            ("20171223-22:15:29:606|Step_LSC|30002312|x", "2017-12-23T22:15:29.606Z"),
            (
                "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2326",
                "2000-10-10T20:55:36Z",
            ),
            ("1234:M 10 Oct 2025 12:26:36.123 * Ready", "2025-10-10T12:26:36.123Z"),
            (
                "03-17 16:13:38.811  1702  2395 D WindowManager: x",
                "2025-03-17T16:13:38.811Z",
            ),
            ("[10.30 16:49:06] chrome.exe - x", "2025-10-30T16:49:06Z"),
            ("12:26:36.123 [main] INFO  c.e.App - x", "2025-12-15T12:26:36.123Z"),
            (
                "1286536309.586    921 192.168.0.68 TCP_MISS/200",
                "2010-10-08T11:11:49.586Z",
            ),
            (
                "- 1117838570 2005.06.03 R02-M1-N0 2005-06-03-15.42.50.675872 RAS",
                "2005-06-03T22:42:50Z",
            ),
            (
                "[Wed Oct 11 14:32:52.123456 2000] [core:error] x",
                "2000-10-11T14:32:52.123456Z",
            ),
            ("[Sun Dec 04 04:47:44 2005] [notice] x", "2005-12-04T04:47:44Z"),
            ("Dec 10 06:55:46 LabSZ sshd[24200]: x", "2025-12-10T06:55:46Z"),
            ("<34>Oct 11 22:14:15 mymachine su: x", "2025-10-11T22:14:15Z"),
            ("Oct 10, 2025 12:26:36 PM com.example.App main", "2025-10-10T12:26:36Z"),
            ("Oct 10, 2025 9:05:01 AM com.example.App main", "2025-10-10T09:05:01Z"),
            (
                "I1010 12:26:36.123456    1234 main.go:42] x",
                "2025-10-10T12:26:36.123456Z",
            ),
            (
                "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO x",
                "2017-05-16T00:00:00.008Z",
            ),
            (
                "2015-07-29 17:41:44,747 - INFO  [QuorumPeer] - x",
                "2015-07-29T17:41:44.747Z",
            ),
            (
                "I, [2025-10-10T12:26:36.123456 #1234]  INFO -- : x",
                "2025-10-10T12:26:36.123456Z",
            ),
            ("Fri, 10 Oct 2025 12:26:36 GMT x", "2025-10-10T12:26:36Z"),
            ("20251010T122636Z x", "2025-10-10T12:26:36Z"),
            (
                "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component",
                "2004-02-26T14:12:22Z",
            ),
        ] {
            assert_eq!(ts(line, now).as_deref(), Some(want), "{line}");
        }
        for line in [
            "no time here",
            "v1.2.3 released",
            "GET /a/b 200 in 12ms",
            "port 8080 open",
            "",
        ] {
            assert_eq!(ts(line, now), None, "{line}");
        }
    }

    #[test]
    fn years_are_closest_before_now() {
        // December, seen on January 2nd: last year's.
        assert_eq!(
            ts("Dec 31 23:59:59 h a: x", "2026-01-02T00:00:00Z").as_deref(),
            Some("2025-12-31T23:59:59Z")
        );
        // Feb 29th seen in 2027: 2024's.
        assert_eq!(
            ts("Feb 29 10:00:00 h a: x", "2027-03-01T00:00:00Z").as_deref(),
            Some("2024-02-29T10:00:00Z")
        );
        // A few hours ahead (clock skew): still this year's.
        assert_eq!(
            ts("Dec 16 01:00:00 h a: x", "2025-12-15T23:00:00Z").as_deref(),
            Some("2025-12-16T01:00:00Z")
        );
        // A time of day later than now: yesterday's.
        assert_eq!(
            ts("23:30:00 x", "2025-12-15T10:00:00Z").as_deref(),
            Some("2025-12-14T23:30:00Z")
        );
    }
}
