//! The time window (issue 21, point 3; DESIGN §6, time), through the real
//! binary: a record older than its plan keeps logs is refused at ingest,
//! never taken and deleted; a text line the parser stamps so is
//! dead-lettered with the reason and blames no plugin; a record stamped far
//! ahead is stored at its arrival with its own time kept; 0 means "none".

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Server, embedded_with};

/// A day's retention: `week`, from a plans file.
async fn server() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let plans = dir.path().join("plans.json");
    let plan = json!({"logs_per_second": 100_000, "bytes_per_second": 100_000_000, "burst_seconds": 10,
        "daily_logs": 1_000_000_000u64, "daily_bytes": 1u64 << 40, "retention_days": 1,
        "plugin_cpu_seconds_per_day": 3600, "max_plugins": 10, "max_versions": 5, "dead_letter_cap": 100});
    std::fs::write(&plans, json!({ "day": plan }).to_string()).expect("plans");
    let (d, s) = embedded_with(&["--plans", plans.to_str().expect("path")]).await;
    let key = s.tenant_on("clock", "day").await;
    (d, s, key)
}

fn ago(d: Duration) -> String {
    loggerhub::model::format_ts(loggerhub::model::now_ns() - i64::try_from(d.as_nanos()).expect("fits"))
}

#[tokio::test(flavor = "multi_thread")]
async fn old_is_refused_far_ahead_is_stored_at_arrival() {
    let (_d, s, key) = server().await;

    // Older than the day: refused whole, naming the record and the bound.
    let body = format!(
        "{}\n{}",
        json!({"message": "fresh"}),
        json!({"message": "stale", "timestamp": ago(Duration::from_secs(2 * 86_400))})
    );
    let (status, err) = s.post_logs(&key, "application/x-ndjson", body).await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (400, &json!("timestamp_out_of_range")),
        "{err}"
    );
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("record 2: ") && message.contains("retention of 1 day"),
        "{message}"
    );

    // 0 is "no time": stamped on arrival. An hour old is kept as it is. A
    // year ahead is stored at its arrival, its own time kept.
    let ahead = "2199-12-31T23:59:59Z";
    let body = [
        json!({"message": "zero", "timestamp": 0}),
        json!({"message": "hour", "timestamp": ago(Duration::from_secs(3600))}),
        json!({"message": "ahead", "timestamp": ahead}),
    ]
    .map(|v| v.to_string())
    .join("\n");
    let before = loggerhub::model::now_ns();
    let (status, got) = s.post_logs(&key, "application/x-ndjson", body).await;
    assert_eq!((status, &got["accepted"]), (202, &json!(3)), "{got}");
    s.idle().await;
    let after = loggerhub::model::now_ns();
    let (_, page) = s.get(&key, "/v1/logs").await;
    let hits = page["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 3, "{page}");
    let find = |m: &str| hits.iter().find(|h| h["message"] == m).cloned().unwrap_or(Value::Null);
    let ts = |h: &Value| loggerhub::model::parse_ts(h["timestamp"].as_str().unwrap_or_default()).unwrap_or(0);
    for arrived in [find("zero"), find("ahead")] {
        assert!(
            (before..=after).contains(&ts(&arrived)),
            "not stored at its arrival: {arrived}"
        );
    }
    assert_eq!(find("ahead")["attributes"]["original_timestamp"], ahead);
    assert!(find("zero")["attributes"].get("original_timestamp").is_none());
    assert!(ts(&find("hour")) < before - 3_500_000_000_000, "{}", find("hour"));
    // The list's newest end is now, not 2199.
    assert!(ts(&hits[0]) <= after, "{page}");
    // A raw object is named after its newest record's time, which
    // retention reads: none is dated past the grace, so none is pinned.
    let mut objects = Vec::new();
    let mut dirs = vec![s.data_dir.join("raw/logs/clock")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("raw dir").flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                objects.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    assert!(!objects.is_empty());
    let grace_ms = (after + 600_000_000_000) / 1_000_000;
    for name in &objects {
        let ms: i64 = name
            .split('.')
            .next()
            .and_then(|stem| stem.rsplit('-').next())
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("{name}: not named <batch>-<unix ms>"));
        assert!(
            ms <= grace_ms,
            "{name} is dated past the grace: retention would keep it"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn old_text_lines_are_dead_lettered_and_blame_no_plugin() {
    let (_d, s, key) = server().await;
    // Six batches of lines stamped a week ago: more than the five failing
    // batches that disable a plugin.
    let week = ago(Duration::from_secs(7 * 86_400));
    let old_line = format!(
        "{} ERROR payment gateway down",
        week.replace('T', " ").trim_end_matches('Z')
    );
    for _ in 0..6 {
        let (status, body) = s.post_logs(&key, "text/plain", format!("{old_line}\n{old_line}")).await;
        assert_eq!(status, 202, "{body}");
    }
    s.idle().await;
    let (_, letters) = s.get(&key, "/v1/dead-letters?limit=100").await;
    let letters = letters["dead_letters"].as_array().cloned().unwrap_or_default();
    assert_eq!(letters.len(), 6, "{letters:?}");
    for l in &letters {
        assert_eq!(l["kind"], "timestamp_out_of_range", "{l}");
        assert!(
            l["reason"].as_str().is_some_and(|r| r.contains("retention of 1 day")),
            "{l}"
        );
        assert_eq!(l["records"], 2, "{l}");
    }
    // The parser did its job: it is not disabled, and a line of today
    // goes through it.
    let (_, plugins) = s.get(&key, "/v1/plugins").await;
    let disabled: Vec<&Value> = plugins["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter(|p| !p["disabled"].is_null())
        .collect();
    assert!(disabled.is_empty(), "{disabled:?}");
    let (status, _) = s
        .post_logs(
            &key,
            "text/plain",
            format!(
                "{} WARN card declined",
                ago(Duration::ZERO).replace('T', " ").trim_end_matches('Z')
            ),
        )
        .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = s.get(&key, "/v1/logs").await;
        if page["total"] == 1 {
            assert_eq!(page["hits"][0]["level"], "WARN", "{page}");
            break;
        }
        assert!(Instant::now() < deadline, "today's line never stored: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
