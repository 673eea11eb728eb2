//! Retention and the tenant lifecycle (issue 11, points 5 and 6), on the
//! embedded and the distributed backends.
//!
//! Retention: the upkeep job deletes a tenant's logs older than its plan
//! keeps them from the index, the metadata store and the raw store (an
//! object once its newest record has expired); nothing younger, and no
//! other tenant's logs, are touched. A record already older than the plan
//! keeps logs is refused at ingest (400 `timestamp_out_of_range`), never
//! taken and then deleted.
//!
//! Lifecycle: a suspended tenant's ingest is refused (403
//! `tenant_suspended`) while its reads work; a deleted tenant's keys stop at
//! once, its data goes from every store in the background, and then the
//! tenant is gone (404), its slug free again.
//!
//! Upkeep sweeps every tenant it finds, so each distributed server here has
//! a database of its own.

use std::time::{Duration, Instant};

use loggerhub::runtime::builtin;
use serde_json::json;

use crate::common::{Server, distributed_flags_on, own_database};

const SWEEP: &str = "300";

fn plans_file(dir: &std::path::Path) -> std::path::PathBuf {
    let rated = |seconds: u64, logs_per_second: u64, burst_seconds: u64| {
        json!({
            "logs_per_second": logs_per_second, "bytes_per_second": 100_000_000, "burst_seconds": burst_seconds,
            "daily_logs": 1_000_000_000, "daily_bytes": 1u64 << 40, "retention_days": 1,
            "retention_seconds": seconds, "plugin_cpu_seconds_per_day": 3600, "max_plugins": 10,
            "max_versions": 5, "dead_letter_cap": 100
        })
    };
    let plan = |seconds: u64| rated(seconds, 100_000, 10);
    let path = dir.join("plans.json");
    let plans = json!({"hour": plan(3600), "short": plan(120), "blink": plan(4), "decade": plan(10 * 365 * 86_400),
        "trickle": rated(10 * 365 * 86_400, 1, 1)});
    std::fs::write(&path, plans.to_string()).expect("write plans");
    path
}

async fn start(dir: &std::path::Path, name: &str, distributed: bool) -> Server {
    let plans = plans_file(dir);
    let mut flags: Vec<String> = vec![
        "--plans".into(),
        plans.to_str().expect("path").into(),
        "--upkeep-interval-ms".into(),
        SWEEP.into(),
    ];
    if distributed {
        let db = own_database(name).await;
        flags.extend(distributed_flags_on(&format!("{name}{}", std::process::id()), &db));
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(&dir.join("data"), &flags).await
}

/// Records stamped `ago` before now, with messages `<tag> <i>`.
fn stamped(tag: &str, n: usize, ago: Duration) -> String {
    let at = std::time::SystemTime::now() - ago;
    let ts = humantime_rfc3339(at);
    (0..n)
        .map(|i| {
            json!({"service": "api", "level": "INFO", "timestamp": ts, "message": format!("{tag} {i}")}).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn humantime_rfc3339(t: std::time::SystemTime) -> String {
    let ns = t.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_nanos() as i64;
    loggerhub::model::format_ts(ns)
}

/// How many of the tenant's logs carry `tag`, as the list view, the search
/// and the stats see them.
async fn seen(s: &Server, key: &str, tag: &str) -> (usize, u64, u64) {
    let listed = s
        .messages(key, "/v1/logs?limit=1000")
        .await
        .iter()
        .filter(|m| m.starts_with(&format!("{tag} ")))
        .count();
    let (status, found) = s.get(key, &format!("/v1/search?q={tag}&limit=1")).await;
    assert_eq!(status, 200, "{found}");
    let (status, stats) = s.get(key, "/v1/stats").await;
    assert_eq!(status, 200, "{stats}");
    let total = stats["total"].as_u64().unwrap_or(0);
    (listed, found["total"].as_u64().unwrap_or(0), total)
}

async fn first_id(s: &Server, key: &str, tag: &str) -> String {
    let (_, found) = s.get(key, &format!("/v1/search?q={tag}&limit=1")).await;
    found["hits"][0]["id"].as_str().expect("a hit").to_string()
}

async fn send(s: &Server, key: &str, body: String) -> u64 {
    let (status, body) = s.post_logs(key, "application/x-ndjson", body).await;
    assert_eq!(status, 202, "{body}");
    body["accepted"].as_u64().expect("accepted")
}

async fn retention(s: &Server, distributed: bool) {
    let _ = distributed;
    let brief = s.tenant_on("brief", "hour").await;
    let keeper = s.tenant_on("keeper", "decade").await;
    let blink = s.tenant_on("blinker", "blink").await;
    let short = s.tenant_on("short", "short").await;

    // Kept: younger than the hour (one near its edge), and another
    // tenant's old logs on a longer plan.
    let mut sent = send(s, &brief, stamped("young", 20, Duration::from_secs(60))).await;
    sent += send(s, &brief, stamped("edge", 5, Duration::from_secs(50 * 60))).await;
    sent += send(s, &keeper, stamped("ancient", 10, Duration::from_secs(40 * 86_400))).await;
    // Older than the hour already: refused whole, naming the retention,
    // instead of taken and deleted at the next sweep.
    let (status, refused) = s
        .post_logs(
            &brief,
            "application/x-ndjson",
            format!(
                "{}\n{}",
                stamped("fresh", 1, Duration::ZERO),
                stamped("old", 1, Duration::from_secs(3 * 3600))
            ),
        )
        .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (400, &json!("timestamp_out_of_range")),
        "{refused}"
    );
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("record 2: ") && message.contains("retention of 1 hour"),
        "{message}"
    );
    // One batch whose records expire apart: its raw object must stay for
    // the younger record in it.
    let mixed = format!(
        "{}\n{}",
        stamped("oldmixed", 3, Duration::from_secs(110)),
        stamped("youngmixed", 2, Duration::ZERO)
    );
    sent += send(s, &short, mixed).await;
    s.drained(sent).await;

    // The blink plan keeps logs 4 s: seen at first, gone after.
    send(s, &blink, stamped("flash", 7, Duration::ZERO)).await;
    s.drained(sent + 7).await;
    assert_eq!(seen(s, &blink, "flash").await.0, 7, "expired before it could be seen");
    let flash_id = first_id(s, &blink, "flash").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen(s, &blink, "flash").await != (0, 0, 0) {
        assert!(
            Instant::now() < deadline,
            "a 4 s retention never deleted: {:?}",
            seen(s, &blink, "flash").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = s.get(&blink, &format!("/v1/logs/{flash_id}")).await;
    assert_eq!(status, 404, "the detail of an expired log");

    // The short plan (2 min) expires the mixed batch's older records 10 s
    // after they were sent; the younger ones stay two minutes.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        // Gone from the list and from the search: the index and the
        // metadata store may be a sweep apart.
        let oldmixed = seen(s, &short, "oldmixed").await;
        if (oldmixed.0, oldmixed.1) == (0, 0) {
            break;
        }
        assert!(Instant::now() < deadline, "expired logs still listed: {oldmixed:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (listed, searched, _) = seen(s, &brief, "young").await;
    assert_eq!((listed, searched), (20, 20), "younger logs were touched");
    assert_eq!(
        seen(s, &brief, "edge").await.0,
        5,
        "logs 50 min old on a 1 h plan were touched"
    );
    assert_eq!(seen(s, &short, "youngmixed").await.0, 2);
    let (_, stats) = s.get(&brief, "/v1/stats").await;
    assert_eq!(stats["total"], 25, "{stats}");
    let (_, stats) = s.get(&short, "/v1/stats").await;
    assert_eq!(stats["total"], 2, "stats count expired logs: {stats}");
    let (listed, searched, _) = seen(s, &keeper, "ancient").await;
    assert_eq!((listed, searched), (10, 10), "another tenant's logs were touched");

    // A young record of the mixed batch still comes back from the raw
    // store: its object stayed.
    let young = first_id(s, &short, "youngmixed").await;
    let (status, detail) = s.get(&short, &format!("/v1/logs/{young}")).await;
    assert_eq!(status, 200, "{detail}");
    // Every store counted its deletions: 10 expired records (the search
    // joins index hits with the metadata store, so the index's own
    // deletions may trail by a sweep).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let raw = s.metric("loggerhub_expired_total{store=\"raw\"}").await;
        let meta = s.metric("loggerhub_expired_total{store=\"metadata\"}").await;
        let index = s.metric("loggerhub_expired_total{store=\"index\"}").await;
        if raw >= 1.0 && meta >= 10.0 && index >= 10.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expired: raw {raw}, metadata {meta}, index {index}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every tenth sweep measures what each tenant's data takes per store.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, u) = s.get(&keeper, "/v1/usage").await;
        let stored = &u["stored"];
        let all = ["metadata_bytes", "raw_bytes", "index_bytes"]
            .iter()
            .all(|k| stored[k].as_u64().is_some_and(|n| n > 0));
        if all {
            let raw = s
                .metric("loggerhub_tenant_stored_bytes{tenant=\"keeper\",store=\"raw\"}")
                .await;
            assert_eq!(Some(raw as u64), stored["raw_bytes"].as_u64(), "{u}");
            break;
        }
        assert!(Instant::now() < deadline, "stored bytes never measured: {u}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if !distributed {
        // Objects on disk: the blink tenant's are gone, the keeper's stay.
        let raw = s.data_dir.join("raw/logs");
        assert_eq!(count_files(&raw.join("blinker")), 0);
        assert!(count_files(&raw.join("keeper")) > 0);
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_embedded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), "retention", false).await;
    retention(&s, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_distributed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), "retention", true).await;
    retention(&s, true).await;
}

async fn lifecycle(s: &Server, distributed: bool) {
    use reqwest::Method;
    let doomed = s.tenant_on("doomed", "decade").await;
    let bystander = s.tenant_on("bystander", "decade").await;
    let pii = std::fs::read(builtin::PII_REDACTOR_PATH).expect("example plugin built by build.rs");
    assert_eq!(s.put_plugin(&doomed, "enricher", "pii", pii).await.0, 201);
    let (status, body) = s
        .put_pipeline(&doomed, &json!({"enrichers": ["default-enricher", "pii"]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut sent = send(s, &doomed, stamped("doomed", 25, Duration::from_secs(60))).await;
    sent += send(s, &bystander, stamped("bystander", 15, Duration::from_secs(60))).await;
    s.drained(sent).await;

    // Suspended: ingest refused with its own code, reads still work; by the
    // API and by the CLI, and resumed the same ways.
    let (status, t) = s
        .admin(
            Method::PATCH,
            "/v1/admin/tenants/doomed",
            Some(json!({"state": "suspended"})),
        )
        .await;
    assert_eq!((status, &t["state"]), (200, &json!("suspended")), "{t}");
    let (status, err) = s
        .post_logs(&doomed, "application/x-ndjson", stamped("late", 1, Duration::ZERO))
        .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (403, &json!("tenant_suspended")),
        "{err}"
    );
    assert_eq!(seen(s, &doomed, "doomed").await.0, 25, "a suspended tenant's reads");
    assert_eq!(send(s, &bystander, stamped("still", 1, Duration::ZERO)).await, 1);
    assert_eq!(s.cli(&["tenant", "resume", "doomed"])["state"], "active");
    assert_eq!(send(s, &doomed, stamped("back", 2, Duration::from_secs(30))).await, 2);
    // Stored before it is suspended again: a suspended tenant's entries
    // wait in its lane.
    s.drained(sent + 3).await;
    assert_eq!(s.cli(&["tenant", "suspend", "doomed"])["state"], "suspended");
    let (status, err) = s
        .admin(
            Method::PATCH,
            "/v1/admin/tenants/doomed",
            Some(json!({"state": "deleting"})),
        )
        .await;
    assert_eq!((status, &err["error"]["code"]), (400, &json!("invalid_state")), "{err}");
    let (status, _) = s
        .post_logs(&doomed, "application/x-ndjson", stamped("late", 1, Duration::ZERO))
        .await;
    assert_eq!(status, 403);
    s.drained(sent + 3).await;

    // Only the admin token suspends or deletes: the tenant's own key, or
    // another tenant's, gets 401 and changes nothing.
    for key in [&doomed, &bystander] {
        for (method, body) in [
            (Method::DELETE, None),
            (Method::PATCH, Some(json!({"state": "active"}))),
        ] {
            let mut req = s
                .http
                .request(method.clone(), s.url("/v1/admin/tenants/doomed"))
                .bearer_auth(key);
            if let Some(b) = &body {
                req = req.json(b);
            }
            let status = req.send().await.expect("request").status().as_u16();
            assert_eq!(status, 401, "{method} with a tenant key");
        }
    }
    let (_, t) = s.admin(Method::GET, "/v1/admin/tenants/doomed", None).await;
    assert_eq!(t["state"], "suspended");

    // At its deletion it has dead letters, and entries waiting in its lane
    // (a slow plugin, then suspended with a backlog).
    let active =
        |state: &'static str| s.admin(Method::PATCH, "/v1/admin/tenants/doomed", Some(json!({"state": state})));
    assert_eq!(active("active").await.0, 200);
    // The key cache holds the state for up to 5 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, body) = s
        .post_logs(
            &doomed,
            "text/plain",
            "1901-01-01 00:00:00 ERROR older than any plan keeps",
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.get(&doomed, "/v1/dead-letters").await.1["total"] == 0 {
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spin = std::fs::read(builtin::HOSTILE_ENRICHER_PATH).expect("fixture built by build.rs");
    assert_eq!(s.put_plugin(&doomed, "enricher", "spin", spin).await.0, 201);
    let slow = json!({"enrichers": ["spin"], "config": {"spin": {"mode": "loop"}}, "limits": {"cpu_ms": 100}});
    assert_eq!(s.put_pipeline(&doomed, &slow).await.0, 200);
    // About 200 ms of the plugin's time each: 8 s, longer than the 2 s a
    // processor may take to see the suspension.
    for i in 0..40 {
        let body = format!(
            "{}\n{}",
            json!({"message": format!("poison {i}")}),
            json!({"message": format!("queued {i}")})
        );
        assert_eq!(s.post_logs(&doomed, "application/x-ndjson", body).await.0, 202);
    }
    // A debt of a minute at its rate (one large request on a plan of one
    // record a second), which must not pass to a new tenant of its name.
    let (status, _) = s
        .admin(
            Method::PATCH,
            "/v1/admin/tenants/doomed",
            Some(json!({"plan": "trickle"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = s
        .post_logs(&doomed, "application/x-ndjson", stamped("indebted", 60, Duration::ZERO))
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, err) = s
        .post_logs(&doomed, "application/x-ndjson", stamped("indebted", 1, Duration::ZERO))
        .await;
    assert_eq!((status, &err["error"]["code"]), (429, &json!("rate_limited")), "{err}");
    assert_eq!(active("suspended").await.0, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        s.metric("loggerhub_queue_depth").await > 0.0,
        "the backlog was gone before the deletion"
    );

    // Deleted: the key stops at once, the tenant says so until it is gone.
    let deleted = s.cli(&["tenant", "delete", "doomed"]);
    assert_eq!(deleted["state"], "deleting", "{deleted}");
    let (status, _) = s.get(&doomed, "/v1/logs").await;
    assert_eq!(status, 401, "a deleted tenant's key still reads");
    let (status, t) = s.admin(Method::GET, "/v1/admin/tenants/doomed", None).await;
    assert_eq!((status, &t["state"]), (200, &json!("deleting")));
    let (status, err) = s
        .admin(
            Method::PATCH,
            "/v1/admin/tenants/doomed",
            Some(json!({"state": "active"})),
        )
        .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (409, &json!("tenant_deleting")),
        "{err}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _) = s.admin(Method::GET, "/v1/admin/tenants/doomed", None).await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "the deletion never finished");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(s.metric("loggerhub_tenants_deleted_total").await >= 1.0);
    let (_, list) = s.admin(Method::GET, "/v1/admin/tenants", None).await;
    assert!(
        !list["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .any(|t| t["slug"] == "doomed"),
        "{list}"
    );

    // Nothing of it is left: on disk, and as a new tenant of the same name
    // sees it.
    if !distributed {
        for dir in [
            "raw/logs/doomed",
            "index/doomed",
            "plugins/doomed",
            "dead-letters/doomed",
        ] {
            assert_eq!(count_files(&s.data_dir.join(dir)), 0, "{dir} is not empty");
        }
    }
    let reborn = s.tenant_on("doomed", "trickle").await;
    // Its queued entries went with it: none reaches the new tenant of the
    // same name, and neither do its dead letters.
    s.idle().await;
    assert_eq!(seen(s, &reborn, "queued").await, (0, 0, 0));
    let (_, letters) = s.get(&reborn, "/v1/dead-letters").await;
    assert_eq!(letters["total"], 0, "{letters}");
    assert_eq!(seen(s, &reborn, "doomed").await, (0, 0, 0));
    assert_eq!(seen(s, &reborn, "back").await, (0, 0, 0));
    let (_, plugins) = s.get(&reborn, "/v1/plugins").await;
    assert!(
        !plugins.to_string().contains("\"pii\""),
        "the deleted tenant's plugin came back: {plugins}"
    );
    let (_, pipeline) = s.get(&reborn, "/v1/pipeline").await;
    assert!(!pipeline.to_string().contains("pii"), "{pipeline}");
    // Its rate debt went too: the new tenant's first request is taken.
    let (status, body) = s
        .post_logs(&reborn, "application/x-ndjson", stamped("reborn", 1, Duration::ZERO))
        .await;
    assert_eq!(status, 202, "the deleted tenant's debt passed to its name: {body}");

    // The bystander kept everything.
    let (listed, searched, _) = seen(s, &bystander, "bystander").await;
    assert_eq!((listed, searched), (15, 15));
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_embedded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), "lifecycle", false).await;
    lifecycle(&s, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_distributed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), "lifecycle", true).await;
    lifecycle(&s, true).await;
}
