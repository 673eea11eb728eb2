//! Syslog messages (RFC 5424 and RFC 3164) and their framing on TCP
//! (RFC 6587: octet counting or a newline per message), read into the JSON
//! payload's form. The listeners are `crate::syslog`.
//!
//! A message becomes a record: its text → `message`; its severity →
//! `level`; its time → `timestamp` (a year-less RFC 3164 time takes the
//! year that puts it closest before arrival, in UTC); the app name (or
//! 3164 tag) → `service`; host, facility, process id, message id and
//! structured data → `attributes`. The structured-data element
//! `loggerhub@<number>` carries the tenant key (`key="lh_…"`) and is never
//! stored.

use serde_json::{Map, Value, json};

/// Longest message taken: RFC 5425 asks receivers for at least 2 KiB;
/// rsyslog sends up to 8 KiB by default. Past it a TCP connection is
/// closed (its framing can no longer be trusted).
pub const MAX_FRAME: usize = 64 * 1024;

const SEVERITIES: [&str; 8] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
    "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SyslogError {
    #[error("not a syslog message: {0}")]
    Malformed(&'static str),
    #[error("a frame of {0} bytes is over the limit of {MAX_FRAME}")]
    TooLong(usize),
}

/// One structured-data element: `[id name="value" …]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    pub id: String,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub facility: u8,
    pub severity: u8,
    pub timestamp: Option<i64>,
    pub host: Option<String>,
    pub app: Option<String>,
    pub procid: Option<String>,
    pub msgid: Option<String>,
    pub sd: Vec<SdElement>,
    pub text: String,
}

impl Message {
    /// The tenant key the message carries, if any.
    pub fn key(&self) -> Option<&str> {
        self.sd
            .iter()
            .filter(|e| is_loggerhub_sd(&e.id))
            .flat_map(|e| &e.params)
            .find(|(n, _)| n == "key")
            .map(|(_, v)| v.as_str())
    }

    /// The record, as a JSON payload line; the key's element left out.
    pub fn document(&self) -> Value {
        let mut attributes = Map::new();
        attributes.insert(
            "facility".into(),
            json!(FACILITIES.get(self.facility as usize).unwrap_or(&"unknown")),
        );
        for (k, v) in [("host", &self.host), ("pid", &self.procid), ("msgid", &self.msgid)] {
            if let Some(v) = v {
                attributes.insert(k.into(), json!(v));
            }
        }
        for e in self.sd.iter().filter(|e| !is_loggerhub_sd(&e.id)) {
            for (n, v) in &e.params {
                attributes.insert(format!("{}.{n}", e.id), json!(v));
            }
        }
        let mut doc = json!({
            "message": self.text,
            "level": SEVERITIES[usize::from(self.severity.min(7))],
            "attributes": attributes,
        });
        if let Some(app) = &self.app {
            doc["service"] = json!(app);
        }
        if let Some(ts) = self.timestamp {
            doc["timestamp"] = json!(ts);
        }
        doc
    }
}

fn is_loggerhub_sd(id: &str) -> bool {
    id == "loggerhub" || id.starts_with("loggerhub@")
}

/// Reads one message; `now_ns` places a year-less time.
pub fn parse(frame: &str, now_ns: i64) -> Result<Message, SyslogError> {
    let frame = frame.trim_end_matches(['\n', '\r', '\0']);
    let rest = frame.strip_prefix('<').ok_or(SyslogError::Malformed("no <PRI>"))?;
    let close = rest
        .find('>')
        .filter(|i| (1..=3).contains(i))
        .ok_or(SyslogError::Malformed("bad <PRI>"))?;
    let pri: u16 = rest[..close].parse().map_err(|_| SyslogError::Malformed("bad <PRI>"))?;
    if pri > 191 {
        return Err(SyslogError::Malformed("<PRI> over 191"));
    }
    let (facility, severity) = ((pri / 8) as u8, (pri % 8) as u8);
    let rest = &rest[close + 1..];
    match rest.strip_prefix("1 ") {
        Some(v1) => rfc5424(v1, facility, severity),
        None => Ok(rfc3164(rest, facility, severity, now_ns)),
    }
}

fn nil(field: &str) -> Option<String> {
    (field != "-" && !field.is_empty()).then(|| field.to_string())
}

fn rfc5424(s: &str, facility: u8, severity: u8) -> Result<Message, SyslogError> {
    let mut fields = s.splitn(6, ' ');
    let mut next = || fields.next().ok_or(SyslogError::Malformed("RFC 5424 header cut short"));
    let ts = next()?;
    let timestamp = if ts == "-" {
        None
    } else {
        Some(loggerhub_codec::time::parse_rfc3339(ts).ok_or(SyslogError::Malformed("bad RFC 5424 timestamp"))?)
    };
    let (host, app, procid, msgid) = (nil(next()?), nil(next()?), nil(next()?), nil(next()?));
    let rest = fields.next().unwrap_or("");
    let (sd, text) = structured_data(rest)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Ok(Message {
        facility,
        severity,
        timestamp,
        host,
        app,
        procid,
        msgid,
        sd,
        text: text.to_string(),
    })
}

/// `-` or `[id name="value" …]…`, then the message after one space.
fn structured_data(s: &str) -> Result<(Vec<SdElement>, &str), SyslogError> {
    if let Some(rest) = s.strip_prefix('-') {
        return Ok((Vec::new(), rest.strip_prefix(' ').unwrap_or(rest)));
    }
    let bad = SyslogError::Malformed("bad structured data");
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(body) = rest.strip_prefix('[') {
        let id_end = body.find([' ', ']']).ok_or(bad.clone())?;
        let mut element = SdElement {
            id: body[..id_end].to_string(),
            params: Vec::new(),
        };
        let mut chars = body[id_end..].char_indices();
        let end = loop {
            let (i, c) = chars.next().ok_or(bad.clone())?;
            match c {
                ' ' => continue,
                ']' => break id_end + i + 1,
                _ => {
                    let mut name = String::from(c);
                    loop {
                        match chars.next().ok_or(bad.clone())?.1 {
                            '=' => break,
                            c => name.push(c),
                        }
                    }
                    if chars.next().map(|(_, c)| c) != Some('"') {
                        return Err(bad);
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next().ok_or(bad.clone())?.1 {
                            '"' => break,
                            '\\' => value.push(chars.next().ok_or(bad.clone())?.1),
                            c => value.push(c),
                        }
                    }
                    element.params.push((name, value));
                }
            }
        };
        out.push(element);
        rest = &body[end..];
    }
    Ok((out, rest.strip_prefix(' ').unwrap_or(rest)))
}

/// BSD syslog: `Mmm dd hh:mm:ss HOST TAG[PID]: text` (or an RFC 3339 time
/// in its place, as rsyslog's precise forwarding writes). What does not
/// parse is kept whole as the message.
fn rfc3164(s: &str, facility: u8, severity: u8, now_ns: i64) -> Message {
    let mut m = Message {
        facility,
        severity,
        timestamp: None,
        host: None,
        app: None,
        procid: None,
        msgid: None,
        sd: Vec::new(),
        text: s.to_string(),
    };
    let (timestamp, rest) = match bsd_time(s, now_ns) {
        Some((ts, rest)) => (Some(ts), rest),
        None => match s
            .split_once(' ')
            .and_then(|(t, r)| Some((loggerhub_codec::time::parse_rfc3339(t)?, r)))
        {
            Some((ts, rest)) => (Some(ts), rest),
            None => return m,
        },
    };
    m.timestamp = timestamp;
    let mut rest = rest.trim_start();
    // HOST, unless the next word is already the tag.
    if let Some((word, after)) = rest.split_once(' ')
        && !word.ends_with(':')
        && !word.contains('[')
    {
        m.host = Some(word.to_string());
        rest = after;
    }
    if let Some((tag, text)) = rest
        .split_once(": ")
        .or_else(|| rest.strip_suffix(':').map(|t| (t, "")))
        && !tag.is_empty()
        && !tag.contains(' ')
    {
        let (app, pid) = match tag.split_once('[') {
            Some((app, pid)) => (app, pid.strip_suffix(']').map(str::to_string)),
            None => (tag, None),
        };
        m.app = nil(app);
        m.procid = pid;
        rest = text;
    }
    m.text = rest.to_string();
    m
}

/// `Mmm dd hh:mm:ss` (day space-padded), in the year that puts it closest
/// before `now_ns` (a day's grace for clocks ahead of ours).
fn bsd_time(s: &str, now_ns: i64) -> Option<(i64, &str)> {
    let head = s.get(..15)?;
    let month = MONTHS.iter().position(|m| head.starts_with(m))? as u8 + 1;
    let day: u8 = head.get(4..6)?.trim().parse().ok()?;
    let (h, mi, se) = (
        head.get(7..9)?.parse::<u8>().ok()?,
        head.get(10..12)?.parse::<u8>().ok()?,
        head.get(13..15)?.parse::<u8>().ok()?,
    );
    if head.as_bytes().get(9) != Some(&b':') || head.as_bytes().get(12) != Some(&b':') {
        return None;
    }
    let now = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ns)).ok()?;
    let at = |year: i32| -> Option<i64> {
        let date = time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
        let t = date.with_hms(h, mi, se).ok()?.assume_utc();
        i64::try_from(t.unix_timestamp_nanos()).ok()
    };
    const GRACE: i64 = 86_400 * 1_000_000_000;
    let ts = match at(now.year()) {
        Some(ts) if ts <= now_ns + GRACE => ts,
        // Later this year than now: it was last year's (or Feb 29th of a
        // leap year past).
        _ => at(now.year() - 1).or_else(|| at(now.year() - 4))?,
    };
    Some((ts, &s[15..]))
}

/// Cuts TCP syslog into frames: octet counting (`123 <34>1 …`) when a frame
/// starts with a digit, else up to the next newline (RFC 6587 §3.4).
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Adds `data` and returns every complete frame.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<String>, SyslogError> {
        self.buf.extend_from_slice(data);
        let mut frames = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let skip = rest.iter().take_while(|b| matches!(b, b'\n' | b'\r' | b'\0')).count();
            let rest = &rest[skip..];
            start += skip;
            if rest.is_empty() {
                break;
            }
            if rest[0].is_ascii_digit() {
                let Some(space) = rest.iter().position(|b| *b == b' ') else {
                    if rest.len() > 10 {
                        return Err(SyslogError::Malformed("octet count without its space"));
                    }
                    break;
                };
                let len: usize = std::str::from_utf8(&rest[..space])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .ok_or(SyslogError::Malformed("bad octet count"))?;
                if len > MAX_FRAME {
                    return Err(SyslogError::TooLong(len));
                }
                if rest.len() < space + 1 + len {
                    break;
                }
                frames.push(String::from_utf8_lossy(&rest[space + 1..space + 1 + len]).into_owned());
                start += space + 1 + len;
            } else {
                let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                    if rest.len() > MAX_FRAME {
                        return Err(SyslogError::TooLong(rest.len()));
                    }
                    break;
                };
                frames.push(String::from_utf8_lossy(&rest[..nl]).into_owned());
                start += nl + 1;
            }
        }
        self.buf.drain(..start);
        Ok(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-10-10T12:00:00Z.
    const NOW: i64 = 1_760_097_600_000_000_000;

    #[test]
    fn rfc5424_with_structured_data_and_the_key() {
        let m = parse(
            r#"<165>1 2025-10-10T11:14:15.003Z web-1 billing 811 ID47 [loggerhub@32473 key="lh_abc"][exampleSDID@32473 iut="3" eventSource="App\"lication"] ﻿payment failed"#,
            NOW,
        )
        .expect("parses");
        assert_eq!((m.facility, m.severity), (20, 5));
        assert_eq!(m.key(), Some("lh_abc"));
        assert_eq!(m.text, "payment failed");
        let doc = m.document();
        assert_eq!(doc["level"], "notice");
        assert_eq!(doc["service"], "billing");
        assert_eq!(doc["timestamp"], 1_760_094_855_003_000_000i64);
        assert_eq!(doc["attributes"]["facility"], "local4");
        assert_eq!(doc["attributes"]["exampleSDID@32473.eventSource"], "App\"lication");
        assert_eq!(doc["attributes"]["pid"], "811");
        assert!(!doc.to_string().contains("lh_abc"), "the key is never stored: {doc}");
        let nil = parse("<14>1 - - - - - -", NOW).expect("all nil");
        assert_eq!((nil.timestamp, nil.text.as_str(), nil.app), (None, "", None));
    }

    #[test]
    fn rfc3164_forms() {
        let m = parse("<34>Oct 10 11:14:15 mymachine su[230]: 'su root' failed", NOW).expect("parses");
        assert_eq!(
            (m.severity, m.host.as_deref(), m.app.as_deref()),
            (2, Some("mymachine"), Some("su"))
        );
        assert_eq!(
            (m.procid.as_deref(), m.text.as_str()),
            (Some("230"), "'su root' failed")
        );
        assert_eq!(m.timestamp, Some(1_760_094_855_000_000_000));
        // In December, as seen on January 2nd: last year.
        let jan = 1_767_312_000_000_000_000; // 2026-01-02T00:00:00Z
        let m = parse("<13>Dec 31 23:59:59 host app: x", jan).expect("parses");
        assert_eq!(m.timestamp, Some(1_767_225_599_000_000_000));
        let m = parse("<13>Oct  9 01:02:03 cron: tick", NOW).expect("no host");
        assert_eq!(
            (m.host, m.app.as_deref(), m.text.as_str()),
            (None, Some("cron"), "tick")
        );
        let m = parse("<13>2025-10-10T11:00:00+02:00 host app: precise", NOW).expect("rfc3339");
        assert_eq!(m.timestamp, Some(1_760_086_800_000_000_000));
        let m = parse("<13>just text", NOW).expect("kept whole");
        assert_eq!((m.text.as_str(), m.timestamp), ("just text", None));
        for bad in [
            "no pri",
            "<>x",
            "<999>x",
            "<1a>x",
            "<13>1 2025-13-45T00:00:00Z h a p m - x",
            "<13>1 - h a p m [x",
        ] {
            assert!(parse(bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn framing() {
        let mut f = Framer::default();
        let a = "<13>1 - h a - - - one";
        let stream = format!("{} {a}<13>two\n{} {a}", a.len(), a.len());
        let (first, second) = stream.as_bytes().split_at(30);
        let mut got = f.push(first).expect("frames");
        got.extend(f.push(second).expect("frames"));
        assert_eq!(got, [a, "<13>two", a]);
        assert!(Framer::default().push(b"99999999 <13>x").is_err());
        assert!(Framer::default().push(&vec![b'x'; MAX_FRAME + 1]).is_err());
        assert_eq!(Framer::default().push(b"<13>partial").map(|v| v.len()), Ok(0));
    }
}
