//! What a body must be before it is queued: its format from the
//! Content-Type (`Format`; `WireFormat` for OTLP and Loki), and
//! `check_body`, the payload decoder's rules and the tenant's window.

use loggerhub_codec::payload;

use super::IngestError;
use crate::model::window::TimeWindow;

/// The body formats ingest accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One object, an array, or NDJSON.
    Json,
    /// One record per line, parsed by the tenant's text parser.
    Text,
}

impl Format {
    /// From a Content-Type header; none means JSON.
    pub fn from_content_type(ct: Option<&str>) -> Result<(Format, &'static str), IngestError> {
        let Some(ct) = ct else {
            return Ok((Format::Json, "application/json"));
        };
        let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            // curl -d sends form-urlencoded unless told otherwise; its body
            // is the JSON the user typed.
            "" | "application/json" | "application/x-www-form-urlencoded" => Ok((Format::Json, "application/json")),
            "application/x-ndjson" | "application/ndjson" | "application/jsonlines" | "application/x-jsonlines" => {
                Ok((Format::Json, "application/x-ndjson"))
            }
            "text/plain" => Ok((Format::Text, "text/plain")),
            _ => Err(IngestError::UnsupportedMediaType(ct.chars().take(100).collect())),
        }
    }
}

/// How the protobuf-based shipper protocols (OTLP, Loki) encode a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    Protobuf,
    Json,
}

impl WireFormat {
    /// From a Content-Type; `missing` when there is none; `None` for a
    /// type the protocols do not speak.
    pub fn from_content_type(ct: Option<&str>, missing: Option<WireFormat>) -> Option<WireFormat> {
        let Some(ct) = ct else { return missing };
        let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(WireFormat::Protobuf),
            "application/json" => Some(WireFormat::Json),
            _ => None,
        }
    }
}

/// Records a body holds at least, without decoding it: its non-blank lines
/// for NDJSON and text, one for a JSON document (an array may hold more).
pub(super) fn estimate_records(format: Format, content_type: &str, body: &[u8]) -> u64 {
    if format == Format::Json && content_type == "application/json" {
        return 1;
    }
    lines_in(body) as u64
}

/// The non-blank lines of a body: its records, for NDJSON and text.
pub fn lines_in(body: &[u8]) -> usize {
    body.split(|b| *b == b'\n')
        .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
        .count()
}

#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    pub count: usize,
    /// The first record's timestamp in ms (0 if it has none): places a
    /// retried idempotent batch at the same time.
    pub first_ts_ms: u64,
}

/// What ingest checks before 202: the body decodes with the same decoder
/// the JSON parser plugin runs, names no other tenant, and every time it
/// names is within `window`'s retention. (A time too far ahead is stored
/// at the arrival by the pipeline, and a text body's times are read by the
/// tenant's parser, later: the pipeline holds those to the same window.)
pub fn check_body(format: Format, body: &[u8], tenant: &str, window: &TimeWindow) -> Result<Checked, IngestError> {
    match format {
        Format::Json => {
            let scan = payload::scan_json(body, tenant).map_err(|e| IngestError::BadRequest(e.to_string()))?;
            if scan.count == 0 {
                return Err(IngestError::BadRequest("no records in body".into()));
            }
            if let Some((index, named)) = scan.foreign_tenant {
                return Err(IngestError::WrongTenant {
                    index,
                    named,
                    tenant: tenant.to_string(),
                });
            }
            if let Some((index, ts)) = scan.oldest {
                window.check(ts).map_err(|reason| IngestError::OutOfWindow {
                    record: index + 1,
                    reason,
                })?;
            }
            Ok(Checked {
                count: scan.count,
                first_ts_ms: u64::try_from(scan.first_timestamp / 1_000_000).unwrap_or(0),
            })
        }
        Format::Text => {
            let text = std::str::from_utf8(body).map_err(|e| {
                IngestError::BadRequest(format!("text body is not UTF-8 (at byte {})", e.valid_up_to()))
            })?;
            let count = text.lines().filter(|l| !l.trim().is_empty()).count();
            if count == 0 {
                return Err(IngestError::BadRequest("no lines in body".into()));
            }
            Ok(Checked { count, first_ts_ms: 0 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Converted;
    use proptest::prelude::*;

    /// Wide enough for every time the tests write.
    fn any_time() -> TimeWindow {
        TimeWindow::ALL
    }

    fn check_body(format: Format, body: &[u8], tenant: &str) -> Result<Checked, IngestError> {
        super::check_body(format, body, tenant, &any_time())
    }

    #[test]
    fn times_outside_the_window_are_refused_naming_the_record() {
        const DAY: i64 = 86_400_000_000_000;
        let now = 1_800_000_000_000_000_000;
        let week = TimeWindow::at(now, std::time::Duration::from_secs(7 * 86_400));
        let line = |ts: i64| {
            format!(
                "{{\"message\":\"m\",\"timestamp\":\"{}\"}}\n",
                crate::model::format_ts(ts)
            )
        };
        let fresh = line(now - DAY) + &line(now) + "{\"message\":\"no time\"}\n";
        assert_eq!(
            super::check_body(Format::Json, fresh.as_bytes(), "t", &week)
                .map(|c| c.count)
                .ok(),
            Some(3)
        );
        let old = line(now) + &line(now - 8 * DAY);
        match super::check_body(Format::Json, old.as_bytes(), "t", &week) {
            Err(e @ IngestError::OutOfWindow { record: 2, .. }) => {
                assert!(e.to_string().contains("retention of 7 days"), "{e}")
            }
            other => panic!("expected the second record refused, got {other:?}"),
        }
        // Ahead of the clock is taken: the pipeline stores it at arrival.
        let ahead = line(now + 365 * DAY) + &line(now);
        assert_eq!(
            super::check_body(Format::Json, ahead.as_bytes(), "t", &week)
                .map(|c| c.count)
                .ok(),
            Some(2)
        );
        // A shipper's record outside the window is rejected alone.
        let mut c = Converted::within(week, 100);
        c.push(&serde_json::json!({"message": "ok"}), "t");
        c.push(
            &serde_json::json!({"message": "old", "timestamp": crate::model::format_ts(now - 8 * DAY)}),
            "t",
        );
        assert_eq!((c.count, c.rejected), (1, 1));
        assert!(
            c.first_error
                .as_ref()
                .is_some_and(|e| e.starts_with("record 2: ") && e.contains("retention")),
            "{:?}",
            c.first_error
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(Format::from_content_type(None).ok().map(|f| f.0), Some(Format::Json));
        assert_eq!(
            Format::from_content_type(Some("application/x-ndjson; charset=utf-8"))
                .ok()
                .map(|f| f.1),
            Some("application/x-ndjson")
        );
        assert_eq!(
            Format::from_content_type(Some("text/plain")).ok().map(|f| f.0),
            Some(Format::Text)
        );
        assert!(matches!(
            Format::from_content_type(Some("image/png")),
            Err(IngestError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn tenant_mismatch_is_refused() {
        let body = br#"[{"message":"a","tenant_id":"acme"},{"message":"b","tenant_id":"other"}]"#;
        match check_body(Format::Json, body, "acme") {
            Err(IngestError::WrongTenant { index, named, .. }) => {
                assert_eq!(index, 1);
                assert_eq!(named, "other");
            }
            other => panic!("expected WrongTenant, got {other:?}"),
        }
        assert_eq!(check_body(Format::Json, body, "other").map(|c| c.count).ok(), None);
        assert_eq!(
            check_body(
                Format::Json,
                br#"{"message":"a","timestamp":"1970-01-01T00:00:01Z"}"#,
                "acme"
            )
            .ok(),
            Some(Checked {
                count: 1,
                first_ts_ms: 1000
            })
        );
    }

    #[test]
    fn text_bodies() {
        assert_eq!(
            check_body(Format::Text, b"a\n\n b \n", "t").map(|c| c.count).ok(),
            Some(2)
        );
        assert!(check_body(Format::Text, b"\n \n", "t").is_err());
        assert!(check_body(Format::Text, &[0x61, 0xff], "t").is_err());
    }

    proptest! {
        // The decoder sees hostile input first: whatever the bytes, it
        // answers Ok or a 4xx error, never a panic.
        #[test]
        fn decoder_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = check_body(Format::Json, &body, "acme");
            let _ = check_body(Format::Text, &body, "acme");
        }

        #[test]
        fn json_shaped_garbage_never_panics(body in r#"[\[\]{}",:0-9a-z\\ \n.-]{0,200}"#) {
            let _ = check_body(Format::Json, body.as_bytes(), "acme");
        }

        // Any set of well-formed records is accepted, counted exactly, and
        // reported on the right line when one is broken.
        #[test]
        fn ndjson_counts_and_bad_lines(
            msgs in proptest::collection::vec("[ -~]{0,40}", 1..30),
            bad in any::<prop::sample::Index>(),
        ) {
            let lines: Vec<String> = msgs.iter().map(|m| serde_json::json!({"message": m, "level": "warn"}).to_string()).collect();
            let body = lines.join("\n");
            prop_assert_eq!(check_body(Format::Json, body.as_bytes(), "acme").map(|c| c.count).ok(), Some(msgs.len()));
            let bad_line = bad.index(lines.len());
            let mut broken = lines.clone();
            broken[bad_line] = r#"{"message": "x", "level": "loud"}"#.to_string();
            match check_body(Format::Json, broken.join("\n").as_bytes(), "acme") {
                Err(IngestError::BadRequest(m)) => prop_assert!(m.starts_with(&format!("line {} ", bad_line + 1)), "{}", m),
                other => prop_assert!(false, "expected a bad request, got {:?}", other),
            }
        }
    }
}
