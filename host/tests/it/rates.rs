//! Rate limits (issue 11, point 2): a tenant over its plan's ingest rate
//! gets 429 with `Retry-After` and a JSON error naming the limit, before its
//! body reaches the queue; with Redis the limit holds across ingest
//! processes. That the other tenants keep getting 202 while one floods is
//! timed in `tests/timing/flood.rs`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Server, distributed_with, embedded_with, ndjson};

/// Plans for these tests: `trickle` (20 logs/s, burst 2 s) and `drip`
/// (5 logs/s, burst 8 s), both with room in bytes.
fn plans_file(dir: &std::path::Path) -> std::path::PathBuf {
    let plan = |lps: u64, burst: u32| {
        json!({
            "logs_per_second": lps, "bytes_per_second": 1 << 20, "burst_seconds": burst,
            "daily_logs": 1_000_000, "daily_bytes": 1u64 << 30, "retention_days": 3650,
            "plugin_cpu_seconds_per_day": 60, "max_plugins": 2, "max_versions": 2, "dead_letter_cap": 10
        })
    };
    let path = dir.join("plans.json");
    std::fs::write(&path, json!({"trickle": plan(20, 2), "drip": plan(5, 8)}).to_string()).expect("write plans");
    path
}

async fn post(s: &Server, key: &str, body: String) -> (u16, Option<String>, Value) {
    let r = s
        .http
        .post(s.url("/v1/logs"))
        .bearer_auth(key)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

async fn over_the_rate(s: &Server, run: &str) {
    let key = s.tenant_on(&format!("trickle{run}"), "trickle").await;
    let other = s.tenant_on(&format!("steady{run}"), "trickle").await;
    // The burst: 40 logs, taken 10 at a time; the fifth request is refused.
    for i in 0..4 {
        let (status, _, body) = post(s, &key, ndjson(&format!("burst{i}"), 10, "web")).await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, retry, body) = post(s, &key, ndjson("over", 10, "web")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("logs_per_second")),
        "{body}"
    );
    // 10 logs at 20/s: half a second, said in whole seconds.
    assert_eq!(retry.as_deref(), Some("1"));
    // Another tenant on the same plan has buckets of its own.
    let (status, _, body) = post(s, &other, ndjson("other", 10, "web")).await;
    assert_eq!(status, 202, "{body}");
    // Waiting as told finds room.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, _, body) = post(s, &key, ndjson("later", 10, "web")).await;
    assert_eq!(status, 202, "{body}");
    // Nothing refused reached the stores: 50 of the tenant's logs, no "over".
    s.drained(0).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = s.get(&key, "/v1/logs?limit=1000").await;
        let n = page["hits"].as_array().map_or(0, Vec::len);
        if n == 50 {
            break;
        }
        assert!(n < 50 && Instant::now() < deadline, "{n} logs stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        s.messages(&key, "/v1/search?q=over").await.is_empty(),
        "a refused batch was stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_rate_embedded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = plans_file(dir.path());
    let (_d, s) = embedded_with(&["--plans", file.to_str().expect("path")]).await;
    over_the_rate(&s, "e").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_rate_distributed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = plans_file(dir.path());
    let (_d, s, run) = distributed_with("rates", &["--plans", file.to_str().expect("path")]).await;
    over_the_rate(&s, &run).await;
}

/// Two processes on one Redis take from the same buckets: what a tenant
/// gets through both together stays within one burst plus the rate.
#[tokio::test(flavor = "multi_thread")]
async fn the_limit_holds_across_processes_through_redis() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = plans_file(dir.path());
    let flags = ["--plans", file.to_str().expect("path")];
    let (_d1, s1, run) = distributed_with("ratesx", &flags).await;
    let (_d2, s2, _) = distributed_with("ratesx", &flags).await;
    let key = s1.tenant_on(&format!("drip{run}"), "drip").await;
    let started = Instant::now();
    let mut accepted = 0u64;
    let mut refused = 0u64;
    for i in 0..30 {
        let s = if i % 2 == 0 { &s1 } else { &s2 };
        match post(s, &key, ndjson(&format!("x{i}"), 5, "web")).await.0 {
            202 => accepted += 5,
            429 => refused += 1,
            other => panic!("status {other}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // One burst (40) plus the rate over the time taken, and one request's
    // worth of rounding; each process alone would have let 40 through.
    let bound = 40.0 + 5.0 * elapsed + 5.0;
    assert!(
        (accepted as f64) <= bound,
        "{accepted} logs through two processes in {elapsed:.1} s (bound {bound:.0})"
    );
    assert!(accepted >= 40 && refused > 0, "accepted {accepted}, refused {refused}");
}

/// A debt is paid, never forgotten: on Redis, a tenant that went deep
/// into debt with one large request (charged after it was decoded) keeps
/// the debt until its rate has paid it, instead of getting a full bucket
/// back when the key expires a minute later.
#[tokio::test(flavor = "multi_thread")]
async fn a_redis_debt_outlives_the_burst() {
    use loggerhub::ingest::rate::shared::RedisRates;
    use loggerhub::ingest::rate::{Rate, RateLimiter};
    let url = crate::common::service_url("REDIS_URL");
    let name = format!("debt{}", std::process::id());
    let rates = RedisRates::open(&url, &name).await.expect("redis");
    let rate = Rate {
        logs_per_second: 10,
        bytes_per_second: 1 << 30,
        burst_seconds: 10,
    };
    // 10,000 records over a bucket of 100: a debt of 990 s at 10 a second.
    rates.charge("deep", rate, 10_000, 0).await.expect("charge");
    let client = redis::Client::open(url.as_str()).expect("redis url");
    let mut con = client.get_multiplexed_async_connection().await.expect("redis");
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{name}:rate:deep"))
        .query_async(&mut con)
        .await
        .expect("ttl");
    assert!(ttl > 990, "the debt's key expires in {ttl} s: it would be forgotten");
    assert!(
        rates.check("deep", rate, 1, 0).await.is_err(),
        "a tenant in debt was let in"
    );
    // A full bucket's key goes once it would be full anyway.
    rates.take("light", rate, 1, 0).await.expect("take");
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{name}:rate:light"))
        .query_async(&mut con)
        .await
        .expect("ttl");
    assert!((1..=3).contains(&ttl), "{ttl}");
}
