//! Loki's push API (`POST /loki/api/v1/push`), in JSON or in protobuf
//! compressed with snappy (what Promtail, Grafana Alloy and the Loki
//! clients send), read into the JSON payload's form:
//!
//! - each line → `message`, its timestamp → `timestamp`;
//! - the stream's labels and the entry's structured metadata →
//!   `attributes`;
//! - `service_name` (else `service`, `app`, `application`, `job`) →
//!   `service`; `level` (else `detected_level`, `severity`) → `level`.
//!
//! A line the payload decoder refuses is skipped and counted; Loki's API has
//! no per-line answer, so the request says how many.

use prost::Message;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use loggerhub_codec::limits::MAX_ATTRIBUTES;
use serde_json::value::RawValue;

use super::wire::{self, Nodes, WireError};
use super::{Converted, WireFormat};
use crate::model::window::TimeWindow;

/// Labels that name the service, in order of preference.
const SERVICE_LABELS: &[&str] = &["service_name", "service", "app", "application", "job"];
/// Labels that carry the level, in order of preference.
const LEVEL_LABELS: &[&str] = &["level", "detected_level", "severity", "lvl"];

/// `logproto.PushRequest`, as Loki's `push.proto` declares it.
pub mod proto {
    use super::*;

    #[derive(Clone, PartialEq, Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<Stream>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Stream {
        /// The label set in Prometheus' text form: `{job="api", env="prod"}`.
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<Entry>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Entry {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPair>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct LabelPair {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
}

#[derive(Deserialize)]
struct JsonPush<'a> {
    #[serde(borrow, default)]
    streams: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct JsonStream<'a> {
    #[serde(borrow, default)]
    stream: Option<&'a RawValue>,
    #[serde(borrow, default)]
    values: Option<&'a RawValue>,
}

/// What a stream's labels may take, as text: Loki's own defaults allow 15
/// labels of at most 1 KiB of name and 2 KiB of value.
pub const MAX_LABELS_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a Loki push request: {0}")]
pub struct LokiError(pub String);

/// A snappy body that would inflate past the body limit (413, as a gzip
/// one is).
pub const INFLATES_PAST_THE_LIMIT: &str = "the body inflates to";

impl From<WireError> for LokiError {
    fn from(e: WireError) -> Self {
        LokiError(e.0)
    }
}

fn check_labels_size(len: usize) -> Result<(), LokiError> {
    if len > MAX_LABELS_BYTES {
        return Err(LokiError(format!(
            "a stream's labels take {len} bytes, over the limit of {MAX_LABELS_BYTES}"
        )));
    }
    Ok(())
}

/// Reads a push body; `max_inflated` bounds what snappy may inflate it to,
/// and the conversion's budget what its records come to, the stream's
/// labels copied into each (`Converted`). The body is walked one entry at
/// a time (`wire`): each entry's size is charged before it is decoded, and
/// one of more than `wire::MAX_NODES` values is refused undecoded.
pub fn decode(
    body: &[u8],
    encoding: WireFormat,
    tenant: &str,
    max_inflated: usize,
    window: TimeWindow,
) -> Result<Converted, LokiError> {
    let mut out;
    match encoding {
        WireFormat::Protobuf => {
            // The block format states its length first: checked before a
            // byte is inflated.
            let len = snap::raw::decompress_len(body).map_err(|e| LokiError(format!("snappy: {e}")))?;
            if len > max_inflated {
                return Err(LokiError(format!(
                    "{INFLATES_PAST_THE_LIMIT} {len} bytes, over the limit of {max_inflated}"
                )));
            }
            let raw = snap::raw::Decoder::new()
                .decompress_vec(body)
                .map_err(|e| LokiError(format!("snappy: {e}")))?;
            out = Converted::within(window, raw.len());
            decode_protobuf(&raw, tenant, &mut out)?;
        }
        WireFormat::Json => {
            out = Converted::within(window, body.len());
            decode_json(body, tenant, &mut out)?;
        }
    }
    Ok(out)
}

/// PushRequest: `streams` (1); StreamAdapter: `labels` (1), `entries` (2);
/// EntryAdapter: `structured_metadata` (3).
fn decode_protobuf(raw: &[u8], tenant: &str, out: &mut Converted) -> Result<(), LokiError> {
    for stream in wire::messages(raw, 1) {
        let stream = stream?;
        let mut text = "";
        for l in wire::messages(stream, 1) {
            let l = l?;
            check_labels_size(l.len())?;
            text = std::str::from_utf8(l).map_err(|e| LokiError(format!("labels: {e}")))?;
        }
        let labels = parse_labels(text)?;
        let shared = labels_bytes(&labels);
        for entry in wire::messages(stream, 2) {
            let entry = entry?;
            if !out.fits(shared + entry.len() + 64) {
                return Ok(());
            }
            let pairs = wire::messages(entry, 3).count();
            if pairs > MAX_ATTRIBUTES {
                out.reject(&format!("{pairs} structured metadata pairs, over {MAX_ATTRIBUTES}"));
                continue;
            }
            let e = proto::Entry::decode(entry).map_err(|e| LokiError(e.to_string()))?;
            let ns = e.timestamp.as_ref().map(|t| {
                t.seconds
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(t.nanos))
            });
            let metadata = e.structured_metadata.into_iter().map(|p| (p.name, p.value));
            out.push(&document(&labels, metadata, ns, &e.line), tenant);
        }
    }
    Ok(())
}

/// Why a walk over the JSON stopped: the budget, or a bad request.
enum Stop {
    Over,
    Bad(LokiError),
}

impl From<LokiError> for Stop {
    fn from(e: LokiError) -> Self {
        Stop::Bad(e)
    }
}

impl From<WireError> for Stop {
    fn from(e: WireError) -> Self {
        Stop::Bad(e.into())
    }
}

fn decode_json(body: &[u8], tenant: &str, out: &mut Converted) -> Result<(), LokiError> {
    let bad = |e: serde_json::Error| LokiError(e.to_string());
    let text = std::str::from_utf8(body).map_err(|e| LokiError(format!("not UTF-8: {e}")))?;
    let push: JsonPush = serde_json::from_str(text).map_err(bad)?;
    wire::for_each(push.streams, |stream| {
        let stream: JsonStream = serde_json::from_str(stream.get()).map_err(bad)?;
        let labels: Vec<(String, String)> = match stream.stream {
            Some(raw) => {
                check_labels_size(raw.get().len())?;
                serde_json::from_str::<Option<Map<String, Value>>>(raw.get())
                    .map_err(bad)?
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect()
            }
            None => Vec::new(),
        };
        let shared = labels_bytes(&labels);
        wire::for_each(stream.values, |value| {
            if !out.fits(shared + value.get().len() + 64) {
                return Err(Stop::Over);
            }
            if let Err(e) = Nodes::default().json(value.get()) {
                out.reject(&e.0);
                return Ok(());
            }
            let value: Vec<Value> = serde_json::from_str(value.get()).map_err(bad)?;
            let (ns, line, metadata) = match value.as_slice() {
                [Value::String(ts), Value::String(line), rest @ ..] => (ts, line, rest.first()),
                _ => {
                    return Err(Stop::Bad(LokiError(
                        "a value must be [\"<unix ns>\", \"<line>\", {metadata}?]".into(),
                    )));
                }
            };
            let ns = ns
                .parse::<i64>()
                .map_err(|_| LokiError(format!("timestamp {ns:?} is not unix nanoseconds")))?;
            let metadata = metadata
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)));
            out.push(&document(&labels, metadata, Some(ns), line), tenant);
            Ok(())
        })
    })
    .or_else(|e| match e {
        Stop::Over => Ok(()),
        Stop::Bad(e) => Err(e),
    })
}

/// What a stream's labels add to each of its entries.
fn labels_bytes(labels: &[(String, String)]) -> usize {
    labels.iter().map(|(k, v)| k.len() + v.len() + 6).sum()
}

fn document(
    labels: &[(String, String)],
    metadata: impl Iterator<Item = (String, String)>,
    ns: Option<i64>,
    line: &str,
) -> Value {
    let mut attributes: Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    attributes.extend(metadata.map(|(k, v)| (k, Value::String(v))));
    let pick = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| attributes.get(*n).and_then(Value::as_str).filter(|v| !v.is_empty()))
            .map(str::to_string)
    };
    let service = pick(SERVICE_LABELS);
    let level = pick(LEVEL_LABELS).filter(|l| loggerhub_codec::Level::parse(l).is_some());
    let mut doc = json!({"message": line});
    if let Some(s) = service {
        doc["service"] = json!(s);
    }
    if let Some(l) = level {
        doc["level"] = json!(l);
    }
    if let Some(ns) = ns.filter(|n| *n != 0) {
        doc["timestamp"] = json!(ns);
    }
    doc["attributes"] = Value::Object(attributes);
    doc
}

/// A label set in Prometheus' text form: `{name="value", …}` with `\"`,
/// `\\` and `\n` escapes in values.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, LokiError> {
    let bad = |why: &str| LokiError(format!("labels {:?}: {why}", text.chars().take(80).collect::<String>()));
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| bad("expected {name=\"value\", …}"))?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.') {
            name.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if name.is_empty() || chars.next() != Some('=') {
            return Err(bad("expected name=\"value\""));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('"') {
            return Err(bad("a value must be quoted"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(bad("unterminated value")),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => return Err(bad("unterminated value")),
                },
                Some(c) => value.push(c),
            }
        }
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_time() -> TimeWindow {
        TimeWindow::ALL
    }

    #[test]
    fn labels() {
        assert_eq!(
            parse_labels(r#"{job="api", env = "prod",quote="a\"b\\c"}"#),
            Ok(vec![
                ("job".into(), "api".into()),
                ("env".into(), "prod".into()),
                ("quote".into(), "a\"b\\c".into())
            ])
        );
        assert_eq!(parse_labels("{}"), Ok(vec![]));
        for bad in ["job=\"a\"", "{job=a}", "{job=\"a}", "{=\"a\"}", "{job}"] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_push() {
        let body = br#"{"streams":[{"stream":{"application":"shop","severity":"warning","logger":"root"},
          "values":[["1760099196000000000","low stock"],["1760099197000000000","sold out",{"trace_id":"abc"}]]}]}"#;
        let d = decode(body, WireFormat::Json, "acme", 1 << 20, any_time()).expect("decodes");
        let docs = crate::ingest::ndjson_lines(&d.body);
        assert_eq!(d.count, 2);
        assert_eq!(docs[0]["service"], "shop");
        assert_eq!(docs[0]["level"], "warning");
        assert_eq!(docs[0]["timestamp"], 1_760_099_196_000_000_000i64);
        assert_eq!(docs[0]["attributes"]["logger"], "root");
        assert_eq!(docs[1]["attributes"]["trace_id"], "abc");
        assert!(
            decode(
                br#"{"streams":[{"values":[[1,2]]}]}"#,
                WireFormat::Json,
                "acme",
                1 << 20,
                any_time()
            )
            .is_err()
        );
        assert!(
            decode(
                br#"{"streams":[{"values":[["x","y"]]}]}"#,
                WireFormat::Json,
                "acme",
                1 << 20,
                any_time()
            )
            .is_err()
        );
    }

    #[test]
    fn protobuf_push_and_bombs() {
        let push = proto::PushRequest {
            streams: vec![proto::Stream {
                labels: r#"{service_name="cart", level="error", tenant_id="victim"}"#.into(),
                entries: vec![proto::Entry {
                    timestamp: Some(proto::Timestamp {
                        seconds: 1_760_099_196,
                        nanos: 5,
                    }),
                    line: "payment failed".into(),
                    structured_metadata: vec![],
                }],
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&push.encode_to_vec())
            .expect("snappy");
        let d = decode(&body, WireFormat::Protobuf, "acme", 1 << 20, any_time()).expect("decodes");
        let doc = &crate::ingest::ndjson_lines(&d.body)[0];
        assert_eq!(
            (doc["service"].as_str(), doc["level"].as_str()),
            (Some("cart"), Some("error"))
        );
        assert_eq!(doc["timestamp"], 1_760_099_196_000_000_005i64);
        // A label is an attribute, never the record's tenant.
        assert_eq!(doc["attributes"]["tenant_id"], "victim");
        assert!(doc.get("tenant_id").is_none());
        // 4 MiB of zeros compress to a few hundred KiB; over a 1 MiB limit.
        let bomb = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; 4 << 20])
            .expect("snappy");
        let e = decode(&bomb, WireFormat::Protobuf, "acme", 1 << 20, any_time()).expect_err("refused");
        assert!(e.0.contains("over the limit"), "{e}");
        assert!(decode(b"not snappy", WireFormat::Protobuf, "acme", 1 << 20, any_time()).is_err());
    }
}
