//! OTLP/HTTP logs (`ExportLogsServiceRequest`, opentelemetry-proto v1), in
//! protobuf or in OTLP's JSON encoding, read into the JSON payload's form:
//!
//! - severity text (else the severity number's range) → `level`;
//! - the resource's `service.name` → `service`;
//! - the body → `message` (a string as it is, anything else as JSON);
//! - time (else observed time) → `timestamp`;
//! - resource, scope and record attributes → `attributes` (a record's own
//!   win), trace and span ids as `trace_id` / `span_id` in hex;
//! - `exception.stacktrace` → `full_log`.
//!
//! A record the payload decoder refuses is rejected alone, and counted in
//! the answer's `partial_success`, as OTLP asks.

mod document;
pub mod proto;

use prost::Message;
use serde::Deserialize;
use serde_json::json;

use serde_json::value::RawValue;

use super::wire::{self, Field, Nodes, WireError};
use super::{Converted, WireFormat};
use crate::model::window::TimeWindow;
use document::{Shared, document};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an OTLP logs request: {0}")]
pub struct OtlpError(pub String);

/// Reads a request into the JSON payload's records. What they come to is
/// bounded (`Converted`), and so is what reading them builds: the request
/// is walked one record at a time (`wire`), each record's size, its share
/// of the resource's and scope's attributes included, is charged before it
/// is decoded, and a record of more than `wire::MAX_NODES` values is
/// refused without being decoded. The converter stops at the first record
/// past the budget (the caller then refuses the request,
/// `Converted::check_budget`).
pub fn decode(body: &[u8], encoding: WireFormat, tenant: &str, window: TimeWindow) -> Result<Converted, OtlpError> {
    let mut out = Converted::within(window, body.len());
    match encoding {
        WireFormat::Protobuf => decode_protobuf(body, tenant, &mut out)?,
        WireFormat::Json => decode_json(body, tenant, &mut out)?,
    }
    Ok(out)
}

impl From<WireError> for OtlpError {
    fn from(e: WireError) -> Self {
        OtlpError(e.0)
    }
}

/// ExportLogsServiceRequest: `resource_logs` (1); ResourceLogs: `resource`
/// (1), `scope_logs` (2); ScopeLogs: `scope` (1), `log_records` (2).
fn decode_protobuf(body: &[u8], tenant: &str, out: &mut Converted) -> Result<(), OtlpError> {
    let bad = |what: &str, e: prost::DecodeError| OtlpError(format!("{what}: {e}"));
    for rl in wire::messages(body, 1) {
        let rl = rl?;
        let mut resource = proto::Resource::default();
        // One count over every `resource` field: a repeated field merges
        // into one resource.
        let mut nodes = Nodes::default();
        for r in wire::messages(rl, 1) {
            let r = r?;
            for kv in wire::messages(r, 1) {
                nodes
                    .key_value(kv?, 0)
                    .map_err(|e| OtlpError(format!("a resource's attributes: {e}")))?;
            }
            resource.merge(r).map_err(|e| bad("a resource", e))?;
        }
        let shared = Shared::of(&resource.attributes);
        for sl in wire::messages(rl, 2) {
            let sl = sl?;
            let mut scope: Option<proto::InstrumentationScope> = None;
            for s in wire::messages(sl, 1) {
                scope
                    .get_or_insert_with(Default::default)
                    .merge(s?)
                    .map_err(|e| bad("a scope", e))?;
            }
            let scope_bytes = scope.as_ref().map_or(0, |s| s.name.len() + 24);
            for record in wire::messages(sl, 2) {
                let record = record?;
                if !out.fits(shared.bytes + scope_bytes + record.len()) {
                    return Ok(());
                }
                let mut nodes = Nodes::default();
                let counted = wire::fields(record).try_for_each(|f| match f? {
                    (5, Field::Bytes(b)) => nodes.any_value(b, 0),
                    (6, Field::Bytes(b)) => nodes.key_value(b, 0),
                    _ => Ok(()),
                });
                if let Err(e) = counted {
                    out.reject(&e.0);
                    continue;
                }
                let record = proto::LogRecord::decode(record).map_err(|e| bad("a log record", e))?;
                out.push(&document(&record, &shared, scope.as_ref()), tenant);
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonRequest<'a> {
    #[serde(borrow, default)]
    resource_logs: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonResourceLogs<'a> {
    #[serde(borrow, default)]
    resource: Option<&'a RawValue>,
    #[serde(borrow, default)]
    scope_logs: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonScopeLogs<'a> {
    #[serde(default)]
    scope: Option<proto::InstrumentationScope>,
    #[serde(borrow, default)]
    log_records: Option<&'a RawValue>,
}

/// OTLP/JSON, walked as the protobuf is: one record at a time.
fn decode_json(body: &[u8], tenant: &str, out: &mut Converted) -> Result<(), OtlpError> {
    let bad = |e: serde_json::Error| OtlpError(e.to_string());
    let text = std::str::from_utf8(body).map_err(|e| OtlpError(format!("not UTF-8: {e}")))?;
    let request: JsonRequest = serde_json::from_str(text).map_err(bad)?;
    wire::for_each(request.resource_logs, |rl| {
        let rl: JsonResourceLogs = serde_json::from_str(rl.get()).map_err(bad)?;
        let resource = match rl.resource {
            Some(r) => {
                Nodes::default()
                    .json(r.get())
                    .map_err(|e| OtlpError(format!("a resource's attributes: {e}")))?;
                serde_json::from_str::<Option<proto::Resource>>(r.get()).map_err(bad)?
            }
            None => None,
        };
        let shared = Shared::of(resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default());
        wire::for_each(rl.scope_logs, |sl| {
            let sl: JsonScopeLogs = serde_json::from_str(sl.get()).map_err(bad)?;
            let scope_bytes = sl.scope.as_ref().map_or(0, |s| s.name.len() + 24);
            wire::for_each(sl.log_records, |record| {
                if !out.fits(shared.bytes + scope_bytes + record.get().len()) {
                    return Err(Stop::Over);
                }
                if let Err(e) = Nodes::default().json(record.get()) {
                    out.reject(&e.0);
                    return Ok(());
                }
                let record: proto::LogRecord = serde_json::from_str(record.get()).map_err(bad)?;
                out.push(&document(&record, &shared, sl.scope.as_ref()), tenant);
                Ok(())
            })
        })
    })
    .or_else(|e| match e {
        Stop::Over => Ok(()),
        Stop::Bad(e) => Err(e),
    })
}

/// Why a walk over the JSON stopped: the budget, or a bad request.
enum Stop {
    Over,
    Bad(OtlpError),
}

impl From<OtlpError> for Stop {
    fn from(e: OtlpError) -> Self {
        Stop::Bad(e)
    }
}

impl From<WireError> for Stop {
    fn from(e: WireError) -> Self {
        Stop::Bad(e.into())
    }
}

/// The answer to a request: empty when every record was taken, else a
/// partial success naming how many were rejected and why.
pub fn response(encoding: WireFormat, decoded: &Converted) -> Vec<u8> {
    let partial = (decoded.rejected > 0).then(|| proto::ExportLogsPartialSuccess {
        rejected_log_records: decoded.rejected as i64,
        error_message: decoded.first_error.clone().unwrap_or_default(),
    });
    match encoding {
        WireFormat::Protobuf => proto::ExportLogsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        WireFormat::Json => match partial {
            None => b"{}".to_vec(),
            Some(p) => json!({"partialSuccess": {
                "rejectedLogRecords": p.rejected_log_records.to_string(),
                "errorMessage": p.error_message,
            }})
            .to_string()
            .into_bytes(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_time() -> TimeWindow {
        TimeWindow::ALL
    }
    use proto::*;

    fn kv(key: &str, value: Any) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
        }
    }

    fn request() -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", Any::StringValue("checkout".into())),
                        kv("host.name", Any::StringValue("web-1".into())),
                    ],
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "app.orders".into(),
                        version: String::new(),
                    }),
                    log_records: vec![
                        LogRecord {
                            time_unix_nano: 1_760_099_196_000_000_000,
                            severity_number: 17,
                            body: Some(AnyValue {
                                value: Some(Any::StringValue("payment failed".into())),
                            }),
                            attributes: vec![
                                kv("order.id", Any::IntValue(42)),
                                kv("exception.stacktrace", Any::StringValue("Traceback\n  line 1".into())),
                            ],
                            trace_id: vec![0xab; 16],
                            span_id: vec![0xcd; 8],
                            ..LogRecord::default()
                        },
                        LogRecord {
                            observed_time_unix_nano: 1_760_099_197_000_000_000,
                            severity_text: "Warning".into(),
                            body: Some(AnyValue {
                                value: Some(Any::KvlistValue(KeyValueList {
                                    values: vec![kv("a", Any::BoolValue(true))],
                                })),
                            }),
                            ..LogRecord::default()
                        },
                    ],
                }],
            }],
        }
    }

    /// A resource's attributes are counted over every `resource` field of
    /// its ResourceLogs: repeated, they merge into one resource.
    #[test]
    fn a_repeated_resource_is_counted_whole() {
        let attributes: Vec<KeyValue> = (0..2000).map(|i| kv(&format!("k{i}"), Any::BoolValue(true))).collect();
        let resource = Resource { attributes }.encode_to_vec();
        let mut one = Vec::new();
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut one);
        prost::encoding::encode_varint(resource.len() as u64, &mut one);
        one.extend_from_slice(&resource);
        let field = |rl: &[u8]| {
            let mut out = Vec::new();
            prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut out);
            prost::encoding::encode_varint(rl.len() as u64, &mut out);
            out.extend_from_slice(rl);
            out
        };
        assert!(decode(&field(&one), WireFormat::Protobuf, "t", any_time()).is_ok());
        let three = one.repeat(3);
        let e = decode(&field(&three), WireFormat::Protobuf, "t", any_time()).expect_err("over the count");
        assert!(e.0.contains("4096"), "{e}");
    }

    #[test]
    fn protobuf_maps_every_field() {
        let d = decode(&request().encode_to_vec(), WireFormat::Protobuf, "acme", any_time()).expect("decodes");
        assert_eq!((d.count, d.rejected), (2, 0));
        let docs = crate::ingest::ndjson_lines(&d.body);
        let first = &docs[0];
        assert_eq!(first["message"], "payment failed");
        assert_eq!(first["level"], "ERROR");
        assert_eq!(first["service"], "checkout");
        assert_eq!(first["timestamp"], 1_760_099_196_000_000_000i64);
        assert_eq!(first["full_log"], "Traceback\n  line 1");
        // Numbers stay numbers (issue 24).
        assert_eq!(first["attributes"]["order.id"], 42);
        assert_eq!(first["attributes"]["host.name"], "web-1");
        assert_eq!(first["attributes"]["otel.scope.name"], "app.orders");
        assert_eq!(first["attributes"]["trace_id"], "ab".repeat(16));
        assert_eq!(first["attributes"]["span_id"], "cd".repeat(8));
        assert!(first["attributes"].get("service.name").is_none());
        let second = &docs[1];
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["message"], r#"{"a":true}"#);
        assert_eq!(second["timestamp"], 1_760_099_197_000_000_000i64);
        // The payload decoder reads what this wrote.
        let records = loggerhub_codec::payload::parse_json(&d.body).expect("payload");
        assert_eq!(records[0].full_log, "Traceback\n  line 1");
    }

    #[test]
    fn json_encoding_as_the_spec_writes_it() {
        let body =
            br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}}]},
          "scopeLogs":[{"scope":{"name":"s"},"logRecords":[{"timeUnixNano":"1760099196000000000","severityNumber":9,
          "severityText":"INFO","body":{"stringValue":"added"},"attributes":[{"key":"n","value":{"intValue":"3"}},
          {"key":"l","value":{"arrayValue":{"values":[{"doubleValue":1.5}]}}},
          {"key":"http","value":{"kvlistValue":{"values":[{"key":"status","value":{"intValue":"500"}},
            {"key":"route","value":{"stringValue":"/pay"}}]}}}],
          "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}]}"#;
        let d = decode(body, WireFormat::Json, "acme", any_time()).expect("decodes");
        let doc = &crate::ingest::ndjson_lines(&d.body)[0];
        assert_eq!(doc["service"], "cart");
        assert_eq!(doc["level"], "INFO");
        assert_eq!(doc["attributes"]["n"], 3);
        assert_eq!(doc["attributes"]["l"], "[1.5]");
        // A map's members are dotted keys, as a JSON record's are.
        let records = loggerhub_codec::payload::parse_json(&d.body).expect("payload");
        let attr = |k: &str| {
            records[0]
                .attributes
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            (attr("http.status"), attr("http.route"), attr("http")),
            (Some("\u{0}500"), Some("/pay"), None)
        );
        assert_eq!(doc["attributes"]["trace_id"], "5b8efff798038103d269b633813fc60c");
        assert_eq!(
            decode(b"{}", WireFormat::Json, "acme", any_time()).map(|d| d.count),
            Ok(0)
        );
    }

    #[test]
    fn bad_records_are_rejected_alone_and_bad_bodies_whole() {
        let mut r = request();
        let records = &mut r.resource_logs[0].scope_logs[0].log_records;
        records[0].attributes = (0..300).map(|i| kv(&format!("k{i}"), Any::BoolValue(true))).collect();
        let d = decode(&r.encode_to_vec(), WireFormat::Protobuf, "acme", any_time()).expect("decodes");
        assert_eq!((d.count, d.rejected), (1, 1));
        assert!(d.first_error.is_some_and(|e| e.contains("attributes")));
        assert!(decode(b"\xff\xff\xff", WireFormat::Protobuf, "acme", any_time()).is_err());
        assert!(decode(b"[1]", WireFormat::Json, "acme", any_time()).is_err());
        assert!(
            decode(
                br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}"#,
                WireFormat::Json,
                "acme",
                any_time()
            )
            .is_err()
        );
    }
}
