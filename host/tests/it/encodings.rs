//! Compressed ingest bodies (issue 12, point 2): `Content-Encoding: gzip`,
//! `zstd` and `deflate` are inflated before the body is checked, with the
//! body limit applied to what they inflate to. A decompression bomb gets
//! 413 without the server's memory growing past the limit; an encoding
//! LoggerHub does not speak gets 415, a body that does not decode 400.

use std::io::Write;

use serde_json::json;

use crate::common::{Server, ndjson};

const LIMIT: usize = 1 << 20;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("deflate");
    e.finish().expect("deflate")
}

async fn post(s: &Server, key: &str, encoding: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let r = s
        .http
        .post(s.url("/v1/logs"))
        .bearer_auth(key)
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", encoding)
        .body(body)
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

/// The server's peak resident memory, in KiB.
fn peak_rss_kib(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_bodies_and_bombs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&dir.path().join("data"), &["--max-body-bytes", &LIMIT.to_string()]).await;
    let key = s.tenant("squeezed").await;

    let mut sent = 0;
    for (encoding, body) in [
        ("gzip", gzip(ndjson("viagzip", 50, "api").as_bytes())),
        (
            "zstd",
            zstd::encode_all(ndjson("viazstd", 50, "api").as_bytes(), 3).expect("zstd"),
        ),
        ("deflate", deflate(ndjson("viadeflate", 50, "api").as_bytes())),
    ] {
        let (status, body) = post(&s, &key, encoding, body).await;
        assert_eq!((status, &body["accepted"]), (202, &json!(50)), "{encoding}: {body}");
        sent += 50;
    }
    s.drained(sent).await;
    for word in ["viagzip", "viazstd", "viadeflate"] {
        let (_, found) = s.get(&key, &format!("/v1/search?q={word}")).await;
        assert_eq!(found["total"], 50, "{word}: {found}");
    }

    // A bomb: 64 MiB of one repeated line, a few hundred KiB gzipped —
    // under the limit on the wire, 64 times over it inflated.
    let line = format!("{}\n", json!({"message": "x"}));
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = line.repeat((1 << 20) / line.len());
    for _ in 0..64 {
        e.write_all(chunk.as_bytes()).expect("gzip");
    }
    let bomb = e.finish().expect("gzip");
    assert!(bomb.len() < LIMIT, "the bomb is {} bytes on the wire", bomb.len());
    let before = peak_rss_kib(&s);
    for _ in 0..3 {
        let (status, err) = post(&s, &key, "gzip", bomb.clone()).await;
        assert_eq!(
            (status, &err["error"]["code"]),
            (413, &json!("payload_too_large")),
            "{err}"
        );
    }
    let grew = peak_rss_kib(&s).saturating_sub(before);
    assert!(
        grew < 64 * 1024,
        "the server's peak memory grew by {grew} KiB on a bomb"
    );

    // Unknown, chained and broken encodings.
    let body = gzip(b"{\"message\":\"m\"}");
    for (encoding, status, code) in [
        ("br", 415, "unsupported_encoding"),
        ("gzip, zstd", 415, "unsupported_encoding"),
        ("zstd", 400, "invalid_body"),
    ] {
        let (got, err) = post(&s, &key, encoding, body.clone()).await;
        assert_eq!(
            (got, err["error"]["code"].as_str()),
            (status, Some(code)),
            "{encoding}: {err}"
        );
    }
    let (_, stats) = s.get(&key, "/v1/stats").await;
    assert_eq!(stats["total"], sent, "a refused body was stored: {stats}");
}

/// What shippers send as JSON (issue 12, point 1, the JSON part): a
/// Docker/Fluent Bit record's text under `log`, ECS's nested level and
/// service, a syslog severity number. Each is taken as the tenant's JSON
/// parser reads it.
#[tokio::test(flavor = "multi_thread")]
async fn shipper_json_field_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&dir.path().join("data"), &[]).await;
    let key = s.tenant("shipped").await;
    let body = [
        json!({"log": "docker line one\n", "stream": "stdout", "time": "2025-10-10T12:26:36.5Z"}),
        json!({"@timestamp": "2025-10-10T12:26:37Z", "log": {"level": "warn"}, "service": {"name": "ecs-api"}, "message": "ecs line two"}),
        json!({"msg": "syslog line three", "severity": 3, "service.name": "otel-svc"}),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect::<Vec<_>>()
    .join("\n");
    let (status, resp) = s.post_logs(&key, "application/x-ndjson", body).await;
    assert_eq!((status, &resp["accepted"]), (202, &json!(3)), "{resp}");
    s.drained(3).await;
    let (_, page) = s.get(&key, "/v1/logs").await;
    let hits = page["hits"].as_array().expect("hits");
    let find = |m: &str| hits.iter().find(|h| h["message"] == m).cloned().unwrap_or_default();
    let docker = find("docker line one");
    assert_eq!(docker["timestamp"], "2025-10-10T12:26:36.5Z", "{page}");
    let ecs = find("ecs line two");
    assert_eq!(
        (ecs["level"].as_str(), ecs["service"].as_str()),
        (Some("WARN"), Some("ecs-api")),
        "{page}"
    );
    let otel = find("syslog line three");
    assert_eq!(
        (otel["level"].as_str(), otel["service"].as_str()),
        (Some("ERROR"), Some("otel-svc")),
        "{page}"
    );
}

/// Text in the formats of common software, through the built-in text
/// parser in its sandbox: each line keeps its own time (a year-less one
/// placed in the year before arrival, which needs the guest's clock) and
/// its own level.
#[tokio::test(flavor = "multi_thread")]
async fn text_lines_keep_their_own_time_and_level() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&dir.path().join("data"), &[]).await;
    let key = s.tenant("textfmt").await;
    // Ten days ago, as syslog writes it (no year).
    let then = loggerhub::model::now_ns() - 10 * loggerhub::model::DAY_NS;
    let (year, month, day) = loggerhub_codec::time::civil_date(then);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let body = [
        "2025/10/10 12:26:36 [error] 1234#0: *5 open() \"/x\" failed".to_string(),
        format!(
            "<11>{} {day:2} 07:08:09 web-1 billing[77]: card declined",
            MONTHS[(month - 1) as usize]
        ),
        "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok".to_string(),
        "17/06/09 20:10:40 WARN executor.Backend: lost heartbeat".to_string(),
        "2025-10-10 12:26:36,123 - myapp - CRITICAL - disk full".to_string(),
    ]
    .join("\n");
    let (status, resp) = s.post_logs(&key, "text/plain", body).await;
    assert_eq!((status, &resp["accepted"]), (202, &json!(5)), "{resp}");
    s.drained(5).await;
    let (_, page) = s.get(&key, "/v1/logs").await;
    let hits = page["hits"].as_array().expect("hits");
    let find = |needle: &str| {
        hits.iter()
            .find(|h| h["message"].as_str().is_some_and(|m| m.contains(needle)))
            .cloned()
            .unwrap_or_default()
    };
    for (needle, ts, level) in [
        ("open()", "2025-10-10T12:26:36Z".to_string(), "ERROR"),
        (
            "card declined",
            format!("{year:04}-{month:02}-{day:02}T07:08:09Z"),
            "ERROR",
        ),
        ("workerEnv", "2005-12-04T04:47:44Z".to_string(), "INFO"),
        ("heartbeat", "2017-06-09T20:10:40Z".to_string(), "WARN"),
        ("disk full", "2025-10-10T12:26:36.123Z".to_string(), "FATAL"),
    ] {
        let h = find(needle);
        assert_eq!(
            (h["timestamp"].as_str(), h["level"].as_str()),
            (Some(ts.as_str()), Some(level)),
            "{needle}: {page}"
        );
    }
}
