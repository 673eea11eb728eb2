//! Built-in parser for `text/plain` bodies: one record per non-empty line,
//! with the line's own timestamp and level where it has them
//! (`loggerhub_codec::line`, shared with the JSON parser's reading of
//! shipped lines). The whole line stays the message.

use loggerhub_plugin_sdk::{Host, Parser, PluginError, RawInput, Record};

pub use loggerhub_codec::line::{detect, now_ns};

pub struct LineParser;

impl Parser for LineParser {
    fn parse<'a>(input: RawInput<'a>, _host: &dyn Host) -> Result<Vec<Record<'a>>, PluginError> {
        let text = std::str::from_utf8(input.body)
            .map_err(|e| PluginError::new("invalid_utf8", format!("body is not UTF-8: {e}")))?;
        let service = input.service.unwrap_or_default();
        let now = now_ns();
        Ok(text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .map(|line| parse_line(line, service, now))
            .collect())
    }
}

/// One line as a record; `now` places year-less and date-less times.
pub fn parse_line<'a>(line: &'a str, service: &'a str, now: i64) -> Record<'a> {
    let mut rec = Record {
        service: service.into(),
        message: line.into(),
        full_log: line.into(),
        ..Record::default()
    };
    let (timestamp, level) = detect(line, now);
    if let Some(ns) = timestamp {
        rec.timestamp = ns;
    }
    if let Some(level) = level {
        rec.level = level;
    }
    rec
}

loggerhub_plugin_sdk::export_parser!(LineParser, wit = "../../wit");

#[cfg(test)]
mod tests {
    use super::*;
    use loggerhub_plugin_sdk::Level;
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

    /// Whatever a tenant sends, a line is read in bounded time and never
    /// panics: slices stay on character boundaries.
    #[test]
    fn any_text_is_read_without_panic() {
        const ALPHABET: &[&str] = &[
            "0",
            "1",
            "2",
            "9",
            ":",
            "-",
            "/",
            ".",
            ",",
            " ",
            "[",
            "]",
            "<",
            ">",
            "=",
            "T",
            "Z",
            "+",
            "I",
            "E",
            "Oct",
            "Mon",
            "ERROR",
            "level=",
            "é",
            "日本",
            "\u{feff}",
            "PM",
            "1117838570",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let mut line = String::new();
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                line.push_str(ALPHABET[(x % ALPHABET.len() as u64) as usize]);
            }
            let _ = detect(&line, 1_765_839_600_000_000_000);
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        }
        let long = "9".repeat(1 << 20);
        assert_eq!(detect(&long, 0), (None, None));
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
