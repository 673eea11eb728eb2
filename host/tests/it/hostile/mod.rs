//! A hostile tenant beside a healthy one (issue 10, DESIGN §6 "Tenant
//! isolation"): every attack is run with the attacker's own key against the
//! real binary, and the test asserts what the attacker got back and that
//! nothing of the victim (nor of the attacker) changed.
//!
//! Requests go over a raw socket: an HTTP library would normalise `..` and
//! `%2e%2e` segments before sending, and a hostile client does not.

mod doors;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Server, distributed_with, embedded_with};
use loggerhub::runtime::builtin;

fn pii_wasm() -> Vec<u8> {
    std::fs::read(builtin::PII_REDACTOR_PATH).expect("example plugin built by build.rs")
}

/// What a hostile tenant puts where a stage, a plugin name or an id goes:
/// `..` plain and encoded once or twice, `/` and `\` encoded once or twice,
/// absolute paths, NUL and other control characters, overlong UTF-8.
const TRAVERSALS: &[&str] = &[
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "..%2F..%2Fvictim%2Fenricher%2Fpii",
    "..%2f..%2fvictim%2fenricher%2fpii",
    "..%252F..%252Fvictim%252Fenricher%252Fpii",
    "%2e%2e%2f%2e%2e%2fvictim",
    "..%5C..%5Cvictim%5Cenricher%5Cpii",
    "..%255C..%255Cvictim",
    "..\\..\\victim",
    "%2Fetc%2Fpasswd",
    "%252Fetc%252Fpasswd",
    "%2F",
    "%5C",
    "C:%5Cvictim",
    "pii%00",
    "%00",
    "pii%00.wasm",
    "pii%0A",
    "pii%0D%0AX-Evil:%201",
    "%C0%AE%C0%AE%C0%AF",
    "%FF",
    "PII",
    "pii.wasm",
    "pii@v1",
];

/// Literal separators: the path gains segments, and still gets a 400.
const EXTRA_SEGMENTS: &[&str] = &["../../victim/enricher/pii", "pii/../../victim", "/etc/passwd"];

/// A server on the embedded backends, over a temp dir.
async fn embedded() -> (tempfile::TempDir, Server) {
    embedded_with(&[]).await
}

/// A server on the distributed backends `make test` started, with a queue
/// and index prefix of its own; `run` makes the test's slugs unique (the
/// stores outlive one server).
async fn distributed(name: &str) -> (tempfile::TempDir, Server, String) {
    distributed_with(name, &[]).await
}

/// Sends one request as written, returns (status, JSON body).
async fn raw(server: &Server, method: &str, path: &str, key: &str, body: &[u8]) -> (u16, Value) {
    let addr = server.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).await.expect("read");
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    // A chunked body: take the JSON object inside it.
    let json = body
        .find('{')
        .and_then(|a| body.rfind('}').map(|b| &body[a..=b]))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under dir").display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

/// What a tenant can see of its plugins: list and pipeline.
async fn plugin_state(s: &Server, key: &str) -> (Value, Value) {
    let (status, list) = s.get(key, "/v1/plugins").await;
    assert_eq!(status, 200, "{list}");
    let (status, pipeline) = s.get(key, "/v1/pipeline").await;
    assert_eq!(status, 200, "{pipeline}");
    (list, pipeline)
}

/// Every plugin route, and the pipeline and dead-letter routes, with every
/// traversal form in every name position: each is a 400 with the JSON
/// error shape, and no tenant's plugins change, on disk or through the API.
async fn names_are_types(s: &Server, run: &str) {
    // Slugs of their own: the distributed stores outlive one server.
    let victim = s.tenant(&format!("victim{run}")).await;
    let attacker = s.tenant(&format!("attacker{run}")).await;
    for key in [&victim, &attacker] {
        assert_eq!(s.put_plugin(key, "enricher", "pii", pii_wasm()).await.0, 201);
        assert_eq!(s.put_plugin(key, "enricher", "pii", pii_wasm()).await.0, 201);
        let (status, body) = s
            .put_pipeline(key, &json!({"enrichers": ["default-enricher", "pii"]}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let before = (plugin_state(s, &victim).await, plugin_state(s, &attacker).await);
    let tree = s.data_dir.join("plugins");
    let files_before = snapshot(&tree);

    let mut sent = 0;
    // A small body: refusals come before the body is read, and the server
    // may close the connection without reading a large one.
    let wasm = b"\0asm".to_vec();
    for bad in TRAVERSALS.iter().chain(EXTRA_SEGMENTS) {
        let paths = [
            ("PUT", format!("/v1/plugins/enricher/{bad}"), &wasm[..]),
            ("PUT", format!("/v1/plugins/{bad}/pii"), &wasm[..]),
            ("DELETE", format!("/v1/plugins/enricher/{bad}"), &b""[..]),
            ("DELETE", format!("/v1/plugins/{bad}/pii"), &b""[..]),
            ("POST", format!("/v1/plugins/enricher/{bad}/rollback"), &b""[..]),
            ("POST", format!("/v1/plugins/{bad}/pii/rollback"), &b""[..]),
            ("POST", format!("/v1/dead-letters/{bad}/replay"), &b""[..]),
        ];
        for (method, path, body) in paths {
            let (status, resp) = raw(s, method, &path, &attacker, body).await;
            assert_eq!(status, 400, "{method} {path}: {resp}");
            let code = resp["error"]["code"].as_str().unwrap_or_default();
            assert!(
                ["invalid_plugin_name", "invalid_stage", "invalid_id", "bad_request"].contains(&code),
                "{method} {path}: {resp}"
            );
            sent += 1;
        }
    }
    // The same names, decoded, in the pipeline JSON: in every plugin slot
    // and as a configuration key.
    let decoded = [
        "..",
        "../victim/enricher/pii",
        "..\\victim",
        "/etc/passwd",
        "pii\u{0}",
        "pii\n",
        "%2e%2e",
        "PII",
        "pii@v1",
        "",
    ];
    for bad in decoded {
        for spec in [
            json!({"enrichers": ["default-enricher", bad]}),
            json!({"json_parser": bad}),
            json!({"text_parser": bad}),
            json!({"router": bad}),
            json!({"enrichers": ["default-enricher", "pii"], "config": {bad: {"redact": "email"}}}),
        ] {
            let body = serde_json::to_vec(&spec).expect("json");
            let (status, resp) = raw(s, "PUT", "/v1/pipeline", &attacker, &body).await;
            assert_eq!(status, 400, "{spec}: {resp}");
            assert_eq!(resp["error"]["code"], "invalid_plugin_name", "{spec}: {resp}");
            sent += 1;
        }
    }
    assert!(sent > 250, "{sent} attacks sent");

    assert_eq!(snapshot(&tree), files_before, "the plugin tree changed");
    let after = (plugin_state(s, &victim).await, plugin_state(s, &attacker).await);
    assert_eq!(after, before, "a tenant's plugins changed");
    let victim_pii = after.0.0["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .find(|p| p["name"] == "pii")
        .cloned()
        .expect("the victim's plugin is still there");
    assert_eq!(victim_pii["versions"], json!([1, 2]));
    assert_eq!(victim_pii["active"], 2);
    // Nothing was written beside the data dir either.
    let parent: Vec<_> = std::fs::read_dir(s.data_dir.parent().expect("parent"))
        .expect("read")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(parent.len(), 1, "files beside the data dir: {parent:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_are_types_embedded() {
    let (_dir, s) = embedded().await;
    names_are_types(&s, "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn names_are_types_distributed() {
    let (_dir, s, run) = distributed("hostile").await;
    names_are_types(&s, &run).await;
}

/// Poison: what no backend can store is a 400 naming the field at ingest,
/// or (when a plugin makes it) a dead letter of that record alone; the
/// records around it are stored, and nothing is retried forever.
async fn poison_is_refused_or_dead_lettered(s: &Server, run: &str) {
    let key = s.tenant(&format!("poison{run}")).await;
    let good = |tag: &str| {
        (0..3)
            .map(|i| json!({"service": "api", "message": format!("{tag} {i}")}).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(s.post_logs(&key, "application/x-ndjson", good("before")).await.0, 202);

    let long: String = (0..10_000).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
    let refused = [
        (json!({"service": long, "message": "x"}), "service"),
        (json!({"service": "a\u{0}b", "message": "x"}), "service"),
        (json!({"service": "api", "message": "a\u{0}b"}), "message"),
        (
            json!({"service": "api", "message": "x", "full_log": "a\u{0}b"}),
            "full_log",
        ),
        (
            json!({"service": "api", "message": "x", "language": "r\u{0}"}),
            "language",
        ),
        (
            json!({"service": "api", "message": "x", "attributes": {"k": "a\u{0}b"}}),
            "attributes.k",
        ),
        (
            json!({"service": "api", "message": "x", "host": "a\u{0}b"}),
            "attributes.host",
        ),
        (
            json!({"service": "api", "message": "x", "timestamp": "1800-01-01T00:00:00Z"}),
            "timestamp",
        ),
        (
            json!({"service": "api", "message": "x", "timestamp": "2250-01-01T00:00:00Z"}),
            "timestamp",
        ),
        (
            json!({"service": "api", "message": "x", "timestamp": "9999-12-31T23:59:59Z"}),
            "timestamp",
        ),
        (
            json!({"service": "api", "message": "x", "timestamp": -9_000_000_000_000i64}),
            "timestamp",
        ),
    ];
    for (record, field) in &refused {
        // Alone, and in the middle of good records: the whole request is
        // refused, naming the line and the field.
        for body in [record.to_string(), format!("{}\n{record}\n{}", good("x"), good("y"))] {
            let (status, resp) = s.post_logs(&key, "application/x-ndjson", body).await;
            assert_eq!(status, 400, "{record}: {resp}");
            let message = resp["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(&format!("`{field}`")), "{record}: {resp}");
        }
    }
    // A 10,000-character service header is refused the same way.
    let r = s
        .http
        .post(s.url("/v1/logs"))
        .bearer_auth(&key)
        .header("content-type", "text/plain")
        .header("x-loggerhub-service", "s".repeat(10_000))
        .body("a line")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);

    // A parser's record with a NUL: that record alone is dead-lettered.
    let (status, _) = s
        .post_logs(&key, "text/plain", "text good 1\ntext bad \u{0} nul\ntext good 2\n")
        .await;
    assert_eq!(status, 202);
    assert_eq!(s.post_logs(&key, "application/x-ndjson", good("after")).await.0, 202);

    let want: Vec<String> = ["before", "after"]
        .iter()
        .flat_map(|t| (0..3).map(move |i| format!("{t} {i}")))
        .chain(["text good 1".to_string(), "text good 2".to_string()])
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let have = s.messages(&key, "/v1/logs?limit=1000").await;
        if want.iter().all(|w| have.contains(w)) {
            assert_eq!(have.len(), want.len(), "{have:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "stored: {have:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, letters) = s.get(&key, "/v1/dead-letters").await;
    assert_eq!(status, 200, "{letters}");
    let letters = letters["dead_letters"].as_array().expect("letters").clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["records"], 1, "{letters:?}");
    let reason = letters[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("`message`") && reason.contains("NUL"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_embedded() {
    let (_dir, s) = embedded().await;
    poison_is_refused_or_dead_lettered(&s, "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_distributed() {
    let (_dir, s, run) = distributed("poison").await;
    poison_is_refused_or_dead_lettered(&s, &run).await;
}

/// Every read is bounded, and every error (the router's 404 and 405
/// included) is the JSON error shape.
async fn bounded_reads(s: &Server, run: &str) {
    let key = s.tenant(&format!("reader{run}")).await;
    // 10,001 logs a second apart: more one-second buckets than a histogram holds.
    let n = loggerhub::model::STATS_MAX_BUCKETS + 1;
    let body: String = (0..n)
        .map(|i| {
            let ts = 1_700_000_000 + i as i64;
            format!(
                "{}\n",
                json!({"service": "api", "message": format!("m{i}"), "timestamp": ts})
            )
        })
        .collect();
    assert_eq!(s.post_logs(&key, "application/x-ndjson", body).await.0, 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, stats) = s.get(&key, "/v1/stats?interval=1d").await;
        if stats["total"] == n {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stats}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let refused = [
        ("/v1/stats?interval=3000000h", "interval"),
        ("/v1/stats?interval=99999999999999999999s", "interval"),
        ("/v1/stats?interval=1s", "buckets"),
        (
            "/v1/stats?interval=30s&from=2000-01-01T00:00:00Z&to=2025-01-01T00:00:00Z",
            "buckets",
        ),
        ("/v1/logs?limit=1001", "limit"),
        ("/v1/logs?limit=99999999999999999999999", "limit"),
        ("/v1/search?q=a&limit=1001", "limit"),
        ("/v1/logs?from=2025-01-01T00:00:00Z&to=2024-01-01T00:00:00Z", "from"),
        ("/v1/logs?cursor=not-a-cursor", "cursor"),
        ("/v1/logs?unknown=1", "unknown"),
    ];
    for (path, names) in refused {
        let (status, resp) = s.get(&key, path).await;
        assert_eq!(status, 400, "{path}: {resp}");
        let message = resp["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{path}: {resp}");
    }
    let long_query = format!("/v1/search?q={}", "a".repeat(5000));
    let long_service = format!("/v1/logs?service={}", "s".repeat(300));
    for path in [&long_query, &long_service] {
        let (status, resp) = s.get(&key, path).await;
        assert_eq!(status, 400, "{resp}");
        assert!(resp["error"]["code"].is_string(), "{resp}");
    }
    let (status, stats) = s.get(&key, "/v1/stats?interval=1h").await;
    assert_eq!(status, 200, "{stats}");
    let hours = (1_700_000_000 + n as i64 - 1) / 3600 - 1_700_000_000 / 3600 + 1;
    assert_eq!(stats["histogram"].as_array().map(Vec::len), Some(hours as usize));

    // The router's own answers are JSON errors too.
    for (method, path, status, code) in [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/v1/nope", 404, "not_found"),
        ("DELETE", "/v1/search", 405, "method_not_allowed"),
        ("PUT", "/health", 405, "method_not_allowed"),
        ("PATCH", "/v1/logs", 405, "method_not_allowed"),
    ] {
        let (got, resp) = raw(s, method, path, &key, b"").await;
        assert_eq!(
            (got, resp["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {resp}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bounded_reads_embedded() {
    let (_dir, s) = embedded().await;
    bounded_reads(&s, "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bounded_reads_distributed() {
    let (_dir, s, run) = distributed("reads").await;
    bounded_reads(&s, &run).await;
}

/// With an operator token, `/metrics` answers only to it and `/ready` tells
/// others the status alone.
#[tokio::test(flavor = "multi_thread")]
async fn operator_token_guards_metrics_and_ready_detail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let op = "lho_operator-token-for-tests";
    let s = Server::start_with_env(&dir.path().join("data"), &[], &[("LOGGERHUB_OPERATOR_TOKEN", op)]).await;
    let key = s.tenant("acme").await;
    for bearer in [None, Some(key.as_str()), Some(crate::common::ADMIN)] {
        let (status, resp) = raw(&s, "GET", "/metrics", bearer.unwrap_or(""), b"").await;
        assert_eq!(status, 401, "{bearer:?}");
        assert_eq!(resp["error"]["code"], "invalid_operator_token");
        let (status, ready) = raw(&s, "GET", "/ready", bearer.unwrap_or(""), b"").await;
        assert_eq!(status, 200);
        assert_eq!(ready, json!({"status": "ready"}), "{bearer:?}");
    }
    let r = s
        .http
        .get(s.url("/metrics"))
        .bearer_auth(op)
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("text").contains("loggerhub_queue_depth"));
    let (status, ready) = raw(&s, "GET", "/ready", op, b"").await;
    assert_eq!(status, 200);
    assert!(ready["backends"]["metadata"].is_string(), "{ready}");
}

/// The generated admin token's file is the owner's alone, also when a file
/// readable by others was there before.
#[tokio::test(flavor = "multi_thread")]
async fn admin_token_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    let no_token = [("LOGGERHUB_ADMIN_TOKEN", "")];
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let s = Server::start_with_env(&data, &[], &no_token).await;
    assert_eq!(mode(&data.join("admin_token")), 0o600);
    drop(s);
    // Left readable by others (by hand, or an older version): narrowed.
    for contents in ["", "lha_handmade"] {
        let data = dir.path().join(format!("data-{}", contents.len()));
        std::fs::create_dir_all(&data).expect("mkdir");
        std::fs::write(data.join("admin_token"), contents).expect("write");
        std::fs::set_permissions(data.join("admin_token"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let s = Server::start_with_env(&data, &[], &no_token).await;
        assert_eq!(mode(&data.join("admin_token")), 0o600, "{contents:?}");
        let token = std::fs::read_to_string(data.join("admin_token")).expect("read");
        if !contents.is_empty() {
            assert_eq!(token, contents, "a token that was there is kept");
        }
        let r = s
            .http
            .get(s.url("/v1/admin/tenants"))
            .bearer_auth(token.trim())
            .send()
            .await
            .expect("admin");
        assert_eq!(r.status(), 200);
    }
}

/// Dead letters hold logs: a key with only the `plugins` scope sees why a
/// letter failed, not its body.
async fn dead_letter_bodies_need_search(s: &Server, run: &str) {
    let slug = format!("letters{run}");
    let full = s.tenant(&slug).await;
    let (status, _) = s.post_logs(&full, "text/plain", "secret \u{0} body\n").await;
    assert_eq!(status, 202);
    let slug = slug.as_str();
    let key_with = |scopes: Value| async move {
        let r = s
            .http
            .post(s.url(&format!("/v1/admin/tenants/{slug}/keys")))
            .bearer_auth(crate::common::ADMIN)
            .json(&json!({"scopes": scopes}))
            .send()
            .await
            .expect("key");
        r.json::<Value>().await.expect("json")["key"]
            .as_str()
            .expect("key")
            .to_string()
    };
    let plugins_only = key_with(json!(["plugins"])).await;
    let both = key_with(json!(["plugins", "search"])).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let letters = loop {
        let (status, list) = s.get(&both, "/v1/dead-letters").await;
        assert_eq!(status, 200, "{list}");
        if list["dead_letters"].as_array().is_some_and(|l| !l.is_empty()) {
            break list;
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        letters["dead_letters"][0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("secret"))
    );
    let (status, list) = s.get(&plugins_only, "/v1/dead-letters").await;
    assert_eq!(status, 200);
    let letter = &list["dead_letters"][0];
    assert!(letter["reason"].is_string(), "{letter}");
    assert!(letter.get("body").is_none(), "{letter}");
    assert!(!list.to_string().contains("secret"), "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letter_bodies_need_search_embedded() {
    let (_dir, s) = embedded().await;
    dead_letter_bodies_need_search(&s, "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letter_bodies_need_search_distributed() {
    let (_dir, s, run) = distributed("letters").await;
    dead_letter_bodies_need_search(&s, &run).await;
}

/// The flags of `operator_policy`'s servers.
const POLICY: &[&str] = &[
    "--plugin-cpu-ms",
    "500",
    "--plugin-versions",
    "3",
    "--dead-letter-cap",
    "5",
];

/// Limits belong to the operator: a pipeline may lower them, not raise
/// them; versions are pruned past the operator's count (the active and the
/// previous one kept); dead letters are capped (oldest dropped and counted)
/// and paginated.
async fn operator_policy(s: &Server, run: &str) {
    let key = s.tenant(&format!("policy{run}")).await;
    let limits = |cpu_ms: u32| json!({"enrichers": ["default-enricher"], "limits": {"cpu_ms": cpu_ms}});
    let (status, resp) = s.put_pipeline(&key, &limits(1000)).await;
    assert_eq!(status, 400, "{resp}");
    assert!(
        resp["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cpu_ms must be 1 to 500 ms")),
        "{resp}"
    );
    assert_eq!(s.put_pipeline(&key, &limits(100)).await.0, 200);

    for v in 1..=5 {
        assert_eq!(s.put_plugin(&key, "enricher", "pii", pii_wasm()).await.1["version"], v);
    }
    let versions = || async {
        let (_, list) = s.get(&key, "/v1/plugins").await;
        list["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .find(|p| p["name"] == "pii")
            .map(|p| (p["versions"].clone(), p["active"].clone()))
            .expect("pii listed")
    };
    assert_eq!(versions().await, (json!([3, 4, 5]), json!(5)));
    let (status, _) = raw(
        s,
        "POST",
        "/v1/plugins/enricher/pii/rollback",
        &key,
        br#"{"version": 3}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(s.put_plugin(&key, "enricher", "pii", pii_wasm()).await.1["version"], 6);
    // The one active before the upload stays, for a rollback.
    assert_eq!(versions().await, (json!([3, 4, 5, 6]), json!(6)));

    for i in 0..8 {
        let (status, _) = s.post_logs(&key, "text/plain", format!("letter {i} \u{0}\n")).await;
        assert_eq!(status, 202);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, page) = s.get(&key, "/v1/dead-letters?limit=2").await;
        assert_eq!(status, 200, "{page}");
        if page["dropped"].as_u64().is_some_and(|d| d >= 3) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Paged once nothing moves any more: an entry whose turn failed after
    // dead-lettering is delivered again (at least once) and may write its
    // letter again, which may drop another one.
    s.drained(0).await;
    let (_, first) = s.get(&key, "/v1/dead-letters?limit=2").await;
    assert_eq!(first["total"], 5, "{first}");
    assert!(first["dropped"].as_u64().is_some_and(|d| d >= 3), "{first}");
    let mut seen = Vec::new();
    let mut page = first;
    loop {
        for l in page["dead_letters"].as_array().expect("letters") {
            seen.push(l["batch_id"].as_str().expect("id").to_string());
        }
        let Some(cursor) = page["next_cursor"].as_str().map(str::to_string) else {
            break;
        };
        page = s
            .get(&key, &format!("/v1/dead-letters?limit=2&cursor={cursor}"))
            .await
            .1;
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    sorted.dedup();
    assert_eq!(seen, sorted, "newest first, each once");
    assert_eq!(seen.len(), 5);
    assert_eq!(s.get(&key, "/v1/dead-letters?limit=101").await.0, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_policy_embedded() {
    let (_dir, s) = embedded_with(POLICY).await;
    operator_policy(&s, "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_policy_distributed() {
    let (_dir, s, run) = distributed_with("policy", POLICY).await;
    operator_policy(&s, &run).await;
}

/// A plugin that returns far more than it was given (here 200,000 records
/// for each record) gets a clear dead letter, and the host never holds its
/// output; the records around it and the other tenant flow on.
async fn output_is_bounded(s: &Server, run: &str) {
    let hostile = s.tenant(&format!("exploder{run}")).await;
    let healthy = s.tenant(&format!("neighbour{run}")).await;
    let wasm = std::fs::read(builtin::HOSTILE_ENRICHER_PATH).expect("fixture built by build.rs");
    assert_eq!(s.put_plugin(&hostile, "enricher", "hostile", wasm).await.0, 201);
    let spec = json!({
        "enrichers": ["default-enricher", "hostile"],
        "config": {"hostile": {"mode": "explode", "copies": "200000"}},
    });
    assert_eq!(s.put_pipeline(&hostile, &spec).await.0, 200);
    let body = [
        json!({"service": "api", "message": "calm before"}),
        json!({"service": "api", "message": "poison: explode"}),
        json!({"service": "api", "message": "calm after"}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    assert_eq!(s.post_logs(&hostile, "application/x-ndjson", body).await.0, 202);
    assert_eq!(
        s.post_logs(
            &healthy,
            "application/x-ndjson",
            crate::common::ndjson("fine", 5, "api")
        )
        .await
        .0,
        202
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mine = s.messages(&hostile, "/v1/logs?limit=1000").await;
        let theirs = s.messages(&healthy, "/v1/logs?limit=1000").await;
        let (_, letters) = s.get(&hostile, "/v1/dead-letters").await;
        let letters = letters["dead_letters"].as_array().cloned().unwrap_or_default();
        if mine.len() == 2 && theirs.len() == 5 && letters.len() == 1 {
            assert!(mine.contains(&"calm before".to_string()) && mine.contains(&"calm after".to_string()));
            let reason = letters[0]["reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains("200000 records") && reason.contains("at most"),
                "{reason}"
            );
            assert_eq!(letters[0]["records"], 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stored {} and {}, {} letters",
            mine.len(),
            theirs.len(),
            letters.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn output_is_bounded_embedded() {
    let (_dir, s) = embedded().await;
    output_is_bounded(&s, "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn output_is_bounded_distributed() {
    let (_dir, s, run) = distributed("explode").await;
    output_is_bounded(&s, &run).await;
}

/// Resident and peak memory of a process, from /proc.
fn rss_and_peak(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {field}"))
            * 1024
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

/// Plugins that fill their memory, listed many times in a pipeline and run
/// for many tenants, stay within the operator's budget for instances: the
/// server's peak memory grows by at most the budget plus what its workers
/// have in flight (one pipeline each), and idle instances are let go.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_memory_stays_within_the_budget() {
    const MIB: u64 = 1 << 20;
    const BUDGET_MIB: u64 = 256;
    const HOLD_MIB: u64 = 24;
    const COPIES: usize = 8;
    let budget = BUDGET_MIB.to_string();
    let (_dir, s) = embedded_with(&[
        "--plugin-memory-budget-mib",
        &budget,
        "--plugin-idle-secs",
        "3",
        "--workers",
        "2",
    ])
    .await;
    let wasm = std::fs::read(builtin::HOSTILE_ENRICHER_PATH).expect("fixture built by build.rs");
    let mut enrichers = vec![json!("default-enricher")];
    enrichers.extend(std::iter::repeat_n(json!("hoarder"), COPIES));
    let spec = json!({
        "enrichers": enrichers,
        "config": {"hoarder": {"mode": "hold", "every": "true", "hold_mib": HOLD_MIB.to_string()}},
    });
    let mut keys = Vec::new();
    for t in 0..8 {
        let key = s.tenant(&format!("hoard{t}")).await;
        assert_eq!(s.put_plugin(&key, "enricher", "hoarder", wasm.clone()).await.0, 201);
        let (status, body) = s.put_pipeline(&key, &spec).await;
        assert_eq!(status, 200, "{body}");
        keys.push(key);
    }
    let pid = s.child.id();
    let (base, _) = rss_and_peak(pid);
    let mut sent = 0;
    for round in 0..3 {
        for key in &keys {
            let body = crate::common::ndjson(&format!("r{round}"), 20, "api");
            assert_eq!(s.post_logs(key, "application/x-ndjson", body).await.0, 202);
            sent += 20;
        }
    }
    s.drained(sent).await;
    let (_, peak) = rss_and_peak(pid);
    // Two tenants per worker in flight, two workers: COPIES instances of
    // HOLD_MIB each, plus the guests' own few MiB. (Kept for good, the 8
    // tenants' instances would take at least 8 × 224 MiB.)
    let in_flight = 2 * 2 * COPIES as u64 * (HOLD_MIB + 4) * MIB;
    let bound = BUDGET_MIB * MIB + in_flight + 128 * MIB;
    assert!(
        peak.saturating_sub(base) <= bound,
        "peak grew by {} MiB; the bound is {} MiB",
        (peak - base) / MIB,
        bound / MIB
    );
    let held = s.metric("loggerhub_plugin_instance_bytes").await as u64;
    assert!(held <= BUDGET_MIB * MIB + in_flight, "{} MiB held", held / MIB);
    // Idle instances go (3 s here).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.metric("loggerhub_plugin_instance_bytes").await > 0.0 {
        assert!(std::time::Instant::now() < deadline, "idle instances kept");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// A plugin that moves its records to another tenant moves nothing: the
/// host sets every record's tenant after every stage.
async fn plugins_cannot_move_records(s: &Server, run: &str) {
    let victim_slug = format!("prey{run}");
    let victim = s.tenant(&victim_slug).await;
    let thief = s.tenant(&format!("thief{run}")).await;
    let wasm = std::fs::read(builtin::HOSTILE_ENRICHER_PATH).expect("fixture built by build.rs");
    assert_eq!(s.put_plugin(&thief, "enricher", "mover", wasm).await.0, 201);
    let spec = json!({
        "enrichers": ["default-enricher", "mover"],
        "config": {"mover": {"mode": "retenant", "every": "true", "to": victim_slug}},
    });
    assert_eq!(s.put_pipeline(&thief, &spec).await.0, 200);
    let body = crate::common::ndjson("planted", 10, "api");
    assert_eq!(s.post_logs(&thief, "application/x-ndjson", body).await.0, 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, page) = s.get(&thief, "/v1/logs?limit=100").await;
        let hits = page["hits"].as_array().cloned().unwrap_or_default();
        if hits.len() == 10 {
            assert!(hits.iter().all(|h| h["tenant"] != victim_slug.as_str()), "{page}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for path in ["/v1/logs?limit=100", "/v1/search?q=planted"] {
        let (status, page) = s.get(&victim, path).await;
        assert_eq!(status, 200);
        assert_eq!(page["hits"].as_array().map(Vec::len), Some(0), "{path}: {page}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_cannot_move_records_embedded() {
    let (_dir, s) = embedded().await;
    plugins_cannot_move_records(&s, "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_cannot_move_records_distributed() {
    let (_dir, s, run) = distributed("mover").await;
    plugins_cannot_move_records(&s, &run).await;
}
