//! Loki's push API (issue 12, point 5): `python-logging-loki` from PyPI
//! sends JSON with the key as the basic-auth password; a protobuf + snappy
//! push (Promtail's encoding) goes over HTTP as Promtail sends it.

use prost::Message;
use serde_json::Value;

use crate::common::private::python;
use crate::common::{Server, distributed_with, embedded_with};
use loggerhub::ingest::loki::proto;

const CLIENT: &str = r#"
import logging, sys
import logging_loki
url, key = sys.argv[1], sys.argv[2]
handler = logging_loki.LokiHandler(url=url + "/loki/api/v1/push", tags={"application": "shop"},
                                   auth=("loki", key), version="1")
log = logging.getLogger("orders")
log.addHandler(handler)
log.setLevel(logging.DEBUG)
log.warning("low stock on %s", "sku-42", extra={"tags": {"region": "eu"}})
log.error("payment failed")
log.debug("cache warm")
"#;

async fn python_client(s: &Server, run: &str) {
    let key = s.tenant(&format!("loki{run}")).await;
    let out = python(CLIENT, &[&s.url(""), &key]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The handler reports a failed push on stderr and carries on.
    assert!(stderr.trim().is_empty(), "{stderr}");
    let got = s.hits(&key, "/v1/logs?service=shop", 3).await;
    let low = got
        .iter()
        .find(|h| h["message"] == "low stock on sku-42")
        .expect("sent");
    assert_eq!(low["level"], "WARN");
    assert_eq!(low["attributes"]["region"], "eu", "{low}");
    assert_eq!(low["attributes"]["logger"], "orders");
    assert!(
        got.iter()
            .any(|h| h["message"] == "payment failed" && h["level"] == "ERROR")
    );
    assert!(
        got.iter()
            .any(|h| h["message"] == "cache warm" && h["level"] == "DEBUG")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_logging_loki_embedded() {
    let (_d, s) = embedded_with(&[]).await;
    python_client(&s, "e").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_logging_loki_distributed() {
    let (_d, s, run) = distributed_with("loki", &[]).await;
    python_client(&s, &run).await;
}

/// A push as Promtail sends it: its lines read (and stamped) at `secs`.
pub(crate) fn snappy_push(labels: &str, secs: i64, lines: &[&str]) -> Vec<u8> {
    let push = proto::PushRequest {
        streams: vec![proto::Stream {
            labels: labels.into(),
            entries: lines
                .iter()
                .enumerate()
                .map(|(i, l)| proto::Entry {
                    timestamp: Some(proto::Timestamp {
                        seconds: secs,
                        nanos: 0,
                    }),
                    line: l.to_string(),
                    structured_metadata: vec![proto::LabelPair {
                        name: "trace_id".into(),
                        value: format!("t{i}"),
                    }],
                })
                .collect(),
        }],
    };
    snap::raw::Encoder::new()
        .compress_vec(&push.encode_to_vec())
        .expect("snappy")
}

#[tokio::test(flavor = "multi_thread")]
async fn protobuf_snappy_and_refusals() {
    let (_d, s) = embedded_with(&["--max-body-bytes", "65536"]).await;
    let key = s.tenant("lokipb").await;
    let post = |body: Vec<u8>, org: Option<&str>| {
        let mut r = s
            .http
            .post(s.url("/loki/api/v1/push"))
            .bearer_auth(&key)
            .header("content-type", "application/x-protobuf")
            .body(body);
        if let Some(org) = org {
            r = r.header("x-scope-orgid", org);
        }
        r.send()
    };
    let body = snappy_push(
        r#"{job="varlogs", level="info", filename="/var/log/app.log"}"#,
        1_760_099_196,
        &["one", "two"],
    );
    let r = post(body.clone(), Some("lokipb")).await.expect("post");
    assert_eq!(r.status(), 204);
    let got = s.hits(&key, "/v1/logs?service=varlogs", 2).await;
    let one = got.iter().find(|h| h["message"] == "one").expect("sent");
    assert_eq!(one["timestamp"], "2025-10-10T12:26:36Z");
    assert_eq!(one["attributes"]["filename"], "/var/log/app.log");
    assert_eq!(one["attributes"]["trace_id"], "t0");

    // Another tenant's name in Loki's tenant header.
    let r = post(body, Some("victim")).await.expect("post");
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["code"], "wrong_tenant");
    // A snappy bomb: under the 64 KiB limit on the wire, 1 MiB inflated.
    let big = "x".repeat(1 << 20);
    let r = post(snappy_push("{job=\"a\"}", 0, &[&big]), None).await.expect("post");
    assert_eq!(r.status(), 413, "as a gzip bomb is");
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["code"], "payload_too_large");
    let r = post(snappy_push("{job=a}", 0, &["x"]), None).await.expect("post");
    assert_eq!(r.status(), 400, "unquoted label");
    let r = s
        .http
        .post(s.url("/loki/api/v1/push"))
        .bearer_auth(&key)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 415);
}
