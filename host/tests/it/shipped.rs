//! Shipped lines are read like text (issue 24, point 5). Shippers tail a
//! file and wrap each line in a record of their own, stamped when they
//! read it and naming no level. Sent by the real clients of the suite
//! (the `elasticsearch` client's bulk with a `log` field, as Fluent Bit's
//! `es` output writes it; a Loki push in Promtail's protobuf + snappy; the
//! OpenTelemetry SDK's OTLP exporter with a bare body, as Fluent Bit's
//! `opentelemetry` output sends it), lines of docs/PARSING.md's formats
//! get the level and time they name, and the line stays the message.

use serde_json::Value;

use crate::common::private::python;
use crate::common::{Server, embedded_with};
use crate::loki::snappy_push;

/// When the shippers read the lines (what they stamp on them).
const READ_AT: &str = "2025-12-01T00:00:00Z";
const READ_AT_SECS: i64 = 1_764_547_200;

/// A line, the level it names and the time it names (a year-less one by
/// its end: the parser places it in the year before its clock).
const LINES: &[(&str, &str, &str)] = &[
    (
        "2025-10-10 12:26:36,123 ERROR [main] c.e.Payments - payment failed",
        "ERROR",
        "2025-10-10T12:26:36.123Z",
    ),
    (
        "2025/10/10 12:26:37 [warn] 1234#0: *1 upstream response is buffered",
        "WARN",
        "2025-10-10T12:26:37Z",
    ),
    (
        "E1010 12:26:38.000000       1 pay.go:42] charge failed",
        "ERROR",
        "-10-10T12:26:38Z",
    ),
    (
        "<11>Oct 11 22:14:15 web01 app[7]: fell over",
        "ERROR",
        "-10-11T22:14:15Z",
    ),
    (
        r#"10.0.0.1 - - [10/Oct/2025:12:26:40 +0000] "GET /pay HTTP/1.1" 500 12"#,
        "INFO",
        "2025-10-10T12:26:40Z",
    ),
    ("plain words and no stamp", "INFO", READ_AT),
];

const FLUENT_BIT_ES: &str = r#"
import json, sys
from elasticsearch import Elasticsearch, helpers
url, key, read_at = sys.argv[1], sys.argv[2], sys.argv[3]
lines = json.loads(sys.argv[4])
es = Elasticsearch(url, api_key=("fluent-bit", key))
# Fluent Bit's es output: the tail's line under `log`, the read time as
# @timestamp, no level.
docs = [{"_index": "fluentbit", "_source": {"@timestamp": read_at, "log": line + "\n", "stream": "stdout"}}
        for line in lines]
ok, errors = helpers.bulk(es, docs)
print(json.dumps({"ok": ok, "errors": errors}))
"#;

const FLUENT_BIT_OTLP: &str = r#"
import json, sys
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
url, key, read_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = json.loads(sys.argv[4])
provider = LoggerProvider(resource=Resource.create({"service.name": "tail"}))
provider.add_log_record_processor(SimpleLogRecordProcessor(
    OTLPLogExporter(endpoint=url + "/otlp/v1/logs", headers={"authorization": "Bearer " + key})))
logger = provider.get_logger("fluent-bit")
# Fluent Bit's opentelemetry output: the line as the body, the read time,
# no severity.
for line in lines:
    logger.emit(LogRecord(timestamp=read_at * 10**9, observed_timestamp=read_at * 10**9, body=line))
provider.shutdown()
"#;

/// Every line arrived under `service` with the level and time it names;
/// `level:error` finds the errors.
async fn read_like_text(s: &Server, key: &str, service: &str) {
    let got = s
        .hits(key, &format!("/v1/logs?service={service}&limit=100"), LINES.len())
        .await;
    for (line, level, time) in LINES {
        let hit = got
            .iter()
            .find(|h| h["message"] == *line)
            .unwrap_or_else(|| panic!("{service}: {line:?} not stored as it was: {got:?}"));
        assert_eq!(hit["level"], *level, "{service}: {hit}");
        let stamped = hit["timestamp"].as_str().unwrap_or_default();
        assert!(
            stamped.ends_with(time),
            "{service}: {line:?} stamped {stamped}, not {time}"
        );
    }
    let errors = s
        .hits(key, &format!("/v1/search?q=level:error%20service:{service}"), 3)
        .await;
    assert_eq!(errors.len(), 3, "{service}: {errors:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shippers_lines_get_the_level_and_time_they_name() {
    let (_d, s) = embedded_with(&[]).await;
    let key = s.tenant("shipped").await;
    let lines: Vec<&str> = LINES.iter().map(|(l, _, _)| *l).collect();
    let lines_json = serde_json::to_string(&lines).expect("json");
    let url = s.url("");

    let out = python(FLUENT_BIT_ES, &[&url, &key, READ_AT, &lines_json]);
    let out: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out["ok"], LINES.len(), "{out}");
    read_like_text(&s, &key, "fluentbit").await;

    let r = s
        .http
        .post(s.url("/loki/api/v1/push"))
        .bearer_auth(&key)
        .header("content-type", "application/x-protobuf")
        .body(snappy_push(
            r#"{job="varlogs", filename="/var/log/app.log"}"#,
            READ_AT_SECS,
            &lines,
        ))
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 204);
    read_like_text(&s, &key, "varlogs").await;

    python(FLUENT_BIT_OTLP, &[&url, &key, &READ_AT_SECS.to_string(), &lines_json]);
    read_like_text(&s, &key, "tail").await;

    // A record that names its level keeps its own time and level, whatever
    // its line says.
    let r = s
        .http
        .post(s.url("/v1/logs"))
        .bearer_auth(&key)
        .json(
            &serde_json::json!({"service": "own", "level": "debug", "timestamp": READ_AT,
                                  "message": LINES[0].0}),
        )
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202);
    let got = s.hits(&key, "/v1/logs?service=own", 1).await;
    assert_eq!(
        (got[0]["level"].as_str(), got[0]["timestamp"].as_str()),
        (Some("DEBUG"), Some(READ_AT))
    );
}
