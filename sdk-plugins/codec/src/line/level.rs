//! Finding a line's own level: a syslog `<PRI>`, a single letter where
//! logcat, klog and Ruby's Logger put one, Redis's role symbols, or a level
//! word near the start of the line. A word counts in capitals (`ERROR`,
//! `WARNING:root`), in any case when delimited (`[notice]`, `<warn>`,
//! `level=info`, `[core:error]`), or as the first word after the timestamp
//! (`2016-09-28 04:30:30, Info  CBS …`). A level word inside prose does not.

use crate::Level;

/// How far into a line a level word is looked for.
const WINDOW: usize = 128;

/// The line's level; `after_stamp` is where its timestamp ended, if any.
pub fn find(line: &str, after_stamp: Option<usize>) -> Option<Level> {
    let b = line.as_bytes();
    pri(b)
        .or_else(|| letter(b, after_stamp))
        .or_else(|| redis(b, after_stamp))
        .or_else(|| word(line, after_stamp))
}

/// `<34>…`: the severity of the priority (facility × 8 + severity).
fn pri(b: &[u8]) -> Option<Level> {
    let rest = b.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|c| *c == b'>')?;
    let pri: u16 = std::str::from_utf8(&rest[..close]).ok()?.parse().ok()?;
    (pri <= 191).then(|| syslog_severity(pri % 8))
}

fn syslog_severity(s: u16) -> Level {
    match s {
        0..=2 => Level::Fatal,
        3 => Level::Error,
        4 => Level::Warn,
        5 | 6 => Level::Info,
        _ => Level::Debug,
    }
}

fn letter_level(c: u8) -> Option<Level> {
    Some(match c {
        b'V' | b'T' => Level::Trace,
        b'D' => Level::Debug,
        b'I' => Level::Info,
        b'W' => Level::Warn,
        b'E' => Level::Error,
        b'F' | b'A' => Level::Fatal,
        _ => return None,
    })
}

/// Single letters in their known positions: klog's `I1010 …`, Ruby's
/// `I, [time …]`, logcat's brief `I/Tag(…)`, and logcat's threadtime
/// `MM-DD time PID TID I Tag: …` (the first lone letter after the time and
/// at most two numbers).
fn letter(b: &[u8], after_stamp: Option<usize>) -> Option<Level> {
    let first = *b.first()?;
    let second = b.get(1).copied();
    if b.len() > 5 && b[1..5].iter().all(u8::is_ascii_digit) && matches!(first, b'I' | b'W' | b'E' | b'F') {
        return letter_level(first);
    }
    // Ruby's Logger: `I, [2025-… #1234]  INFO -- : …`.
    if b.get(1..4) == Some(b", [") {
        return letter_level(first);
    }
    // logcat's brief format: `I/Tag( 585): …` or `I/Tag: …`.
    if second == Some(b'/') {
        let tag = b.split(|c| *c == b' ').next().unwrap_or_default();
        if tag.contains(&b'(') || tag.ends_with(b":") {
            return letter_level(first);
        }
    }
    let rest = std::str::from_utf8(&b[after_stamp?..]).ok()?;
    let mut numbers = 0;
    for w in rest.split_ascii_whitespace().take(3) {
        if w.bytes().all(|c| c.is_ascii_digit()) {
            numbers += 1;
            continue;
        }
        return (w.len() == 1 && numbers <= 2)
            .then(|| letter_level(w.as_bytes()[0]))
            .flatten();
    }
    None
}

/// Redis: `pid:role date time <symbol> text`, the symbol `.` debug, `-`
/// verbose, `*` notice, `#` warning.
fn redis(b: &[u8], after_stamp: Option<usize>) -> Option<Level> {
    let colon = b.iter().take(12).position(|c| *c == b':')?;
    if colon == 0 || !b[..colon].iter().all(u8::is_ascii_digit) || b.get(colon + 2).is_none_or(|c| *c != b' ') {
        return None;
    }
    let rest = b.get(after_stamp?..)?;
    match rest {
        [b' ', b'.', b' ', ..] | [b' ', b'-', b' ', ..] => Some(Level::Debug),
        [b' ', b'*', b' ', ..] => Some(Level::Info),
        [b' ', b'#', b' ', ..] => Some(Level::Warn),
        _ => None,
    }
}

/// A level's name in the line's words (Level::parse's, and those of Java
/// logging and PostgreSQL).
fn level_word(w: &str) -> Option<Level> {
    if let Some(l) = Level::parse(w) {
        return Some(l);
    }
    Some(match w.to_ascii_lowercase().as_str() {
        "severe" => Level::Error,
        "log" | "config" | "note" | "system" => Level::Info,
        "fine" | "verbose" => Level::Debug,
        "finer" | "finest" => Level::Trace,
        _ => return None,
    })
}

fn word(line: &str, after_stamp: Option<usize>) -> Option<Level> {
    let mut end = line.len().min(WINDOW);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let b = line.as_bytes();
    let mut i = 0;
    let mut first_after_stamp = true;
    while i < end {
        if !b[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let w = &line[start..i];
        let before = start.checked_sub(1).map(|k| b[k]);
        let after = b.get(i).copied();
        let is_after_stamp = after_stamp.is_some_and(|s| start >= s) && first_after_stamp;
        if after_stamp.is_some_and(|s| start >= s) {
            first_after_stamp = false;
        }
        // A word glued to letters or digits on either side (`x.INFO`,
        // `ERROR2`) is part of something else.
        if before.is_some_and(|c| c == b'_' || c == b'.' || c == b'-') || after.is_some_and(|c| c == b'_') {
            continue;
        }
        let Some(level) = level_word(w) else { continue };
        let capitals = w.len() >= 3 && w.bytes().all(|c| c.is_ascii_uppercase());
        let delimited = matches!(before, Some(b'[' | b'<' | b'(' | b'|' | b':' | b'='))
            && matches!(after, Some(b']' | b'>' | b')' | b'|' | b':') | None)
            || matches!(before, Some(b'='))
            || line[..start].ends_with("level=")
            // The first word of a syslog message: `sshd[24200]: error: …`.
            || (after == Some(b':') && line[..start].ends_with("]: "));
        // Capitalised right after the time (`, Info   CBS`).
        let positional = is_after_stamp && w.bytes().next().is_some_and(|c| c.is_ascii_uppercase());
        if capitals || delimited || positional {
            return Some(level);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(line: &str) -> Option<Level> {
        let now = 1_765_839_600_000_000_000;
        find(line, crate::line::stamp::find(line, now).map(|f| f.end))
    }

    #[test]
    fn forms() {
        for (line, want) in [
            ("2025-10-10T12:26:36Z ERROR payment failed", Level::Error),
            ("[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok", Level::Info),
            ("[Wed Oct 11 14:32:52 2000] [core:error] [pid 1] AH00124", Level::Error),
            ("2025/10/10 12:26:36 [warn] 12#0: *5 upstream", Level::Warn),
            ("<warn> disk almost full", Level::Warn),
            ("level=debug msg=hello", Level::Debug),
            ("time=\"2025-10-10T12:26:36Z\" level=info msg=x", Level::Info),
            ("WARNING:root:low disk", Level::Warn),
            ("2016-09-28 04:30:30, Info                  CBS    Loaded", Level::Info),
            ("03-17 16:13:38.811  1702  2395 D WindowManager: x", Level::Debug),
            ("I/ActivityManager(  585): Start proc", Level::Info),
            ("E1010 12:26:36.123456    1234 main.go:42] boom", Level::Error),
            ("W, [2025-10-10T12:26:36.123456 #1234]  WARN -- : x", Level::Warn),
            ("1234:M 10 Oct 2025 12:26:36.123 # Warning: no config", Level::Warn),
            ("1234:M 10 Oct 2025 12:26:36.123 * Ready to accept", Level::Info),
            ("<11>Oct 11 22:14:15 host app: x", Level::Error),
            (
                "2025-10-10 12:26:36.123 UTC [1234] FATAL:  role does not exist",
                Level::Fatal,
            ),
            ("SEVERE: connection lost", Level::Error),
            (
                "Dec 10 07:07:38 LabSZ sshd[24206]: error: Received disconnect",
                Level::Error,
            ),
            ("2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]] - x", Level::Info),
        ] {
            assert_eq!(level(line), Some(want), "{line}");
        }
        for line in [
            "Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking",
            "A/B testing started",
            "A, B and C",
            "the error was in the info box",
            "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2326",
            "user_error_count=3 ok",
        ] {
            assert_eq!(level(line), None, "{line}");
        }
    }
}
