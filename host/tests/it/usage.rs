//! Daily volume, plugin CPU and usage (issue 11, points 3 and 4), on the
//! embedded and the distributed backends: over its daily volume a tenant
//! gets 429 `daily_quota_exceeded` until midnight UTC or a larger plan, and
//! the counters survive a restart; over its plugin CPU its own plugins are
//! skipped, the built-ins take their stage, and the tenant sees why;
//! `GET /v1/usage` shows all of it against the plan. The plan also bounds
//! a tenant's plugins, versions and dead letters.

use std::time::{Duration, Instant};

use loggerhub::runtime::builtin;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Server, distributed_flags};

fn plans_file(dir: &std::path::Path) -> std::path::PathBuf {
    let plan = |daily_logs: u64, cpu: u64| {
        json!({
            "logs_per_second": 100_000, "bytes_per_second": 100_000_000, "burst_seconds": 10,
            "daily_logs": daily_logs, "daily_bytes": 1u64 << 40, "retention_days": 3650,
            "plugin_cpu_seconds_per_day": cpu, "max_plugins": 10, "max_versions": 5, "dead_letter_cap": 100
        })
    };
    let path = dir.join("plans.json");
    let mut tight = plan(1_000_000, 3600);
    tight["max_plugins"] = json!(1);
    tight["max_versions"] = json!(2);
    tight["dead_letter_cap"] = json!(2);
    let plans = json!({"small": plan(50, 1), "big": plan(1_000_000, 3600), "tight": tight});
    std::fs::write(&path, plans.to_string()).expect("write plans");
    path
}

fn flags(dir: &std::path::Path, distributed: Option<&str>) -> Vec<String> {
    let mut flags = vec![
        "--plans".to_string(),
        plans_file(dir).to_str().expect("path").to_string(),
    ];
    if let Some(name) = distributed {
        flags.extend(distributed_flags(name));
    }
    flags
}

async fn start(dir: &std::path::Path, flags: &[String]) -> Server {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(&dir.join("data"), &flags).await
}

async fn usage(s: &Server, key: &str) -> Value {
    let (status, u) = s.get(key, "/v1/usage").await;
    assert_eq!(status, 200, "{u}");
    u
}

async fn daily_volume(dir: &std::path::Path, flags: &[String], run: &str) {
    let mut s = start(dir, flags).await;
    let slug = format!("daily{run}");
    let key = s.tenant_on(&slug, "small").await;
    for _ in 0..2 {
        let (status, body) = s
            .post_logs(&key, "application/x-ndjson", crate::common::ndjson("d", 30, "api"))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    // 60 of 50: the request that crossed the line was taken, the next is not.
    let refused = s
        .http
        .post(s.url("/v1/logs"))
        .bearer_auth(&key)
        .header("content-type", "application/x-ndjson")
        .body(crate::common::ndjson("d", 1, "api"))
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), 429);
    let retry: u32 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        (1..=86_400).contains(&retry),
        "Retry-After {retry} is not until midnight"
    );
    let err: Value = refused.json().await.expect("json");
    assert_eq!(err["error"]["code"], "daily_quota_exceeded", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .expect("message")
            .contains("daily_logs"),
        "{err}"
    );

    let u = usage(&s, &key).await;
    assert_eq!(
        (u["plan"].as_str(), u["today"]["logs"].as_u64()),
        (Some("small"), Some(60)),
        "{u}"
    );
    assert_eq!(u["limits"]["daily_logs"], 50);
    assert_eq!(u["exhausted"], json!(["daily_logs"]));
    assert!(u["today"]["bytes"].as_u64().expect("bytes") > 1000);
    assert_eq!(u["days"].as_array().expect("days").last(), Some(&u["today"]));

    // The operator sees the same per tenant in /metrics.
    let series = |name: &str| format!("{name}{{tenant=\"{slug}\"}}");
    assert_eq!(s.metric(&series("loggerhub_tenant_logs_total")).await, 60.0);
    assert!(s.metric(&series("loggerhub_tenant_bytes_total")).await > 1000.0);
    let refused = format!("loggerhub_tenant_refused_total{{tenant=\"{slug}\",reason=\"daily_quota\"}}");
    assert_eq!(s.metric(&refused).await, 1.0);

    // The counters survive a restart (flushed every second).
    s.drained(60).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kill();
    let s = start(dir, flags).await;
    let (status, _) = s
        .post_logs(&key, "application/x-ndjson", crate::common::ndjson("d", 1, "api"))
        .await;
    assert_eq!(status, 429, "a restart forgot the day's count");
    assert_eq!(usage(&s, &key).await["today"]["logs"], 60);

    // The operator raises the plan: ingest resumes at once.
    let (status, _) = s
        .admin(
            Method::PATCH,
            &format!("/v1/admin/tenants/{slug}"),
            Some(json!({"plan": "big"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = s
        .post_logs(&key, "application/x-ndjson", crate::common::ndjson("d", 1, "api"))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(usage(&s, &key).await["exhausted"], json!([]));
}

async fn plugin_cpu(s: &Server, run: &str) {
    let key = s.tenant_on(&format!("cpu{run}"), "small").await;
    let other = s.tenant_on(&format!("cpuother{run}"), "small").await;
    let wasm = std::fs::read(builtin::HOSTILE_PARSER_PATH).expect("fixture built by build.rs");
    for k in [&key, &other] {
        assert_eq!(s.put_plugin(k, "parser", "spin", wasm.clone()).await.0, 201);
        assert_eq!(s.put_pipeline(k, &json!({"text_parser": "spin"})).await.0, 200);
    }
    // One body the parser spins on: its whole CPU budget (2 s), over the
    // plan's second a day.
    let (status, _) = s.post_logs(&key, "text/plain", "spin now\n").await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let u = usage(s, &key).await;
        if u["exhausted"].as_array().expect("list").contains(&json!("plugin_cpu")) {
            assert!(u["today"]["plugin_cpu_seconds"].as_f64().expect("cpu") >= 1.0, "{u}");
            break;
        }
        assert!(Instant::now() < deadline, "plugin CPU never counted: {u}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Now the built-in line parser takes the text: a body the custom
    // parser would have spun on goes through, and the tenant sees why.
    let (status, _) = s
        .post_logs(&key, "text/plain", "spin again, parsed by the built-in\n")
        .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.messages(&key, "/v1/search?q=built").await.is_empty() {
        assert!(Instant::now() < deadline, "the built-in never took the stage");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, plugins) = s.get(&key, "/v1/plugins").await;
    let spin = plugins["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .find(|p| p["name"] == "spin")
        .cloned()
        .unwrap_or_default();
    assert!(
        spin["disabled"].as_str().unwrap_or("").contains("plugin CPU"),
        "the tenant cannot see why: {spin}"
    );
    // Another tenant's plugin runs as before.
    let (_, plugins) = s.get(&other, "/v1/plugins").await;
    assert!(!plugins.to_string().contains("plugin CPU"), "{plugins}");
    assert_eq!(usage(s, &other).await["exhausted"], json!([]));
}

/// The plan's plugins, versions and dead letters: a second plugin is
/// refused, a third version prunes the first, a fourth dead letter drops
/// the oldest; another tenant on a larger plan keeps more.
async fn plan_limits(s: &Server, run: &str) {
    let key = s.tenant_on(&format!("tight{run}"), "tight").await;
    let roomy = s.tenant_on(&format!("roomy{run}"), "big").await;
    let wasm = std::fs::read(builtin::HOSTILE_ENRICHER_PATH).expect("fixture built by build.rs");
    for k in [&key, &roomy] {
        for _ in 0..3 {
            assert_eq!(s.put_plugin(k, "enricher", "hostile", wasm.clone()).await.0, 201);
        }
        let spec = json!({"enrichers": ["default-enricher", "hostile"], "config": {"hostile": {"mode": "panic"}}});
        assert_eq!(s.put_pipeline(k, &spec).await.0, 200);
    }
    let (status, err) = s.put_plugin(&key, "parser", "another", wasm.clone()).await;
    assert_eq!((status, &err["error"]["code"]), (403, &json!("plan_limit")), "{err}");
    assert_eq!(
        s.put_plugin(
            &roomy,
            "parser",
            "another",
            std::fs::read(builtin::HOSTILE_PARSER_PATH).expect("fixture")
        )
        .await
        .0,
        201
    );
    let versions = |plugins: Value| {
        plugins["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .find(|p| p["name"] == "hostile")
            .map(|p| p["versions"].as_array().map_or(0, Vec::len))
    };
    assert_eq!(versions(s.get(&key, "/v1/plugins").await.1), Some(2));
    assert_eq!(versions(s.get(&roomy, "/v1/plugins").await.1), Some(3));

    // Four poisoned requests, each a dead letter of its own.
    for k in [&key, &roomy] {
        for i in 0..4 {
            let body = json!({"message": format!("poison {i}")}).to_string();
            assert_eq!(s.post_logs(k, "application/x-ndjson", body).await.0, 202);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, mine) = s.get(&key, "/v1/dead-letters").await;
        let (_, theirs) = s.get(&roomy, "/v1/dead-letters").await;
        if mine["dropped"] == 2 && theirs["total"] == 4 {
            assert_eq!(mine["total"], 2, "{mine}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dead letters past the plan's cap: {mine} / {theirs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The meter writes its counts to the store in the background: they
    // catch up with the letters, later under load.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let letters = usage(s, &key).await["today"]["dead_letters"].as_u64().expect("letters");
        if letters >= 4 {
            break;
        }
        assert!(Instant::now() < deadline, "{letters} dead letters in the usage, 4 made");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn daily_volume_and_plugin_cpu_embedded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = flags(dir.path(), None);
    daily_volume(dir.path(), &flags, "e").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &flags).await;
    plugin_cpu(&s, "e").await;
    plan_limits(&s, "e").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn daily_volume_and_plugin_cpu_distributed() {
    let run = std::process::id().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = flags(dir.path(), Some(&format!("usage{run}")));
    daily_volume(dir.path(), &flags, &run).await;
    let s = start(dir.path(), &flags).await;
    plugin_cpu(&s, &run).await;
    plan_limits(&s, &run).await;
}
