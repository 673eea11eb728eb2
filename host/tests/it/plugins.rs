//! Tenant plugins: upload, validation, versions, rollback, the pipeline
//! API, and hot reload from disk, against the real binary.

use std::time::{Duration, Instant};

use crate::common::{ADMIN, Server};
use loggerhub::runtime::builtin;
use serde_json::{Value, json};

fn pii_wasm() -> Vec<u8> {
    std::fs::read(builtin::PII_REDACTOR_PATH).expect("example plugin built by build.rs")
}

async fn put_plugin(s: &Server, key: &str, stage: &str, name: &str, wasm: Vec<u8>) -> (u16, Value) {
    s.put_plugin(key, stage, name, wasm).await
}

async fn put_pipeline(s: &Server, key: &str, spec: Value) -> (u16, Value) {
    s.put_pipeline(key, &spec).await
}

/// Messages stored for `q`, newest first.
async fn messages(s: &Server, key: &str, q: &str) -> Vec<String> {
    s.messages(key, &format!("/v1/search?q={q}&limit=1000")).await
}

#[tokio::test]
async fn upload_validate_version_rollback_and_pipeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let key = s.tenant("acme").await;

    // Validation names the failed check.
    let (status, body) = put_plugin(&s, &key, "enricher", "pii", b"not wasm".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_plugin");
    assert!(
        body["error"]["message"].as_str().expect("msg").contains("(compile)"),
        "{body}"
    );
    let (status, body) = put_plugin(&s, &key, "router", "pii", pii_wasm()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().expect("msg").contains("(world)"),
        "{body}"
    );
    let (status, _) = put_plugin(&s, &key, "enricher", "default-enricher", pii_wasm()).await;
    assert_eq!(status, 409);
    // (Refusals that come before the body is read get a small body: the
    // server may close the connection without reading a large one.)
    let (status, _) = put_plugin(&s, &key, "gatherer", "pii", b"x".to_vec()).await;
    assert_eq!(status, 400);

    // Upload, then use it with per-plugin config.
    let (status, body) = put_plugin(&s, &key, "enricher", "pii", pii_wasm()).await;
    assert_eq!((status, body["version"].as_u64()), (201, Some(1)));
    let (status, body) = put_pipeline(
        &s,
        &key,
        json!({"enrichers": ["default-enricher", "pii"], "config": {"pii": {"redact": "email"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, spec) = s.get(&key, "/v1/pipeline").await;
    assert_eq!(spec["enrichers"], json!(["default-enricher", "pii"]));
    assert_eq!(spec["json_parser"], "json-parser");
    let (status, _) = s
        .post_logs(
            &key,
            "application/json",
            r#"{"message":"login bob@example.com from 10.1.2.3"}"#,
        )
        .await;
    assert_eq!(status, 202);
    s.drained(1).await;
    assert_eq!(
        messages(&s, &key, "login").await,
        vec!["login [REDACTED:email] from 10.1.2.3"]
    );

    // A pipeline naming an unknown plugin is refused and changes nothing.
    let (status, body) = put_pipeline(&s, &key, json!({"enrichers": ["nope"]})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("plugin_not_found"))
    );

    // Versions and rollback.
    let (status, body) = put_plugin(&s, &key, "enricher", "pii", pii_wasm()).await;
    assert_eq!((status, body["version"].as_u64()), (201, Some(2)));
    let r = s
        .http
        .post(s.url("/v1/plugins/enricher/pii/rollback"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("rollback");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["active"], 1);
    let (_, list) = s.get(&key, "/v1/plugins").await;
    let pii = list["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .find(|p| p["name"] == "pii")
        .cloned()
        .expect("pii listed");
    assert_eq!(pii["versions"], json!([1, 2]));
    assert_eq!(pii["active"], 1);
    assert_eq!(pii["stage"], "enricher");
    assert!(
        list["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .any(|p| p["name"] == "json-parser" && p["builtin"] == true)
    );

    // In use: cannot delete; after the pipeline drops it, it can go.
    let del = || {
        s.http
            .delete(s.url("/v1/plugins/enricher/pii"))
            .bearer_auth(&key)
            .send()
    };
    assert_eq!(del().await.expect("delete").status(), 409);
    assert_eq!(put_pipeline(&s, &key, json!({})).await.0, 200);
    assert_eq!(del().await.expect("delete").status(), 204);
    assert_eq!(del().await.expect("delete").status(), 404);

    // Plugins need the plugins scope; tenants never see each other's.
    let r = s
        .http
        .post(s.url("/v1/admin/tenants/acme/keys"))
        .bearer_auth(ADMIN)
        .json(&json!({"scopes": ["ingest"]}))
        .send()
        .await
        .expect("key");
    let ingest_only = r.json::<Value>().await.expect("json")["key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(
        put_plugin(&s, &ingest_only, "enricher", "x", b"x".to_vec()).await.0,
        403
    );
    let other = s.tenant("other").await;
    assert_eq!(put_plugin(&s, &key, "enricher", "mine", pii_wasm()).await.0, 201);
    let (_, list) = s.get(&other, "/v1/plugins").await;
    assert!(
        !list["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .any(|p| p["name"] == "mine")
    );
    assert_eq!(put_pipeline(&s, &other, json!({"enrichers": ["mine"]})).await.0, 404);
}

#[tokio::test]
async fn hot_reload_from_disk_under_a_steady_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = tempfile::NamedTempFile::new().expect("log file");
    let s = Server::start_logging(dir.path(), &[], log.path()).await;
    let key = s.tenant("acme").await;
    let tenant_dir = dir.path().join("plugins").join("acme");
    let plugin_dir = tenant_dir.join("enricher").join("pii");

    let sent = std::cell::Cell::new(0u64);
    let send = async |n: u64, tag: &str| {
        let body: Vec<String> = (0..n)
            .map(|i| json!({"message": format!("{tag} {i} mail a{i}@example.com")}).to_string())
            .collect();
        let (status, _) = s.post_logs(&key, "application/x-ndjson", body.join("\n")).await;
        assert_eq!(status, 202);
        sent.set(sent.get() + n);
    };

    // Logs flow while the plugin and the pipeline appear on disk.
    for _ in 0..5 {
        send(20, "before").await;
    }
    // The pipeline applies when a batch is processed: let these through
    // on the old pipeline first.
    s.drained(sent.get()).await;
    std::fs::create_dir_all(&plugin_dir).expect("mkdir");
    std::fs::write(plugin_dir.join("1.wasm"), pii_wasm()).expect("write wasm");
    std::fs::write(plugin_dir.join("active"), "1").expect("write active");
    std::fs::write(
        tenant_dir.join("pipeline.json"),
        json!({"enrichers": ["default-enricher", "pii"]}).to_string(),
    )
    .expect("write pipeline");
    // Compiling and dry-running the new plugin takes ~0.1 s in a release
    // build and seconds in this debug build on a loaded machine (other
    // tests build plugins beside this one), plus up to 2 s if the change
    // is caught by the rescan rather than notify. Logs keep flowing for at
    // least 5 s, and until one of them comes out redacted: the swap is
    // seen, not assumed after a fixed time.
    let swapped = Instant::now();
    loop {
        send(20, "during").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if swapped.elapsed() < Duration::from_secs(5) {
            continue;
        }
        s.drained(sent.get()).await;
        let during = messages(&s, &key, "during").await;
        if during.iter().any(|m| m.contains("[REDACTED:email]")) {
            break;
        }
        assert!(
            swapped.elapsed() < Duration::from_secs(60),
            "the new pipeline was not swapped in"
        );
    }
    for _ in 0..5 {
        send(20, "after").await;
    }
    s.drained(sent.get()).await;
    // Nothing lost or doubled across the swap, and logs sent after it
    // carry the new plugin's output.
    assert_eq!(
        s.get(&key, "/v1/logs?limit=1").await.1["total"].as_u64(),
        Some(sent.get())
    );
    let after = messages(&s, &key, "after").await;
    assert_eq!(after.len(), 100);
    assert!(
        after.iter().all(|m| m.contains("[REDACTED:email]") && !m.contains('@')),
        "{after:?}"
    );
    assert!(
        messages(&s, &key, "before")
            .await
            .iter()
            .all(|m| m.contains("@example.com"))
    );

    // A broken version on disk never replaces the working one.
    std::fs::write(plugin_dir.join("2.wasm"), b"\0asm broken").expect("write broken");
    std::fs::write(plugin_dir.join("active"), "2").expect("write active");
    // Wait until the watcher has seen the broken version and refused it:
    // the check below must run after that, not after a guess of its time.
    let refused = Instant::now();
    while !std::fs::read_to_string(log.path())
        .expect("read log")
        .lines()
        .any(|l| l.contains("plugin change not applied") && l.contains("acme"))
    {
        assert!(
            refused.elapsed() < Duration::from_secs(60),
            "the broken version was never looked at"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = sent.get();
    send(10, "later").await;
    s.drained(sent.get()).await;
    assert_eq!(sent.get() - before, 10);
    let later = messages(&s, &key, "later").await;
    assert_eq!(later.len(), 10);
    assert!(later.iter().all(|m| m.contains("[REDACTED:email]")), "{later:?}");
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_loggerhub"))
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "error")
        .output()
        .expect("run the cli")
}

#[tokio::test]
async fn cli_validates_tests_pushes_and_lists_plugins() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Local: validate and test need no server.
    let out = cli(&["plugin", "validate", "enricher", builtin::PII_REDACTOR_PATH], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"nope").expect("write");
    let out = cli(
        &["plugin", "validate", "enricher", garbage.to_str().expect("path")],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to compile"));
    let out = cli(&["plugin", "validate", "router", builtin::PII_REDACTOR_PATH], &[]);
    assert!(!out.status.success());

    let input = dir.path().join("sample.ndjson");
    std::fs::write(&input, "{\"message\":\"mail bob@example.com from 10.0.0.1\"}\n").expect("write");
    let out = cli(
        &[
            "plugin",
            "test",
            builtin::PII_REDACTOR_PATH,
            "--stage",
            "enricher",
            "--input",
            input.to_str().expect("path"),
            "--config",
            "redact=email",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line: Value = serde_json::from_slice(&out.stdout).expect("one json record");
    assert_eq!(line["message"], "mail [REDACTED:email] from 10.0.0.1");

    // Remote: push, list, rollback through the API.
    let s = Server::start(&dir.path().join("data"), &[]).await;
    let key = s.tenant("acme").await;
    let env = [("LOGGERHUB_API_KEY", key.as_str())];
    for want in [1, 2] {
        let out = cli(
            &[
                "plugin",
                "push",
                "enricher",
                "pii",
                builtin::PII_REDACTOR_PATH,
                "--url",
                &s.url,
            ],
            &env,
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["version"], want);
    }
    let out = cli(&["plugin", "rollback", "enricher", "pii", "--url", &s.url], &env);
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).expect("json")["active"], 1);
    let out = cli(&["plugin", "list", "--url", &s.url], &env);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .any(|p| p["name"] == "pii" && p["active"] == 1)
    );
}

#[tokio::test]
async fn access_log_parser_and_debug_to_raw_router_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let key = s.tenant("acme").await;
    let read = |p: &str| std::fs::read(p).expect("example built by build.rs");
    assert_eq!(
        put_plugin(&s, &key, "parser", "access", read(builtin::ACCESS_LOG_PARSER_PATH))
            .await
            .0,
        201
    );
    assert_eq!(
        put_plugin(&s, &key, "router", "debug-raw", read(builtin::DEBUG_TO_RAW_PATH))
            .await
            .0,
        201
    );
    let (status, body) = put_pipeline(&s, &key, json!({"text_parser": "access", "router": "debug-raw"})).await;
    assert_eq!(status, 200, "{body}");

    let access = concat!(
        "203.0.113.7 - alice [10/Oct/2025:13:55:36 +0000] \"GET /api/orders HTTP/1.1\" 502 1234 \"-\" \"curl/8.5\"\n",
        "198.51.100.2 - - [10/Oct/2025:13:55:37 +0000] \"GET /health HTTP/1.1\" 200 2\n",
    );
    let (status, _) = s.post_logs(&key, "text/plain", access).await;
    assert_eq!(status, 202);
    let json_body =
        "{\"message\":\"verbose detail xyzzy\",\"level\":\"debug\"}\n{\"message\":\"visible\",\"level\":\"info\"}";
    assert_eq!(s.post_logs(&key, "application/x-ndjson", json_body).await.0, 202);
    s.drained(4).await;

    let (_, page) = s.get(&key, "/v1/search?q=attributes.status:502").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["hits"][0]["message"], "GET /api/orders 502");
    assert_eq!(page["hits"][0]["level"], "ERROR");
    assert_eq!(page["hits"][0]["timestamp"], "2025-10-10T13:55:36Z");
    assert_eq!(page["hits"][0]["attributes"]["client"], "203.0.113.7");

    // The DEBUG record is in the raw store only: not listed, not searchable.
    assert_eq!(s.get(&key, "/v1/logs").await.1["total"], 3);
    assert_eq!(s.get(&key, "/v1/search?q=xyzzy").await.1["total"], 0);
    let mut raw = String::new();
    let mut stack = vec![dir.path().join("raw")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).expect("ls").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                raw.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).expect("read")));
            }
        }
    }
    assert!(
        raw.contains("verbose detail xyzzy"),
        "DEBUG record missing from the raw store"
    );
}
