//! Example parser for nginx and Apache access logs, one request per line,
//! in the combined or the common log format:
//!
//! ```text
//! 203.0.113.7 - alice [10/Oct/2025:13:55:36 +0000] "GET /api/orders?id=7 HTTP/1.1" 502 1234 "https://ex.com/" "curl/8.5"
//! ```
//!
//! Each line becomes a record: the request line is the message, the whole
//! line the full log, the time the timestamp; the level follows the status
//! (5xx ERROR, 4xx WARN, else INFO); client, user, method, path, protocol,
//! status, bytes, referer and user agent become attributes. Lines that do
//! not match are kept as plain INFO records with `parse_error=true`.

use std::sync::OnceLock;

use loggerhub_plugin_sdk::{Host, Level, Parser, PluginError, RawInput, Record};
use regex::Regex;

pub struct AccessLogParser;

fn pattern() -> &'static Regex {
    static P: OnceLock<Regex> = OnceLock::new();
    P.get_or_init(|| {
        Regex::new(r#"^(\S+) \S+ (\S+) \[([^\]]+)\] "(\S+) (\S+) ?([^"]*)" (\d{3}) (\d+|-)(?: "([^"]*)" "([^"]*)")?"#)
            .unwrap_or_else(|_| unreachable!())
    })
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `10/Oct/2025:13:55:36 +0000` → unix ns.
fn parse_time(s: &str) -> Option<i64> {
    let (date, zone) = s.split_once(' ')?;
    let mut it = date.splitn(4, ['/', ':']);
    let (d, mon, y) = (it.next()?, it.next()?, it.next()?);
    let time = it.next()?;
    let m = MONTHS.iter().position(|x| *x == mon)? + 1;
    let (sign, hh, mm) = (zone.get(..1)?, zone.get(1..3)?, zone.get(3..5)?);
    let rfc = format!("{y}-{m:02}-{d}T{time}{}{hh}:{mm}", if sign == "-" { "-" } else { "+" });
    loggerhub_plugin_sdk::codec::time::parse_rfc3339(&rfc)
}

fn parse_line<'a>(line: &'a str, service: &str) -> Record<'a> {
    let mut rec = Record {
        service: service.to_string().into(),
        message: line.into(),
        full_log: line.into(),
        ..Record::default()
    };
    let Some(c) = pattern().captures(line) else {
        rec.set_attr("parse_error", "true");
        return rec;
    };
    let get = |i: usize| c.get(i).map_or("", |m| m.as_str());
    let status: u16 = get(7).parse().unwrap_or(0);
    rec.level = match status {
        500.. => Level::Error,
        400..=499 => Level::Warn,
        _ => Level::Info,
    };
    rec.timestamp = parse_time(get(3)).unwrap_or(0);
    rec.message = format!("{} {} {}", get(4), get(5), status).into();
    for (k, i) in [
        ("client", 1),
        ("user", 2),
        ("method", 4),
        ("path", 5),
        ("protocol", 6),
        ("status", 7),
        ("bytes", 8),
        ("referer", 9),
        ("user_agent", 10),
    ] {
        let v = get(i);
        if !v.is_empty() && v != "-" {
            rec.set_attr(k, v);
        }
    }
    rec
}

impl Parser for AccessLogParser {
    fn parse<'a>(input: RawInput<'a>, host: &dyn Host) -> Result<Vec<Record<'a>>, PluginError> {
        let text = std::str::from_utf8(input.body).map_err(|e| PluginError::new("invalid_utf8", e.to_string()))?;
        let service = input
            .service
            .map(str::to_string)
            .or_else(|| host.config("service"))
            .unwrap_or_else(|| "web".into());
        Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse_line(l.trim_end_matches('\r'), &service))
            .collect())
    }
}

loggerhub_plugin_sdk::export_parser!(AccessLogParser, wit = "../../../wit");

#[cfg(test)]
mod tests {
    use super::*;
    use loggerhub_plugin_sdk::testing::TestHost;

    #[test]
    fn combined_common_and_garbage() {
        let body = concat!(
            "203.0.113.7 - alice [10/Oct/2025:13:55:36 +0200] \"GET /api/orders?id=7 HTTP/1.1\" 502 1234 \"https://ex.com/\" \"curl/8.5\"\n",
            "198.51.100.2 - - [10/Oct/2025:13:55:37 +0000] \"POST /login HTTP/1.0\" 404 -\n",
            "not an access log line\n",
        );
        let input = RawInput {
            content_type: "text/plain",
            service: None,
            body: body.as_bytes(),
        };
        let out = AccessLogParser::parse(input, &TestHost::new()).expect("parses");
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].message, "GET /api/orders?id=7 502");
        assert_eq!(out[0].level, Level::Error);
        assert_eq!(out[0].timestamp, 1_760_097_336_000_000_000);
        assert_eq!(out[0].attr("user_agent"), Some("curl/8.5"));
        assert_eq!(out[0].attr("user"), Some("alice"));
        assert_eq!(out[1].level, Level::Warn);
        assert_eq!(out[1].attr("bytes"), None);
        assert_eq!(out[1].attr("client"), Some("198.51.100.2"));
        assert_eq!(out[2].attr("parse_error"), Some("true"));
        assert!(out.iter().all(|r| r.service == "web"));
    }
}
