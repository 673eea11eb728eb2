//! Built-in parser for `text/plain` bodies: one record per non-empty line.
//! A leading RFC 3339 timestamp becomes the record's time, and the first
//! level word near the start of the line (`ERROR`, `[warn]`, `level=debug`)
//! its level.

use loggerhub_codec::time::parse_rfc3339;
use loggerhub_plugin_sdk::{Host, Level, Parser, PluginError, RawInput, Record};

pub struct LineParser;

/// How far into a line a level word is looked for: levels sit near the start
/// of a line in every common format, and a word deep in a message is text.
const LEVEL_WINDOW: usize = 64;

impl Parser for LineParser {
    fn parse<'a>(input: RawInput<'a>, _host: &dyn Host) -> Result<Vec<Record<'a>>, PluginError> {
        let text = std::str::from_utf8(input.body)
            .map_err(|e| PluginError::new("invalid_utf8", format!("body is not UTF-8: {e}")))?;
        let service = input.service.unwrap_or_default();
        Ok(text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .map(|line| parse_line(line, service))
            .collect())
    }
}

fn parse_line<'a>(line: &'a str, service: &'a str) -> Record<'a> {
    let mut rec = Record {
        service: service.into(),
        message: line.into(),
        full_log: line.into(),
        ..Record::default()
    };
    let first = line.split_whitespace().next().unwrap_or_default();
    if let Some(ts) = parse_rfc3339(first.trim_matches(|c| c == '[' || c == ']')) {
        rec.timestamp = ts;
    }
    if let Some(level) = detect_level(line) {
        rec.level = level;
    }
    rec
}

fn detect_level(line: &str) -> Option<Level> {
    let mut end = line.len().min(LEVEL_WINDOW);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end]
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 3)
        .find_map(|w| {
            // Lower-case words are levels only in key=value form, so that
            // "info" in prose does not count.
            if w.bytes().all(|b| b.is_ascii_uppercase()) || line.contains(&format!("level={w}")) {
                Level::parse(w)
            } else {
                None
            }
        })
}

loggerhub_plugin_sdk::export_parser!(LineParser, wit = "../../wit");

#[cfg(test)]
mod tests {
    use super::*;
    use loggerhub_plugin_sdk::testing::TestHost;

    fn parse(body: &str) -> Vec<Record<'_>> {
        let input = RawInput {
            content_type: "text/plain",
            service: Some("web"),
            body: body.as_bytes(),
        };
        LineParser::parse(input, &TestHost::new()).expect("parses")
    }

    #[test]
    fn one_record_per_line() {
        let out =
            parse("2025-10-10T12:26:36Z ERROR payment failed\r\n\n  \nlevel=warn disk almost full\nplain info text\n");
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].level, Level::Error);
        assert_eq!(out[0].timestamp, 1_760_099_196_000_000_000);
        assert_eq!(out[0].message, "2025-10-10T12:26:36Z ERROR payment failed");
        assert_eq!(out[1].level, Level::Warn);
        assert_eq!(out[2].level, Level::Info);
        assert_eq!(out[2].timestamp, 0);
        assert!(out.iter().all(|r| r.service == "web"));
    }

    #[test]
    fn non_utf8_is_refused() {
        let input = RawInput {
            content_type: "text/plain",
            service: None,
            body: &[0xff, 0xfe],
        };
        assert_eq!(
            LineParser::parse(input, &TestHost::new()).map_err(|e| e.code),
            Err("invalid_utf8".to_string())
        );
    }
}
