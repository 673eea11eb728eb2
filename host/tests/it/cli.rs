//! The CLI for people (issue 12, point 7), run as a user runs it: the real
//! `loggerhub` binary against a real server. `import` sends gzip'd NDJSON
//! and text files, is cut off half-way and run again without a log stored
//! twice; `tail` shows new matching logs as they land, never another
//! tenant's; `search` prints a coloured table or NDJSON.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Server, embedded_with};

fn loggerhub(s: &Server, key: &str, state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_loggerhub"));
    c.env("LOGGERHUB_URL", &s.url)
        .env("LOGGERHUB_API_KEY", key)
        .env("LOGGERHUB_STATE_DIR", state);
    c
}

fn gzip(path: &Path, text: &str) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).expect("gzip");
    std::fs::write(path, gz.finish().expect("gzip")).expect("write");
}

/// Once every accepted entry went through the pipeline (nothing is left
/// in the queue: an entry leaves it only once every store has it), the
/// tenant holds exactly `expected` logs: neither fewer nor duplicates.
async fn settles_at(s: &Server, key: &str, expected: u64) {
    s.idle().await;
    let (_, v) = s.get(key, "/v1/logs?limit=1").await;
    assert_eq!(v["total"].as_u64(), Some(expected), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_is_resumed_after_interruption_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A slow plan, so that the import is still running when it is cut off.
    let plans = dir.path().join("plans.json");
    let plan = json!({"logs_per_second": 1500, "bytes_per_second": 1u64 << 30, "burst_seconds": 1,
        "daily_logs": 1_000_000_000u64, "daily_bytes": 1u64 << 40, "retention_days": 3650,
        "plugin_cpu_seconds_per_day": 3600, "max_plugins": 10, "max_versions": 5, "dead_letter_cap": 100});
    std::fs::write(&plans, json!({"slow": plan}).to_string()).expect("plans");
    let (_d, s) = embedded_with(&["--plans", plans.to_str().expect("path")]).await;
    let key = s.tenant_on("importer", "slow").await;
    let state = dir.path().join("state");

    let ndjson = dir.path().join("app.ndjson.gz");
    let lines: String = (0..6000)
        .map(|i| {
            format!(
                "{}\n",
                json!({"timestamp": "2025-10-10T12:00:00Z", "service": "shop", "level": if i % 100 == 0 { "error" } else { "info" },
                    "message": format!("order {i} placed by customer {}", i * 7)})
            )
        })
        .collect();
    gzip(&ndjson, &lines);
    let text = dir.path().join("error.log");
    let apache: String = (0..200)
        .map(|i| format!("[Thu Oct 09 14:{:02}:{:02}.123456 2025] [core:error] [pid {i}] AH00124: request {i} exceeded the limit\n", i / 60, i % 60))
        .collect();
    std::fs::write(&text, apache).expect("write");

    let import = |extra: &[&str]| {
        let mut c = loggerhub(&s, &key, &state);
        c.arg("import")
            .arg(&ndjson)
            .arg(&text)
            .args(["--chunk-bytes", "32768", "--json"])
            .args(extra);
        c
    };

    // Cut off once some chunks are in.
    let mut first = import(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("import");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let chunks = std::fs::read_dir(state.join("imports"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter_map(|v| v["chunks"].as_u64())
            .max()
            .unwrap_or_default();
        if chunks >= 2 {
            break;
        }
        assert!(
            first.try_wait().expect("wait").is_none(),
            "the import ended before it was cut off"
        );
        assert!(Instant::now() < deadline, "no progress recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().expect("kill");
    first.wait().expect("wait");

    // Run again: the chunks already in are skipped, the rest sent.
    let out = import(&[]).output().expect("import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sum: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(sum["files"], 2);
    assert_eq!(sum["lines"], 6200);
    assert_eq!(sum["accepted"], 6200, "{sum}");
    assert!(sum["chunks_skipped"].as_u64() >= Some(2), "{sum}");
    assert!(sum["logs_per_second"].as_f64() > Some(0.0), "{sum}");
    settles_at(&s, &key, 6200).await;

    // From scratch, progress forgotten: the idempotency keys still keep
    // every chunk from being stored twice.
    let out = import(&["--restart"]).output().expect("import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sum: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(sum["chunks_skipped"], 0, "{sum}");
    s.drained(12_400).await;
    settles_at(&s, &key, 6200).await;

    // The text went through the text parser: its own time and level.
    let hits = s.hits(&key, "/v1/search?q=AH00124&level=error&limit=1000", 200).await;
    assert_eq!(hits.len(), 200);
    assert!(hits.iter().all(|h| {
        h["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with("2025-10-09T14:0"))
    }));
    let errors = s.hits(&key, "/v1/logs?service=shop&level=error&limit=1000", 60).await;
    assert_eq!(errors.len(), 60);

    // A file that is not there, or a key that is wrong, is a clear error.
    let out = loggerhub(&s, &key, &state)
        .args(["import", "/no/such.log"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let out = loggerhub(&s, "lh_wrong", &state)
        .arg("import")
        .arg(&text)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_follows_new_matching_logs_of_its_tenant_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_d, s) = embedded_with(&[]).await;
    let key = s.tenant("tailer").await;
    let other = s.tenant("bystander").await;
    let (_, _) = s
        .post_logs(
            &key,
            "application/json",
            json!({"level": "error", "message": "old news"}).to_string(),
        )
        .await;
    s.drained(1).await;

    let mut tail = loggerhub(&s, &key, dir.path())
        .args(["tail", "level:error", "-n", "5", "--output", "ndjson"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tail");
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = tail.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = |what: &str| {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no {what}"));
        serde_json::from_str::<Value>(&line).expect("ndjson")
    };
    // The last matching logs first.
    assert_eq!(next("backlog")["message"], "old news");
    // Give the stream's first poll its turn: a tail starts from now.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for i in 0..3 {
        s.post_logs(
            &other,
            "application/json",
            json!({"level": "error", "message": format!("not yours {i}")}).to_string(),
        )
        .await;
        s.post_logs(
            &key,
            "application/json",
            json!({"level": "info", "message": format!("quiet {i}")}).to_string(),
        )
        .await;
        s.post_logs(
            &key,
            "application/json",
            json!({"level": "error", "message": format!("boom {i}")}).to_string(),
        )
        .await;
    }
    for i in 0..3 {
        let r = next("new error log");
        assert_eq!(r["message"], format!("boom {i}"), "{r}");
        assert_eq!(r["tenant"], "tailer");
    }
    tail.kill().expect("kill");
    let _ = tail.wait();
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "more than the matching logs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn live_tails_are_bounded_per_tenant_and_refuse_bad_queries() {
    let (_d, s) = embedded_with(&[]).await;
    let key = s.tenant("watcher").await;
    let other = s.tenant("neighbour").await;
    let open = |k: String| {
        let http = s.http.clone();
        let url = s.url("/v1/tail");
        async move { http.get(url).bearer_auth(k).send().await.expect("tail") }
    };
    let mut held = Vec::new();
    for _ in 0..32 {
        let r = open(key.clone()).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        held.push(r);
    }
    let r = open(key.clone()).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Another tenant is not held up by this one's watchers.
    assert_eq!(open(other.clone()).await.status(), 200);
    // A watcher that leaves frees its seat.
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = open(key.clone()).await;
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "a closed tail kept its seat");
        drop(r);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, v) = s.get(&key, "/v1/tail?q=%22unterminated").await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_query")));
    let (status, _) = s.get(&key, "/v1/tail?tenant=neighbour").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn search_prints_a_coloured_table_or_ndjson() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_d, s) = embedded_with(&[]).await;
    let key = s.tenant("reader").await;
    let body: String = (0..1500)
        .map(|i| format!("{}\n", json!({"service": "billing", "level": if i % 2 == 0 { "error" } else { "info" }, "message": format!("payment {i} failed\nTraceback: line two")})))
        .collect();
    s.post_logs(&key, "application/x-ndjson", body).await;
    s.drained(1500).await;

    let out = loggerhub(&s, &key, dir.path())
        .args([
            "search", "payment", "--level", "error", "--limit", "3", "--color", "always",
        ])
        .output()
        .expect("search");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows.iter()
            .all(|r| r.starts_with("\x1b[31m") && r.contains("ERROR  billing")),
        "{table}"
    );
    assert!(rows.iter().all(|r| r.ends_with(" failed")), "one line per log: {table}");

    // Past one page: the CLI follows the cursor.
    let out = loggerhub(&s, &key, dir.path())
        .args(["search", "--limit", "1200", "--output", "ndjson"])
        .output()
        .expect("search");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson"))
        .collect();
    assert_eq!(records.len(), 1200);
    let ids: std::collections::HashSet<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), 1200);

    // A saved search: kept, listed, run by name (its flags replaced by
    // those given), deleted.
    let run = |args: &[&str]| {
        let out = loggerhub(&s, &key, dir.path()).args(args).output().expect("run");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[
        "saved", "save", "errors", "payment", "--level", "error", "--range", "24h",
    ]);
    let listed = run(&["saved", "list"]);
    assert_eq!(
        listed.lines().nth(1),
        Some("errors  payment  level=error range=24h"),
        "{listed}"
    );
    let found = run(&["search", "--saved", "errors", "--limit", "1000", "--output", "ndjson"]);
    assert_eq!(found.lines().count(), 750, "the saved search's level applies");
    let found = run(&[
        "search", "--saved", "errors", "--level", "info", "--limit", "5", "--output", "ndjson",
    ]);
    assert_eq!(found.lines().count(), 5, "{found}");
    assert!(
        found.lines().all(|l| l.contains("\"INFO\"")),
        "a flag replaces the saved one: {found}"
    );
    run(&["saved", "delete", "errors"]);
    let out = loggerhub(&s, &key, dir.path())
        .args(["search", "--saved", "errors"])
        .output()
        .expect("search");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no saved search"));

    // Counting by a field: a table, or the API's JSON.
    let out = loggerhub(&s, &key, dir.path())
        .args(["aggregate", "--by", "level", "payment"])
        .output()
        .expect("aggregate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert!(
        rows[1].starts_with("ERROR") && rows[1].contains(" 750 ") && rows[1].ends_with("50.0%"),
        "{table}"
    );
    assert!(rows[3].starts_with("total") && rows[3].ends_with(" 1500"), "{table}");
    let out = loggerhub(&s, &key, dir.path())
        .args(["aggregate", "--by", "service", "--level", "info", "--json"])
        .output()
        .expect("aggregate");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["buckets"], json!([{"value": "billing", "count": 750}]), "{v}");
    // A series: a row per bucket, a column per value.
    let from = loggerhub::model::format_ts(loggerhub::model::now_ns() - 3_600_000_000_000);
    let out = loggerhub(&s, &key, dir.path())
        .args(["aggregate", "--by", "level", "--from", &from, "--interval", "1d"])
        .output()
        .expect("aggregate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["start", "ERROR", "INFO", "(other)", "(missing)"], "{table}");
    let counted: u64 = rows[1..]
        .iter()
        .map(|r| r[1].parse::<u64>().unwrap_or(0) + r[2].parse::<u64>().unwrap_or(0))
        .sum();
    assert_eq!(counted, 1500, "{table}");
    let out = loggerhub(&s, &key, dir.path())
        .args(["aggregate", "--by", "message"])
        .output()
        .expect("aggregate");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot count by"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
