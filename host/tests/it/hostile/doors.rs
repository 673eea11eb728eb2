//! Every door holds (issue 22): what a hostile tenant sends through the
//! shipper protocols and the other ways in is bounded by what it turns
//! into, not only by its own size, and passes the same gates as
//! `POST /v1/logs`.

use std::io::Write;

use serde_json::{Value, json};

use crate::common::{Server, embedded_with};

/// The server's peak resident memory so far (`VmHWM`), in bytes.
fn peak_rss(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

async fn post(s: &Server, key: &str, path: &str, content_type: &str, gzipped: Vec<u8>) -> (u16, Value) {
    let r = s
        .http
        .post(s.url(path))
        .bearer_auth(key)
        .header("content-type", content_type)
        .header("content-encoding", "gzip")
        .body(gzipped)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A few kilobytes of gzip whose shared part (OTLP's resource attribute,
/// Loki's stream labels) would be copied into each of 20,000 records: 2.3
/// GB of records before. Refused whole, naming the bound, and the
/// server's peak memory grows by less than 64 MiB; a healthy tenant's
/// request of the same protocols still goes through.
#[tokio::test(flavor = "multi_thread")]
async fn shared_attributes_are_not_multiplied_past_the_bound() {
    let (_d, s) = embedded_with(&[]).await;
    let attacker = s.tenant("amplifier").await;
    let healthy = s.tenant("bystander").await;
    let records = 20_000;
    let mut attacks = Vec::new();
    // 64 KiB: each record is then refused for its attribute's size, but
    // was built first; 15 KiB: each record is taken.
    for size in [64 * 1024, 15 * 1024] {
        let big = "x".repeat(size);
        let otlp = json!({"resourceLogs": [{
            "resource": {"attributes": [{"key": "padding", "value": {"stringValue": big}}]},
            "scopeLogs": [{"logRecords": vec![json!({}); records]}],
        }]});
        let loki = json!({"streams": [{
            "stream": {"app": "x", "padding": big},
            "values": vec![json!(["0", ""]); records],
        }]});
        attacks.push(("/otlp/v1/logs", gzip(otlp.to_string().as_bytes())));
        attacks.push(("/loki/api/v1/push", gzip(loki.to_string().as_bytes())));
    }
    assert!(attacks.iter().all(|(_, b)| b.len() < 4096));

    let before = peak_rss(&s);
    for (path, body) in attacks {
        let (status, err) = post(&s, &attacker, path, "application/json", body).await;
        assert_eq!(
            (status, &err["error"]["code"]),
            (413, &json!("payload_too_large")),
            "{path}: {err}"
        );
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("× its body"), "{path}: {message}");
    }
    let grown = peak_rss(&s).saturating_sub(before);
    assert!(grown < 64 << 20, "the server's peak memory grew by {} MiB", grown >> 20);
    s.idle().await;
    let (_, page) = s.get(&attacker, "/v1/logs?limit=1").await;
    assert_eq!(page["total"], 0, "a refused request stored records: {page}");

    // The same shapes at a size real SDKs send go through.
    let otlp = json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "checkout"}},
            {"key": "telemetry.sdk.name", "value": {"stringValue": "opentelemetry"}},
            {"key": "host.name", "value": {"stringValue": "web-1"}}]},
        "scopeLogs": [{"logRecords": (0..200).map(|i| json!({"body": {"stringValue": format!("order {i}")}})).collect::<Vec<_>>()}],
    }]});
    let (status, body) = post(
        &s,
        &healthy,
        "/otlp/v1/logs",
        "application/json",
        gzip(otlp.to_string().as_bytes()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let loki = json!({"streams": [{"stream": {"app": "api", "env": "prod"},
        "values": (0..200).map(|i| json!(["0", format!("line {i}")])).collect::<Vec<_>>()}]});
    let (status, body) = post(
        &s,
        &healthy,
        "/loki/api/v1/push",
        "application/json",
        gzip(loki.to_string().as_bytes()),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    s.idle().await;
    let (_, page) = s.get(&healthy, "/v1/logs?limit=1").await;
    assert_eq!(page["total"], 400, "{page}");
}
