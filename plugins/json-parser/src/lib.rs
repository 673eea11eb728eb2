//! Built-in parser for JSON bodies: one object, an array, or NDJSON, in the
//! SDK payload format (DESIGN.md §3). Ingest validated the body with the same
//! decoder before it answered 202. A record that names no level of its own
//! is a shipped line, read as the line parser reads one
//! (`payload::parse_json_ref_reading_lines`).

use loggerhub_codec::{line, payload};
use loggerhub_plugin_sdk::{Host, Parser, PluginError, RawInput, Record};

pub struct JsonParser;

impl Parser for JsonParser {
    fn parse<'a>(input: RawInput<'a>, _host: &dyn Host) -> Result<Vec<Record<'a>>, PluginError> {
        let mut records = payload::parse_json_ref_reading_lines(input.body, line::now_ns())
            .map_err(|e| PluginError::new("invalid_json", e.to_string()))?;
        if let Some(service) = input.service {
            for r in records.iter_mut().filter(|r| r.service.is_empty()) {
                r.service = service.into();
            }
        }
        Ok(records)
    }
}

loggerhub_plugin_sdk::export_parser!(JsonParser, wit = "../../wit");

#[cfg(test)]
mod tests {
    use super::*;
    use loggerhub_plugin_sdk::testing::TestHost;

    #[test]
    fn fills_service_from_the_request() {
        let input = RawInput {
            content_type: "application/x-ndjson",
            service: Some("api"),
            body: b"{\"message\":\"a\"}\n{\"message\":\"b\",\"service\":\"db\"}",
        };
        let out = JsonParser::parse(input, &TestHost::new()).expect("parses");
        assert_eq!(out[0].service, "api");
        assert_eq!(out[1].service, "db");
    }

    #[test]
    fn bad_input_is_a_plugin_error() {
        let input = RawInput {
            content_type: "application/json",
            service: None,
            body: b"{",
        };
        let err = JsonParser::parse(input, &TestHost::new()).expect_err("fails");
        assert_eq!(err.code, "invalid_json");
    }
}
