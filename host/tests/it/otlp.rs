//! OTLP/HTTP logs (issue 12, point 4), sent by the OpenTelemetry Python
//! SDK through its OTLP/HTTP exporter (protobuf, gzip), and in OTLP's JSON
//! encoding as the specification writes it.

use serde_json::{Value, json};

use crate::common::private::python;
use crate::common::{Server, distributed_with, embedded_with};

const SDK: &str = r#"
import logging, sys
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

url, key = sys.argv[1], sys.argv[2]
provider = LoggerProvider(resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"}))
exporter = OTLPLogExporter(endpoint=url + "/otlp/v1/logs", headers={"authorization": "Bearer " + key},
                           compression=Compression.Gzip)
provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
log = logging.getLogger("shop")
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
log.setLevel(logging.DEBUG)
tracer = TracerProvider().get_tracer("shop")
with tracer.start_as_current_span("pay") as span:
    log.warning("card declined", extra={"order_id": "o-1"})
    ctx = span.get_span_context()
try:
    1 / 0
except ZeroDivisionError:
    log.exception("division failed")
log.info("done")
provider.shutdown()
print(format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))
"#;

async fn python_sdk(s: &Server, run: &str) {
    let key = s.tenant(&format!("otel{run}")).await;
    let out = python(SDK, &[&s.url(""), &key]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (trace_id, span_id) = stdout.trim().split_once(' ').expect("ids printed");
    let got = s.hits(&key, "/v1/logs?service=checkout", 3).await;
    let declined = got.iter().find(|h| h["message"] == "card declined").expect("sent");
    assert_eq!(declined["level"], "WARN");
    assert_eq!(declined["attributes"]["order_id"], "o-1", "{declined}");
    assert_eq!(declined["attributes"]["deployment.environment"], "test");
    assert_eq!(declined["attributes"]["trace_id"], trace_id);
    assert_eq!(declined["attributes"]["span_id"], span_id);
    let failed = got.iter().find(|h| h["message"] == "division failed").expect("sent");
    assert_eq!(failed["level"], "ERROR");
    let (_, detail) = s
        .get(&key, &format!("/v1/logs/{}", failed["id"].as_str().expect("id")))
        .await;
    let trace = detail["full_log"].as_str().unwrap_or_default();
    assert!(trace.contains("ZeroDivisionError") && trace.contains('\n'), "{detail}");
    assert!(got.iter().any(|h| h["message"] == "done" && h["level"] == "INFO"));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_embedded() {
    let (_d, s) = embedded_with(&[]).await;
    python_sdk(&s, "e").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_distributed() {
    let (_d, s, run) = distributed_with("otel", &[]).await;
    python_sdk(&s, &run).await;
}

/// OTLP/JSON, a partial success, and what is refused whole.
#[tokio::test(flavor = "multi_thread")]
async fn json_encoding_and_refusals() {
    let (_d, s) = embedded_with(&[]).await;
    let key = s.tenant("oteljson").await;
    let record = |body: &str, attrs: usize| {
        let attributes: Vec<Value> = (0..attrs)
            .map(|i| json!({"key": format!("k{i}"), "value": {"boolValue": true}}))
            .collect();
        json!({"timeUnixNano": "1760099196000000000", "severityNumber": 13,
               "body": {"stringValue": body}, "attributes": attributes})
    };
    let request = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
        "scopeLogs": [{"logRecords": [record("kept", 1), record("too many attributes", 300)]}]
    }]});
    let post = |ct: &str, body: Vec<u8>| {
        s.http
            .post(s.url("/otlp/v1/logs"))
            .bearer_auth(&key)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = post("application/json", request.to_string().into_bytes())
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["partialSuccess"]["rejectedLogRecords"], "1", "{answer}");
    let got = s.hits(&key, "/v1/logs?service=cart", 1).await;
    assert_eq!(
        (got[0]["message"].as_str(), got[0]["level"].as_str()),
        (Some("kept"), Some("WARN"))
    );
    assert_eq!(got[0]["timestamp"], "2025-10-10T12:26:36Z");

    let r = post("text/plain", b"x".to_vec()).await.expect("post");
    assert_eq!(r.status(), 415);
    let r = post("application/x-protobuf", b"\xff\xff\xff\xff".to_vec())
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let r = s
        .http
        .post(s.url("/otlp/v1/logs"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
}
