//! Fair processing (issue 10, DESIGN §6 "time"): while one tenant's work is
//! slow or huge, another tenant's logs keep becoming searchable within
//! 2 s of their 202, on the local queue and on Redis Streams. Each test
//! first makes the hostile tenant's backlog, then sends the healthy
//! tenant's logs one by one and times each from its 202 to the first
//! search that finds it.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Server, distributed_with, embedded_with};
use loggerhub::runtime::builtin;

/// The healthy tenant's logs and how far apart they are sent.
const PROBES: usize = 40;
const PROBE_EVERY: Duration = Duration::from_millis(150);
/// The bound on the healthy tenant's p99, 202 → searchable.
const P99_BOUND: Duration = Duration::from_secs(2);

/// Sends `PROBES` logs as `key`, each with a word of its own, and returns
/// how long each took from its 202 to being found by search.
pub(crate) async fn probe_latencies(s: &Server, key: &str, run: &str) -> Vec<Duration> {
    let probes = (0..PROBES).map(|i| async move {
        tokio::time::sleep(PROBE_EVERY * i as u32).await;
        let word = format!("probe{run}n{i}");
        let body = json!({"service": "web", "message": format!("healthy {word}")}).to_string();
        let (status, resp) = s.post_logs(key, "application/json", body).await;
        assert_eq!(status, 202, "{resp}");
        let accepted = Instant::now();
        loop {
            let found = s.messages(key, &format!("/v1/search?q={word}")).await;
            if !found.is_empty() {
                return accepted.elapsed();
            }
            assert!(
                accepted.elapsed() < Duration::from_secs(60),
                "{word} never became searchable"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut out = futures::future::join_all(probes).await;
    out.sort();
    out
}

fn p(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub(crate) fn report(what: &str, waits: &[Duration]) {
    eprintln!(
        "fairness {what}: healthy tenant 202 → searchable over {} logs: p50 {:?}, p99 {:?}, max {:?}",
        waits.len(),
        p(waits, 0.5),
        p(waits, 0.99),
        waits.last().copied().unwrap_or_default()
    );
    assert!(
        p(waits, 0.99) < P99_BOUND,
        "{what}: the healthy tenant's p99 was {:?}",
        p(waits, 0.99)
    );
}

/// Posts `bodies` as `key` from a few connections at once.
async fn flood(s: &Server, key: &str, content_type: &str, bodies: Vec<String>) {
    let mut lanes: Vec<Vec<String>> = vec![Vec::new(); 8];
    for (i, b) in bodies.into_iter().enumerate() {
        lanes[i % 8].push(b);
    }
    let senders = lanes.into_iter().map(|bodies| async move {
        for b in bodies {
            let (status, resp) = s.post_logs(key, content_type, b).await;
            assert_eq!(status, 202, "{resp}");
        }
    });
    futures::future::join_all(senders).await;
}

/// (a) The hostile tenant's parser spends its whole CPU budget (2 s, and
/// again on the retry) on every one of its 2,000 queued entries.
async fn slow_parser(s: &Server, run: &str, what: &str) {
    let _machine = crate::timing_exclusive().await;
    let hog = s.tenant(&format!("hog{run}")).await;
    let wasm = std::fs::read(builtin::HOSTILE_PARSER_PATH).expect("fixture built by build.rs");
    assert_eq!(s.put_plugin(&hog, "parser", "spin", wasm).await.0, 201);
    assert_eq!(s.put_pipeline(&hog, &json!({"text_parser": "spin"})).await.0, 200);
    flood(
        s,
        &hog,
        "text/plain",
        (0..2_000).map(|i| format!("spin entry {i}\n")).collect(),
    )
    .await;
    let healthy = s.tenant(&format!("healthy{run}")).await;
    let waits = probe_latencies(s, &healthy, run).await;
    // The hostile work was still there all along: at 4 s an entry, nearly
    // all of it still waits.
    let depth = s.metric("loggerhub_queue_depth").await;
    assert!(depth > 1_500.0, "the hostile backlog was gone ({depth} entries left)");
    report(what, &waits);
}

/// (b) The hostile tenant has a million logs queued (1,000 requests of
/// 1,000 lines) when the healthy tenant starts sending.
async fn backlog(s: &Server, run: &str, what: &str) {
    let _machine = crate::timing_exclusive().await;
    let hog = s.tenant(&format!("bulk{run}")).await;
    let body: String = (0..1_000)
        .map(|i| format!("2025-10-10T12:00:00Z INFO bulk line {i} of a long backlog\n"))
        .collect();
    flood(s, &hog, "text/plain", vec![body; 1_000]).await;
    let queued = s.metric("loggerhub_queue_depth").await;
    let healthy = s.tenant(&format!("calm{run}")).await;
    let waits = probe_latencies(s, &healthy, run).await;
    let left = s.metric("loggerhub_queue_depth").await;
    eprintln!("fairness {what}: {queued} entries of 1,000 logs queued before the probes, {left} after");
    assert!(
        left > 500.0,
        "the backlog drained before the probes ended ({left} entries left)"
    );
    report(what, &waits);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_parser_does_not_delay_others_embedded() {
    let (_dir, s) = embedded_with(&[]).await;
    slow_parser(&s, "e", "slow parser, local queue").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_parser_does_not_delay_others_distributed() {
    let (_dir, s, run) = distributed_with("fairslow", &[]).await;
    slow_parser(&s, &run, "slow parser, Redis Streams").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_million_log_backlog_does_not_delay_others_embedded() {
    let (_dir, s) = embedded_with(&[]).await;
    backlog(&s, "e", "1M-log backlog, local queue").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_million_log_backlog_does_not_delay_others_distributed() {
    let (_dir, s, run) = distributed_with("fairbulk", &[]).await;
    backlog(&s, &run, "1M-log backlog, Redis Streams").await;
}
