//! What the bench sends: records of about 300 bytes, varied enough to
//! index like real logs, in the form of each protocol it speaks.

use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Ndjson,
    Bulk,
    Otlp,
    Syslog,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Ndjson => "NDJSON, POST /v1/logs",
            Protocol::Bulk => "Elasticsearch bulk, POST /_bulk",
            Protocol::Otlp => "OTLP/HTTP protobuf, POST /otlp/v1/logs",
            Protocol::Syslog => "syslog RFC 5424 over TCP, octet-counted",
        }
    }

    /// The route and content type an HTTP protocol posts to.
    pub fn route(self) -> (&'static str, &'static str) {
        match self {
            Protocol::Ndjson | Protocol::Syslog => ("/v1/logs", "application/x-ndjson"),
            Protocol::Bulk => ("/_bulk", "application/x-ndjson"),
            Protocol::Otlp => ("/otlp/v1/logs", "application/x-protobuf"),
        }
    }

    /// A batch of `records` (payload JSON lines) as this protocol sends it.
    pub fn body(self, records: &[String], key: &str) -> Vec<u8> {
        let docs = || {
            records
                .iter()
                .map(|r| serde_json::from_str::<Value>(r).unwrap_or_default())
        };
        match self {
            Protocol::Ndjson => records.join("\n").into_bytes(),
            Protocol::Bulk => records
                .iter()
                .flat_map(|r| ["{\"index\":{\"_index\":\"bench\"}}\n", r.as_str(), "\n"])
                .collect::<String>()
                .into_bytes(),
            Protocol::Otlp => otlp_body(docs()),
            Protocol::Syslog => docs()
                .map(|d| {
                    let frame = format!(
                        "<{}>1 {} web-01 {} - - [loggerhub@32473 key=\"{key}\"] {}",
                        8 + syslog_severity(d["level"].as_str().unwrap_or("")),
                        d["timestamp"].as_str().unwrap_or("-"),
                        d["service"].as_str().unwrap_or("-"),
                        d["message"].as_str().unwrap_or("")
                    );
                    format!("{} {frame}", frame.len())
                })
                .collect::<String>()
                .into_bytes(),
        }
    }
}

pub fn syslog_severity(level: &str) -> u8 {
    match level {
        "ERROR" => 3,
        "WARN" => 4,
        _ => 6,
    }
}

/// The records as one OTLP request, a resource per service.
pub fn otlp_body(docs: impl Iterator<Item = Value>) -> Vec<u8> {
    use loggerhub::ingest::otlp::proto::*;
    use prost::Message;
    let text = |s: &str| AnyValue {
        value: Some(Any::StringValue(s.to_string())),
    };
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(text(v)),
    };
    let mut by_service: std::collections::BTreeMap<String, Vec<LogRecord>> = Default::default();
    for d in docs {
        let ns = loggerhub::model::parse_ts(d["timestamp"].as_str().unwrap_or("")).unwrap_or(0);
        let mut attributes: Vec<KeyValue> = d["attributes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| kv(k, v.as_str().unwrap_or("")))
            .collect();
        attributes.push(kv("exception.stacktrace", d["full_log"].as_str().unwrap_or("")));
        by_service
            .entry(d["service"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(LogRecord {
                time_unix_nano: u64::try_from(ns).unwrap_or(0),
                severity_text: d["level"].as_str().unwrap_or("").into(),
                body: Some(text(d["message"].as_str().unwrap_or(""))),
                attributes,
                ..LogRecord::default()
            });
    }
    ExportLogsServiceRequest {
        resource_logs: by_service
            .into_iter()
            .map(|(service, log_records)| ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", &service)],
                }),
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records,
                }],
            })
            .collect(),
    }
    .encode_to_vec()
}

/// The bench's start, which every stamp counts from.
pub fn started_ns() -> i64 {
    static NOW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *NOW.get_or_init(loggerhub::model::now_ns)
}

/// Record `i`'s time: from `base` (unix ns), `step` ns apart.
pub fn stamp(i: u64, base: i64, step: i64) -> String {
    loggerhub::model::format_ts(base + i64::try_from(i).unwrap_or(0) * step)
}

/// One record of about 300 bytes, varied enough to index like real logs,
/// stamped from a day before the run a millisecond apart: inside every
/// retention and the future grace (1M records span 17 minutes).
pub fn record(i: u64) -> String {
    record_at(i, stamp(i, started_ns() - loggerhub::model::DAY_NS, 1_000_000))
}

pub fn record_at(i: u64, timestamp: String) -> String {
    const LEVELS: [&str; 4] = ["INFO", "INFO", "WARN", "ERROR"];
    const PATHS: [&str; 4] = ["/api/v1/orders", "/api/v1/users", "/api/v1/payments", "/healthz"];
    json!({
        "service": format!("svc-{}", i % 8),
        "level": LEVELS[(i % 4) as usize],
        "timestamp": timestamp,
        "message": format!("GET {}/{} completed with status {} in {}ms for user {} session s{:08x}",
            PATHS[(i % 4) as usize], i % 100_000, if i.is_multiple_of(17) { 500 } else { 200 }, i % 900, i % 10_000, i.wrapping_mul(2_654_435_761) % 0xffff_ffff),
        "full_log": format!("request id r{i:010} handled by worker {} upstream latency {}ms", i % 32, i % 250),
        "attributes": {"region": if i.is_multiple_of(2) { "eu-west-1" } else { "us-east-1" }, "host": format!("web-{:02}", i % 16)},
    })
    .to_string()
}
