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
/// server's peak memory grows by less than 96 MiB (one conversion holds
/// at most 40 MiB; a full-suite run beside other tests' servers measured
/// more than 64); a healthy tenant's
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
        attacks.push(("/otlp/v1/logs", gzip(otlp.to_string().as_bytes()), "× its body"));
        // Labels of 64 KiB are over what a stream's labels may take.
        let refusal = if size > 64_000 { "labels take" } else { "× its body" };
        attacks.push(("/loki/api/v1/push", gzip(loki.to_string().as_bytes()), refusal));
    }
    assert!(attacks.iter().all(|(_, b, _)| b.len() < 4096));

    let before = peak_rss(&s);
    for (path, body, refusal) in attacks {
        let (status, err) = post(&s, &attacker, path, "application/json", body).await;
        let expected = if refusal == "labels take" {
            (400, json!("invalid_body"))
        } else {
            (413, json!("payload_too_large"))
        };
        assert_eq!((status, err["error"]["code"].clone()), expected, "{path}: {err}");
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(refusal), "{path}: {message}");
    }
    let grown = peak_rss(&s).saturating_sub(before);
    assert!(grown < 96 << 20, "the server's peak memory grew by {} MiB", grown >> 20);
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

/// A protobuf field: `tag` with the bytes of a message or string.
fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(tag << 3) | 2];
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// What the review after the first bound found (issue 22): records of two
/// bytes of protobuf each (every one became a structure of a hundred bytes
/// before any limit), escapes that make a line six times what was
/// estimated, a record whose body nests a hundred thousand empty values,
/// and the same on Loki's protobuf. Each is refused whole, or the record
/// alone, and the server's peak memory grows by less than 96 MiB (one
/// conversion holds at most 40 MiB; 51 to 68 MiB were measured, the
/// spread being the allocator's and the pipeline's timing; it was 1.75 GB
/// before the conversions were bounded); the OpenTelemetry Collector's default batch with 2.6 KB of Kubernetes
/// attributes (25 MB once converted) is stored whole.
#[tokio::test(flavor = "multi_thread")]
async fn what_a_request_holds_is_bounded_before_it_is_decoded() {
    use loggerhub::ingest::otlp::proto;
    use prost::Message;

    let plans = tempfile::tempdir().expect("tempdir");
    let plans_file = plans.path().join("plans.json");
    let metered = json!({"logs_per_second": 100_000, "bytes_per_second": 1_000_000, "burst_seconds": 1,
        "daily_logs": 1u64 << 40, "daily_bytes": 1u64 << 50, "retention_days": 3650,
        "plugin_cpu_seconds_per_day": 3600, "max_plugins": 10, "max_versions": 5, "dead_letter_cap": 100});
    std::fs::write(&plans_file, json!({"metered": metered}).to_string()).expect("plans");
    let (_d, s) = embedded_with(&["--plans", plans_file.to_str().expect("path")]).await;
    let attacker = s.tenant("decoder").await;
    let mut attacks: Vec<(&str, &str, Vec<u8>)> = Vec::new();
    // 3,000,000 empty log records in one scope: 6 MB of protobuf.
    let records = [0x12, 0x00].repeat(3_000_000);
    let otlp = field(1, &field(2, &records));
    attacks.push(("/otlp/v1/logs", "application/x-protobuf", gzip(&otlp)));
    // The same in OTLP/JSON: `{}` three bytes a record.
    let json = format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        vec!["{}"; 3_000_000].join(",")
    );
    attacks.push(("/otlp/v1/logs", "application/json", gzip(json.as_bytes())));
    // 200 resources of a 15,000-byte attribute of control characters (six
    // bytes each once escaped) over 16 empty records.
    let attribute = field(1, &[field(1, b"padding"), field(2, &field(1, &[1u8; 15_000]))].concat());
    let resource = [field(1, &attribute), field(2, &[0x12, 0x00].repeat(16))].concat();
    let escaped = field(1, &resource).repeat(200);
    attacks.push(("/otlp/v1/logs", "application/x-protobuf", gzip(&escaped)));
    // Loki: 3,000,000 empty entries of one stream, snappy as Promtail sends.
    let stream = [field(1, br#"{app="x"}"#), [0x12, 0x00].repeat(3_000_000)].concat();
    let loki = snap::raw::Encoder::new()
        .compress_vec(&field(1, &stream))
        .expect("snappy");
    attacks.push(("/loki/api/v1/push", "application/x-protobuf", gzip(&loki)));
    assert!(attacks.iter().all(|(_, _, b)| b.len() < 512 * 1024));

    let before = peak_rss(&s);
    let first = attacks[0].clone();
    for (path, content_type, body) in attacks {
        let (status, err) = post(&s, &attacker, path, content_type, body).await;
        assert_eq!(
            (status, &err["error"]["code"]),
            (413, &json!("payload_too_large")),
            "{path} {content_type}: {err}"
        );
    }
    // A refusal is not free: what building the records cost is charged to
    // the tenant's rate, so a tenant of a megabyte a second cannot repeat
    // it at once.
    let frugal = s.tenant_on("frugal", "metered").await;
    let (status, _) = post(&s, &frugal, first.0, first.1, first.2).await;
    assert_eq!(status, 413);
    let small = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "hi"}}]}]}]});
    let (status, err) = post(
        &s,
        &frugal,
        "/otlp/v1/logs",
        "application/json",
        gzip(small.to_string().as_bytes()),
    )
    .await;
    assert_eq!((status, &err["error"]["code"]), (429, &json!("rate_limited")), "{err}");
    // One record whose body is a list of 100,000 empty values: refused
    // alone, undecoded; its neighbour is stored.
    let wide = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"kvlistValue": {"values": vec![json!({}); 100_000]}}},
        {"body": {"stringValue": "next door"}},
    ]}]}]});
    let (status, answer) = post(
        &s,
        &attacker,
        "/otlp/v1/logs",
        "application/json",
        gzip(wide.to_string().as_bytes()),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partialSuccess"]["rejectedLogRecords"], "1", "{answer}");
    let reason = answer["partialSuccess"]["errorMessage"].as_str().unwrap_or_default();
    assert!(reason.contains("record 1") && reason.contains("4096"), "{reason}");
    let grown = peak_rss(&s).saturating_sub(before);
    eprintln!("peak memory grew by {} MiB", grown >> 20);
    assert!(grown < 96 << 20, "the server's peak memory grew by {} MiB", grown >> 20);

    // The Collector's default batch: 8,192 short records under 2.6 KB of
    // Kubernetes resource attributes (pod labels included).
    let kv = |k: &str, v: String| proto::KeyValue {
        key: k.into(),
        value: Some(proto::AnyValue {
            value: Some(proto::Any::StringValue(v)),
        }),
    };
    let mut attributes = vec![kv("service.name", "checkout".into())];
    for (i, key) in [
        "k8s.pod.name",
        "k8s.namespace.name",
        "k8s.node.name",
        "k8s.deployment.name",
    ]
    .iter()
    .enumerate()
    {
        attributes.push(kv(key, format!("checkout-7d9f8b6c5-{i}x2lq")));
    }
    for i in 0..40 {
        attributes.push(kv(&format!("k8s.pod.label.app.kubernetes.io/part-{i}"), "x".repeat(30)));
    }
    let collector = proto::ExportLogsServiceRequest {
        resource_logs: vec![proto::ResourceLogs {
            resource: Some(proto::Resource { attributes }),
            scope_logs: vec![proto::ScopeLogs {
                scope: None,
                log_records: (0..8192)
                    .map(|i| proto::LogRecord {
                        severity_text: "INFO".into(),
                        body: Some(proto::AnyValue {
                            value: Some(proto::Any::StringValue(format!("GET /cart 200 {i}"))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
            }],
        }],
    };
    let shared: usize = collector.resource_logs[0]
        .resource
        .as_ref()
        .map_or(0, |r| r.attributes.iter().map(|a| a.encoded_len()).sum());
    assert!(shared > 2500, "{shared} bytes of resource attributes");
    let healthy = s.tenant("kubernetes").await;
    let (status, answer) = post(
        &s,
        &healthy,
        "/otlp/v1/logs",
        "application/x-protobuf",
        gzip(&collector.encode_to_vec()),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    s.idle().await;
    let (_, page) = s.get(&healthy, "/v1/logs?limit=1").await;
    assert_eq!(page["total"], 8192, "{page}");
}

/// This machine's address on a network interface (not loopback): a
/// stranger's view of a server that listens on every address.
fn outside_address() -> String {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .expect("hostname -I");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| !ip.is_loopback()))
        .expect("a non-loopback IPv4 address on this machine")
        .to_string()
}

/// Without an operator token, `/metrics` (every tenant's name in its
/// labels) and `/ready`'s detail answer only callers on the server's own
/// machine: not a stranger on the network, nor one a proxy forwards.
#[tokio::test(flavor = "multi_thread")]
async fn operator_surfaces_are_closed_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&dir.path().join("data"), &["--listen", "0.0.0.0:0"]).await;
    let key = s.tenant("secretive").await;
    let port = s.url.rsplit(':').next().expect("port").to_string();
    let outside = format!("http://{}:{port}", outside_address());
    let local = format!("http://127.0.0.1:{port}");
    // Each header by which a proxy on this machine names its client (or
    // itself) closes the door.
    for (header, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
        ("x-client-ip", "203.0.113.9"),
        ("true-client-ip", "203.0.113.9"),
        ("via", "1.1 proxy"),
    ] {
        let r = s
            .http
            .get(format!("{local}/metrics"))
            .header(header, value)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 401, "{header} through a local proxy");
    }
    let get = |base: &str, path: &str, forwarded: bool| {
        let mut r = s.http.get(format!("{base}{path}"));
        if forwarded {
            r = r.header("x-forwarded-for", "203.0.113.9");
        }
        async move {
            let r = r.send().await.expect("get");
            (r.status().as_u16(), r.text().await.expect("text"))
        }
    };
    for (base, forwarded) in [(outside.as_str(), false), (local.as_str(), true)] {
        let (status, body) = get(base, "/metrics", forwarded).await;
        assert_eq!(status, 401, "{base} forwarded={forwarded}: {body}");
        assert!(
            body.contains("invalid_operator_token") && !body.contains("secretive"),
            "{body}"
        );
        let (status, body) = get(base, "/ready", forwarded).await;
        assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#), "{base}");
        // The tenant's own door is open from anywhere.
        let r = s
            .http
            .get(format!("{base}/v1/logs"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("logs");
        assert_eq!(r.status(), 200);
    }
    let (status, body) = get(&local, "/metrics", false).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("loggerhub_queue_depth"));
    let (_, body) = get(&local, "/ready", false).await;
    assert!(body.contains("\"backends\""), "{body}");

    // On a listener of every IPv6 and IPv4 address, a caller on
    // 127.0.0.1 arrives as ::ffff:127.0.0.1, and is still this machine.
    let dual = tempfile::tempdir().expect("tempdir");
    let s6 = Server::start(&dual.path().join("data"), &["--listen", "[::]:0"]).await;
    let port = s6.url.rsplit(':').next().expect("port").to_string();
    let r = s6
        .http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200, "127.0.0.1 on a [::] listener");
}

/// Strings a plugin hands the host are cut, and its output is rate-limited
/// per tenant: a refusal of a megabyte becomes a reason of a kilobyte in
/// the dead letter, the plugin list and the log; a plugin that prints in a
/// loop writes its tenant's budget of lines to the log, not the disk full.
#[tokio::test(flavor = "multi_thread")]
async fn what_a_plugin_hands_the_host_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("server.log");
    let s = Server::start_logging(&dir.path().join("data"), &[], &log).await;
    let wasm = std::fs::read(loggerhub::runtime::builtin::HOSTILE_ENRICHER_PATH).expect("fixture built by build.rs");
    let setup = |tenant: &'static str, config: Value| {
        let (s, wasm) = (&s, wasm.clone());
        async move {
            let key = s.tenant(tenant).await;
            let (status, body) = s.put_plugin(&key, "enricher", "hostile", wasm).await;
            assert_eq!(status, 201, "{body}");
            let pipeline = json!({"enrichers": ["hostile"], "config": {"hostile": config}});
            let (status, body) = s.put_pipeline(&key, &pipeline).await;
            assert_eq!(status, 200, "{body}");
            key
        }
    };
    let refuser = setup(
        "refuser",
        json!({"mode": "refuse", "every": "true", "bytes": "1048576"}),
    )
    .await;
    let spammer = setup("spammer", json!({"mode": "spam", "every": "true", "lines": "20000"})).await;

    let started = std::time::Instant::now();
    for key in [&refuser, &spammer] {
        let (status, body) = s
            .post_logs(key, "application/json", json!({"message": "hello"}).to_string())
            .await;
        assert_eq!(status, 202, "{body}");
    }
    s.idle().await;
    let elapsed = started.elapsed().as_secs_f64();

    let (_, letters) = s.get(&refuser, "/v1/dead-letters").await;
    let reason = letters["dead_letters"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        // The message cut to 1 KiB, with the plugin's name and code.
        !reason.is_empty() && reason.len() <= loggerhub::runtime::MAX_ERROR_MESSAGE + 256,
        "a reason of {} bytes: {letters}",
        reason.len()
    );
    let text = std::fs::read_to_string(&log).expect("log");
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 16 * 1024, "a log line of {longest} bytes");

    // 40,000 lines printed; the tenant's budget is a burst of 500 and 50 a
    // second, and the drop is said.
    let printed = text.lines().filter(|l| l.contains("spam ")).count();
    let budget = 500.0 + 50.0 * (elapsed + 1.0);
    assert!((printed as f64) <= budget, "{printed} lines logged, budget {budget:.0}");
    assert!(printed >= 400, "the budget's lines were not logged: {printed}");
    assert!(text.contains("plugin log lines dropped"), "the drop is not said");
}

/// A way in: how the test sends one request through it.
struct Door {
    method: &'static str,
    path: String,
    content_type: &'static str,
    body: &'static str,
    ok: u16,
}

/// The tenant operations of the OpenAPI document that take a body and are
/// not ways in (they change plugins, not records).
const NOT_WAYS_IN: &[(&str, &str)] = &[
    ("put", "/v1/plugins/{stage}/{name}"),
    ("post", "/v1/plugins/{stage}/{name}/rollback"),
    ("put", "/v1/pipeline"),
    // A read that takes its question as a body.
    ("post", "/v1/aggregate"),
    // A tenant's own settings, no records.
    ("put", "/v1/saved-searches/{name}"),
];

/// How each way in of the OpenAPI document is sent; `letter` is a dead
/// letter of the tenant's.
fn door(method: &str, path: &str, letter: &str) -> Option<Door> {
    let (content_type, body, ok) = match path {
        "/v1/logs" => ("application/json", r#"{"message":"through the gate"}"#, 202),
        "/_bulk" | "/{index}/_bulk" => (
            "application/x-ndjson",
            "{\"index\":{\"_index\":\"gate\"}}\n{\"message\":\"through the gate\"}\n",
            200,
        ),
        "/otlp/v1/logs" => (
            "application/json",
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"through the gate"}}]}]}]}"#,
            200,
        ),
        "/loki/api/v1/push" => (
            "application/json",
            r#"{"streams":[{"stream":{"app":"gate"},"values":[["0","through the gate"]]}]}"#,
            204,
        ),
        "/v1/dead-letters/{batch_id}/replay" => ("application/json", "", 202),
        _ => return None,
    };
    let method = if method == "put" { "PUT" } else { "POST" };
    let path = path.replace("{index}", "gate").replace("{batch_id}", letter);
    Some(Door {
        method,
        path,
        content_type,
        body,
        ok,
    })
}

/// The tenant's oldest dead letter, once there is one.
async fn a_letter(s: &Server, key: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, page) = s.get(key, "/v1/dead-letters").await;
        if let Some(id) = page["dead_letters"][0]["batch_id"].as_str() {
            return id.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Makes a dead letter: a text line stamped before the plan keeps logs.
async fn dead_letter(s: &Server, key: &str) -> String {
    let (status, body) = s
        .post_logs(key, "text/plain", "1901-01-01 00:00:00 ERROR older than the plan keeps")
        .await;
    assert_eq!(status, 202, "{body}");
    a_letter(s, key).await
}

async fn logs_today(s: &Server, key: &str) -> u64 {
    s.get(key, "/v1/usage").await.1["today"]["logs"].as_u64().unwrap_or(0)
}

/// One gate for every way in (DESIGN §6): every operation of the OpenAPI
/// document that queues records — listed from the document, so a new route
/// cannot be forgotten — refuses a suspended tenant (403) and one whose day
/// is used up (429), and counts what it takes in the tenant's usage; so
/// does the syslog listener.
async fn every_way_in_passes_the_gate(distributed: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let plans = dir.path().join("plans.json");
    let tiny = json!({"logs_per_second": 100_000, "bytes_per_second": 100_000_000, "burst_seconds": 10,
        "daily_logs": 1, "daily_bytes": 1u64 << 40, "retention_days": 3650,
        "plugin_cpu_seconds_per_day": 3600, "max_plugins": 10, "max_versions": 5, "dead_letter_cap": 100});
    std::fs::write(&plans, json!({ "tiny": tiny }).to_string()).expect("plans");
    let syslog = crate::common::private::free_port();
    let syslog_addr = format!("127.0.0.1:{syslog}");
    let flags = [
        "--plans",
        plans.to_str().expect("path"),
        "--syslog-listen",
        &syslog_addr,
    ];
    let (_d, s, run) = if distributed {
        crate::common::distributed_with("gate", &flags).await
    } else {
        let (d, s) = embedded_with(&flags).await;
        (d, s, String::new())
    };
    let active = s.tenant(&format!("active{run}")).await;
    let paused_slug = format!("paused{run}");
    let paused = s.tenant(&paused_slug).await;
    let spent = s.tenant_on(&format!("spent{run}"), "tiny").await;

    // Each has a dead letter to replay; then `paused` is suspended, and
    // `spent` uses up its day (the request that crosses the line is taken).
    let letters = [
        dead_letter(&s, &active).await,
        dead_letter(&s, &paused).await,
        dead_letter(&s, &spent).await,
    ];
    let (status, _) = s
        .admin(
            reqwest::Method::PATCH,
            &format!("/v1/admin/tenants/{paused_slug}"),
            Some(json!({"state": "suspended"})),
        )
        .await;
    assert_eq!(status, 200);
    // The key cache holds a tenant's state for up to 5 s.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;

    let (_, doc) = s.get(&active, "/openapi.json").await;
    let mut doors = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let tenant_key = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("tenant_key").is_some()));
            if !tenant_key || !["post", "put"].contains(&method.as_str()) {
                continue;
            }
            if NOT_WAYS_IN.contains(&(method.as_str(), path.as_str())) {
                continue;
            }
            doors += 1;
            let send = |key: &str, letter: &str| {
                let d = door(method, path, letter)
                    .unwrap_or_else(|| panic!("{method} {path} is new: add it to `door` (a way in) or NOT_WAYS_IN"));
                let r = s
                    .http
                    .request(d.method.parse().expect("method"), s.url(&d.path))
                    .bearer_auth(key)
                    .header("content-type", d.content_type)
                    .body(d.body);
                async move {
                    let r = r.send().await.expect("send");
                    let status = r.status().as_u16();
                    (d.ok, status, r.json::<Value>().await.unwrap_or(Value::Null))
                }
            };
            let what = format!("{method} {path}");
            let (_, status, body) = send(&paused, &letters[1]).await;
            assert_eq!(
                (status, &body["error"]["code"]),
                (403, &json!("tenant_suspended")),
                "{what}, suspended: {body}"
            );
            let (_, status, body) = send(&spent, &letters[2]).await;
            assert_eq!(
                (status, &body["error"]["code"]),
                (429, &json!("daily_quota_exceeded")),
                "{what}, day used up: {body}"
            );
            let before = logs_today(&s, &active).await;
            let (ok, status, body) = send(&active, &letters[0]).await;
            assert_eq!(status, ok, "{what}: {body}");
            assert!(
                logs_today(&s, &active).await > before,
                "{what} took records without counting them"
            );
        }
    }
    // /v1/logs, OTLP, Loki, replay, and bulk with and without an index,
    // by POST and by PUT.
    assert_eq!(doors, 8, "the ways in of the OpenAPI document");
    // The refused tenants' letters stay for later.
    for (key, letter) in [(&paused, &letters[1]), (&spent, &letters[2])] {
        assert_eq!(a_letter(&s, key).await, *letter);
    }

    // Syslog, keyed: the same gate.
    for (key, reason) in [(&paused, "suspended"), (&spent, "limited")] {
        let before = s
            .metric(&format!("loggerhub_syslog_dropped_total{{reason=\"{reason}\"}}"))
            .await;
        let line = format!("<14>1 - host app - - [loggerhub@32473 key=\"{key}\"] through the gate\n");
        let mut tcp = std::net::TcpStream::connect(&syslog_addr).expect("syslog");
        std::io::Write::write_all(&mut tcp, format!("{} {line}", line.len()).as_bytes()).expect("send");
        drop(tcp);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while s
            .metric(&format!("loggerhub_syslog_dropped_total{{reason=\"{reason}\"}}"))
            .await
            <= before
        {
            assert!(
                std::time::Instant::now() < deadline,
                "syslog took a {reason} tenant's message"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_in_passes_the_gate_embedded() {
    every_way_in_passes_the_gate(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_in_passes_the_gate_distributed() {
    every_way_in_passes_the_gate(true).await;
}

/// A suspended tenant's queued entries wait: its plugins do not run and
/// nothing of it is stored until the operator resumes it; then they flow.
/// (Its plugin spins out its 50 ms of CPU on every call, so its backlog
/// lasts long enough to be caught.)
async fn a_suspended_tenants_entries_wait(distributed: bool) {
    use std::time::Duration;
    let (_d, s, run) = if distributed {
        crate::common::distributed_with("suspend", &[]).await
    } else {
        let (d, s) = embedded_with(&[]).await;
        (d, s, String::new())
    };
    let slug = format!("sleeper{run}");
    let key = s.tenant(&slug).await;
    let wasm = std::fs::read(loggerhub::runtime::builtin::HOSTILE_ENRICHER_PATH).expect("fixture built by build.rs");
    let (status, body) = s.put_plugin(&key, "enricher", "hostile", wasm).await;
    assert_eq!(status, 201, "{body}");
    let pipeline = json!({"enrichers": ["hostile"], "config": {"hostile": {"mode": "loop"}}, "limits": {"cpu_ms": 50}});
    let (status, body) = s.put_pipeline(&key, &pipeline).await;
    assert_eq!(status, 200, "{body}");
    for i in 0..30 {
        let body = format!(
            "{}\n{}",
            json!({"message": format!("poison {i}")}),
            json!({"message": format!("fine {i}")})
        );
        let (status, _) = s.post_logs(&key, "application/x-ndjson", body).await;
        assert_eq!(status, 202);
    }
    let (status, _) = s
        .admin(
            reqwest::Method::PATCH,
            &format!("/v1/admin/tenants/{slug}"),
            Some(json!({"state": "suspended"})),
        )
        .await;
    assert_eq!(status, 200);
    let calls = || async {
        let (_, list) = s.get(&key, "/v1/plugins").await;
        list["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .find(|p| p["name"] == "hostile")
            .map(|p| p["figures"]["calls"].as_u64().unwrap_or(0))
            .expect("listed")
    };
    // The processor sees the state within its 2 s cache, and the turn
    // running then ends within its budget.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (held_calls, held_depth) = (calls().await, s.metric("loggerhub_queue_depth").await);
    let (_, page) = s.get(&key, "/v1/logs?limit=1").await;
    let held_total = page["total"].clone();
    assert!(held_depth > 0.0, "the backlog was gone before the suspension took hold");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(calls().await, held_calls, "its plugin ran while it was suspended");
    assert_eq!(
        s.metric("loggerhub_queue_depth").await,
        held_depth,
        "its entries were taken"
    );
    assert_eq!(
        s.get(&key, "/v1/logs?limit=1").await.1["total"],
        held_total,
        "it stored while suspended"
    );

    let (status, _) = s
        .admin(
            reqwest::Method::PATCH,
            &format!("/v1/admin/tenants/{slug}"),
            Some(json!({"state": "active"})),
        )
        .await;
    assert_eq!(status, 200);
    s.idle().await;
    let (_, page) = s.get(&key, "/v1/logs?limit=1").await;
    assert_eq!(page["total"], 30, "every fine record, once resumed: {page}");
    assert!(calls().await > held_calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_tenants_entries_wait_embedded() {
    a_suspended_tenants_entries_wait(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_tenants_entries_wait_distributed() {
    a_suspended_tenants_entries_wait(true).await;
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: &str) -> Option<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(format!("{from}:0").parse().ok()?).ok()?;
    socket.connect(to.parse().ok()?).await.ok()
}

/// An octet-counted RFC 5424 message, with `key` in its structured data.
fn syslog_frame(key: Option<&str>, message: &str) -> String {
    let sd = key.map_or("-".to_string(), |k| format!("[loggerhub@32473 key=\"{k}\"]"));
    let line = format!("<14>1 - host app - - {sd} {message}");
    format!("{} {line}", line.len())
}

async fn send_syslog(from: &str, to: &str, frame: &str) {
    use tokio::io::AsyncWriteExt;
    let mut tcp = connect_from(from, to).await.expect("connect");
    tcp.write_all(frame.as_bytes()).await.expect("send");
    tcp.shutdown().await.expect("close");
}

async fn stored(s: &Server, key: &str, text: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, page) = s
            .get(key, &format!("/v1/search?q=%22{}%22", text.replace(' ', "%20")))
            .await;
        if page["total"].as_u64() > Some(0) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A stranger holding 1,200 idle connections, from twenty addresses,
/// does not keep another tenant's syslog out: unproven connections make
/// room for new ones, one address holds at most 64. A tenant's own
/// address takes only its keys, or only its listed senders.
#[tokio::test(flavor = "multi_thread")]
async fn syslog_listeners_hold_against_idle_crowds() {
    let free = crate::common::private::free_port;
    let (shared, own, listed) = (free(), free(), free());
    let shared = format!("127.0.0.1:{shared}");
    let own = format!("127.0.0.1:{own}");
    let listed = format!("127.0.0.1:{listed}");
    let tenants = format!("owner={own};key,lister={listed};from=127.0.0.5");
    let (_d, s) = embedded_with(&["--syslog-listen", &shared, "--syslog-tenant", &tenants]).await;
    let healthy = s.tenant("healthy").await;
    let owner = s.tenant("owner").await;
    let lister = s.tenant("lister").await;

    // The crowd: 60 idle connections from each of 20 addresses, more
    // than the shared address has permits.
    let mut crowd = Vec::new();
    for a in 2..22 {
        for _ in 0..60 {
            if let Some(c) = connect_from(&format!("127.0.0.{a}"), &shared).await {
                crowd.push(c);
            }
        }
    }
    assert!(crowd.len() >= 1100, "the crowd could not connect: {}", crowd.len());
    send_syslog("127.0.0.1", &shared, &syslog_frame(Some(&healthy), "through the crowd")).await;
    assert!(
        stored(&s, &healthy, "through the crowd").await,
        "a crowd kept a tenant's syslog out"
    );

    // One address holds at most 64: the rest are closed at once.
    let mut one: Vec<tokio::net::TcpStream> = Vec::new();
    for _ in 0..100 {
        one.extend(connect_from("127.0.0.30", &shared).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut buf = [0u8; 1];
    let open = one
        .iter()
        .filter(|c| matches!(c.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock))
        .count();
    assert!(open <= 64, "{open} connections held from one address");
    drop((crowd, one));

    // The owner's own address takes its keys only; the lister's, its
    // listed sender only.
    send_syslog("127.0.0.1", &own, &syslog_frame(None, "unkeyed on a keyed address")).await;
    send_syslog(
        "127.0.0.1",
        &own,
        &syslog_frame(Some(&healthy), "another key on an own address"),
    )
    .await;
    send_syslog("127.0.0.1", &own, &syslog_frame(Some(&owner), "the owner keyed")).await;
    assert!(stored(&s, &owner, "the owner keyed").await);
    send_syslog("127.0.0.1", &listed, &syslog_frame(None, "from an unlisted sender")).await;
    send_syslog("127.0.0.5", &listed, &syslog_frame(None, "from the listed sender")).await;
    assert!(stored(&s, &lister, "from the listed sender").await);
    s.idle().await;
    for (key, text) in [
        (&owner, "unkeyed on a keyed address"),
        (&owner, "another key on an own address"),
        (&healthy, "another key on an own address"),
        (&lister, "from an unlisted sender"),
    ] {
        let (_, page) = s
            .get(key, &format!("/v1/search?q=%22{}%22", text.replace(' ', "%20")))
            .await;
        assert_eq!(page["total"], 0, "{text}: {page}");
    }
    assert!(s.metric("loggerhub_syslog_dropped_total{reason=\"sender\"}").await >= 1.0);
}

/// Plugin compiles are queued per tenant: a tenant that uploads six
/// plugins at once has two in flight (one compiling, one waiting; the
/// others get 429 before their bodies are read) and holds one place in
/// the process's compile queue, so another tenant's upload, sent just
/// after, is not compiled last. On the distributed backends too, where
/// the processors share the plugin store.
async fn one_tenants_uploads_do_not_hold_anothers(distributed: bool) {
    let (_d, s, run) = if distributed {
        crate::common::distributed_with("uploads", &[]).await
    } else {
        let (d, s) = embedded_with(&[]).await;
        (d, s, String::new())
    };
    let busy = s.tenant(&format!("uploader{run}")).await;
    let other = s.tenant(&format!("other{run}")).await;
    let wasm = std::fs::read(loggerhub::runtime::builtin::PII_REDACTOR_PATH).expect("example plugin built by build.rs");
    let done = std::sync::Mutex::new(Vec::new());
    let upload = |key: String, name: String| {
        let (s, wasm, done) = (&s, wasm.clone(), &done);
        async move {
            // 429 comes before the body is read: the client may see the
            // connection reset while it still sends (CI saw it once), which
            // is the same refusal.
            let (status, body) = match s.try_put_plugin(&key, "enricher", &name, wasm).await {
                Ok(answer) => answer,
                Err(e) if name != "other" => (
                    429,
                    json!({"error": {"code": "too_many_uploads", "reset": e.to_string()}}),
                ),
                Err(e) => panic!("{name}: {e}"),
            };
            match status {
                201 => done.lock().expect("lock").push((name, std::time::Instant::now())),
                429 => assert_eq!(body["error"]["code"], "too_many_uploads", "{body}"),
                _ => panic!("{name}: {status} {body}"),
            }
            status
        }
    };
    let many = futures::future::join_all((0..6).map(|i| upload(busy.clone(), format!("busy{i}"))));
    let one = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let sent = std::time::Instant::now();
        (sent, upload(other.clone(), "other".into()).await)
    };
    let (statuses, (sent, other_status)) = tokio::join!(many, one);
    assert_eq!(other_status, 201);
    let refused = statuses.iter().filter(|st| **st == 429).count();
    assert_eq!(refused, 4, "{statuses:?}");
    // While the other tenant's upload waited, at most one of the busy
    // tenant's was compiled: the one compiling when it came (the first,
    // or, when that one was done within the 100 ms, the second).
    let order = done.into_inner().expect("order");
    let finished = order
        .iter()
        .find(|(n, _)| n == "other")
        .map(|(_, at)| *at)
        .expect("done");
    let ahead: Vec<&str> = order
        .iter()
        .filter(|(n, at)| n != "other" && *at > sent && *at < finished)
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        ahead.len() <= 1,
        "the other tenant's upload waited for {} of the busy tenant's: {ahead:?} (all: {order:?})",
        ahead.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_tenants_uploads_do_not_hold_anothers_embedded() {
    one_tenants_uploads_do_not_hold_anothers(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_tenants_uploads_do_not_hold_anothers_distributed() {
    one_tenants_uploads_do_not_hold_anothers(true).await;
}

/// The plan counts what is stored: records a tenant's plugins make are
/// charged when they are made. Usage shows what was sent and what was
/// stored apart; a pipeline that doubles its records uses the day up
/// twice as fast, and past its rate its lane waits (nothing is lost).
async fn what_plugins_make_counts_against_the_plan(distributed: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let plans = dir.path().join("plans.json");
    let plan = |lps: u64, daily: u64| {
        json!({"logs_per_second": lps, "bytes_per_second": 100_000_000, "burst_seconds": 1,
            "daily_logs": daily, "daily_bytes": 1u64 << 40, "retention_days": 3650,
            "plugin_cpu_seconds_per_day": 3600, "max_plugins": 10, "max_versions": 5, "dead_letter_cap": 100})
    };
    std::fs::write(
        &plans,
        json!({"day": plan(100_000, 100), "slow": plan(100, 1_000_000)}).to_string(),
    )
    .expect("plans");
    let flags = ["--plans", plans.to_str().expect("path")];
    let (_d, s, run) = if distributed {
        crate::common::distributed_with("stored", &flags).await
    } else {
        let (d, s) = embedded_with(&flags).await;
        (d, s, String::new())
    };
    let run = &run;
    let wasm = std::fs::read(loggerhub::runtime::builtin::HOSTILE_ENRICHER_PATH).expect("fixture built by build.rs");
    // An enricher that returns every batch twice over (each record
    // copied: the output bound allows twice the input).
    let doubler = |slug: &'static str, plan: &'static str| {
        let (s, wasm) = (&s, wasm.clone());
        async move {
            let key = s.tenant_on(&format!("{slug}{run}"), plan).await;
            let (status, body) = s.put_plugin(&key, "enricher", "double", wasm).await;
            assert_eq!(status, 201, "{body}");
            let pipeline = json!({"enrichers": ["double"], "config": {"double": {"mode": "double", "every": "true"}}});
            let (status, body) = s.put_pipeline(&key, &pipeline).await;
            assert_eq!(status, 200, "{body}");
            key
        }
    };
    let day = doubler("dayuser", "day").await;
    let batch = |n: usize, tag: &str| {
        (0..n)
            .map(|i| json!({"message": format!("{tag} {i}")}).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (status, body) = s.post_logs(&day, "application/x-ndjson", batch(60, "first")).await;
    assert_eq!(status, 202, "{body}");
    s.idle().await;
    let (_, usage) = s.get(&day, "/v1/usage").await;
    assert_eq!(
        (&usage["today"]["logs"], &usage["today"]["stored_logs"]),
        (&json!(60), &json!(120)),
        "{usage}"
    );
    assert!(
        usage["exhausted"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("daily_logs"))),
        "{usage}"
    );
    // 60 sent of 100, but 120 stored: the day is used up.
    let (status, err) = s.post_logs(&day, "application/x-ndjson", batch(1, "late")).await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (429, &json!("daily_quota_exceeded")),
        "{err}"
    );

    // 100 a second, a burst of 100: 300 records sent make 600 stored,
    // whose debt the lane waits out turn by turn, and ingest refuses the
    // tenant while it is in debt (so its lane cannot fill the queue every
    // tenant shares); every record sent arrives.
    let slow = doubler("slowuser", "slow").await;
    let mut refused = 0;
    for i in 0..3 {
        loop {
            let r = s
                .http
                .post(s.url("/v1/logs"))
                .bearer_auth(&slow)
                .header("content-type", "application/x-ndjson")
                .body(batch(100, &format!("slow{i}")))
                .send()
                .await
                .expect("post");
            let status = r.status().as_u16();
            if status == 202 {
                break;
            }
            let wait: f64 = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(1.0);
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (status, &body["error"]["code"]),
                (429, &json!("rate_limited")),
                "{body}"
            );
            refused += 1;
            assert!(refused < 20, "never let in again: {body}");
            tokio::time::sleep(std::time::Duration::from_secs_f64(wait.max(0.2))).await;
        }
        if i < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
    }
    s.idle().await;
    let (_, page) = s.get(&slow, "/v1/logs?limit=1").await;
    assert_eq!(page["total"], 600, "{page}");
    // The second batch's 200 stored records left a debt of about 190 when
    // the third came 1.1 s later: the sender was refused, which its
    // ingest rate alone (100 sent a second) would not have done.
    assert!(refused > 0, "the third batch was let in while the pipeline was in debt");
    assert!(
        s.metric(&format!(
            "loggerhub_tenant_refused_total{{tenant=\"slowuser{run}\",reason=\"stored_rate\"}}"
        ))
        .await
            > 0.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_plugins_make_counts_against_the_plan_embedded() {
    what_plugins_make_counts_against_the_plan(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_plugins_make_counts_against_the_plan_distributed() {
    what_plugins_make_counts_against_the_plan(true).await;
}

/// A plugin upload is at most 64 MiB: one byte more is refused whole,
/// before anything is compiled.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_uploads_are_bounded() {
    let (_d, s) = embedded_with(&[]).await;
    let key = s.tenant("bulky").await;
    let (status, body) = s
        .put_plugin(
            &key,
            "enricher",
            "huge",
            vec![0u8; loggerhub::plugins::MAX_PLUGIN_BYTES + 1],
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (413, &json!("payload_too_large")),
        "{body}"
    );
    assert_eq!(
        loggerhub::plugins::MAX_PLUGIN_BYTES,
        64 << 20,
        "docs/API.md says 64 MiB"
    );
    let (_, list) = s.get(&key, "/v1/plugins").await;
    assert!(!list.to_string().contains("huge"), "{list}");
}
