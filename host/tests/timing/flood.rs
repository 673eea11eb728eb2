//! A flood held at its rate (issue 11, point 2): while one tenant sends
//! as fast as four connections go, on the `free` plan, another tenant's
//! requests all get 202 and its logs are searchable within 2 s (p99), on
//! the embedded and the distributed backends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::common::{Server, distributed_with, embedded_with, ndjson_at};
use crate::fairness::{probe_latencies, report};

/// A tenant floods from four connections on the `free` plan while another
/// sends as in the fairness tests: the other's requests all get 202 and
/// its logs are searchable within 2 s (p99).
async fn a_flood_is_held_at_its_rate(s: &Server, run: &str, what: &str) {
    let _machine = crate::timing_exclusive().await;
    let flooder = s.tenant_on(&format!("flood{run}"), "free").await;
    let healthy = s.tenant_on(&format!("quiet{run}"), "free").await;
    let stop = AtomicBool::new(false);
    let (accepted, refused) = (AtomicU64::new(0), AtomicU64::new(0));
    // Stamped an hour ago: `free` keeps a week.
    let batch = ndjson_at("flood", 200, "web", loggerhub::model::now_ns() - 3_600_000_000_000);
    let connections = (0..4).map(|_| async {
        while !stop.load(Ordering::Relaxed) {
            match s.post_logs(&flooder, "application/x-ndjson", batch.clone()).await.0 {
                202 => accepted.fetch_add(1, Ordering::Relaxed),
                429 => refused.fetch_add(1, Ordering::Relaxed),
                other => panic!("flood got {other}"),
            };
        }
    });
    let started = Instant::now();
    let probes = async {
        let waits = probe_latencies(s, &healthy, run).await;
        stop.store(true, Ordering::Relaxed);
        waits
    };
    let (waits, _) = tokio::join!(probes, futures::future::join_all(connections));
    let (accepted, refused) = (accepted.into_inner(), refused.into_inner());
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!("{what}: the flood got {accepted} batches of 200 accepted, {refused} refused, in {elapsed:.1} s");
    // At 1,000 logs/s with a 10 s burst: fifty batches at once, then five
    // a second (and one for rounding); the rest were refused.
    let bound = 50.0 + 5.0 * elapsed + 1.0;
    assert!(
        refused > accepted && (accepted as f64) <= bound,
        "accepted {accepted} (bound {bound:.0}), refused {refused}"
    );
    report(what, &waits);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_is_held_at_its_rate_embedded() {
    let (_d, s) = embedded_with(&[]).await;
    a_flood_is_held_at_its_rate(&s, "e", "flood at its rate, embedded").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_is_held_at_its_rate_distributed() {
    let (_d, s, run) = distributed_with("flood", &[]).await;
    a_flood_is_held_at_its_rate(&s, &run, "flood at its rate, distributed").await;
}

/// How long the flooder sends (issue 23, point 8).
const FLOOD_FOR: std::time::Duration = std::time::Duration::from_secs(40);
/// The healthy tenant's logs during the flood, and how far apart.
const FLOOD_PROBES: usize = 48;
const FLOOD_PROBE_EVERY: std::time::Duration = std::time::Duration::from_millis(700);

/// A tenant whose plan allows more than the machine can process
/// (`enterprise`: 100,000 logs/s) sends as fast as eight connections go for
/// 40 s, past the queue's room; another tenant sends a log every 0.7 s from
/// the fourth second on. Each of its logs is searchable within 2 s (p99)
/// of its 202, and its requests are not refused for the room the flooder
/// took.
async fn a_flood_past_the_machine(s: &Server, run: &str, what: &str) {
    let _machine = crate::timing_exclusive().await;
    let flooder = s.tenant_on(&format!("deluge{run}"), "enterprise").await;
    let healthy = s.tenant_on(&format!("steady{run}"), "free").await;
    let stop = AtomicBool::new(false);
    let (accepted, refused) = (AtomicU64::new(0), AtomicU64::new(0));
    // Records of about 300 bytes, as the bench's: the queue's room (512 MiB)
    // is gone in seconds at the rate the plan allows.
    let stamp = loggerhub::model::format_ts(loggerhub::model::now_ns() - 3_600_000_000_000);
    let batch: String = (0..1_000)
        .map(|i| {
            serde_json::json!({"service": "web", "level": "INFO", "timestamp": stamp,
                "message": format!("GET /api/v1/orders/{i} completed with status 200 in {}ms for user {i}", i % 900),
                "full_log": format!("request id r{i:010} handled by worker {} upstream latency {}ms {}", i % 32, i % 250, "x".repeat(120)),
                "attributes": {"region": "eu-west-1", "host": format!("web-{:02}", i % 16)}})
            .to_string() + "\n"
        })
        .collect();
    let connections = (0..8).map(|_| async {
        while !stop.load(Ordering::Relaxed) {
            match s.post_logs(&flooder, "application/x-ndjson", batch.clone()).await.0 {
                202 => accepted.fetch_add(1, Ordering::Relaxed),
                429 | 503 => refused.fetch_add(1, Ordering::Relaxed),
                other => panic!("flood got {other}"),
            };
        }
    });
    let started = Instant::now();
    let healthy_refused = AtomicU64::new(0);
    let probes = async {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        let probes = (0..FLOOD_PROBES).map(|i| {
            let (healthy, healthy_refused) = (&healthy, &healthy_refused);
            async move {
                tokio::time::sleep(FLOOD_PROBE_EVERY * i as u32).await;
                let word = format!("steady{run}n{i}");
                let body = serde_json::json!({"service": "web", "message": format!("healthy {word}")}).to_string();
                let (status, resp) = s.post_logs(healthy, "application/json", body).await;
                if status != 202 {
                    healthy_refused.fetch_add(1, Ordering::Relaxed);
                    panic!("the healthy tenant got {status} during the flood: {resp}");
                }
                let accepted = Instant::now();
                loop {
                    if !s.messages(healthy, &format!("/v1/search?q={word}")).await.is_empty() {
                        return accepted.elapsed();
                    }
                    assert!(
                        accepted.elapsed() < std::time::Duration::from_secs(90),
                        "{word} never became searchable"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        });
        let mut waits = futures::future::join_all(probes).await;
        waits.sort();
        waits
    };
    let stopper = async {
        tokio::time::sleep(FLOOD_FOR).await;
        stop.store(true, Ordering::Relaxed);
    };
    let (waits, _, _) = tokio::join!(probes, futures::future::join_all(connections), stopper);
    let depth = s.metric("loggerhub_queue_depth").await;
    eprintln!(
        "{what}: the flood got {} batches of 1,000 accepted, {} refused, in {:.1} s; {depth} entries still queued",
        accepted.into_inner(),
        refused.into_inner(),
        started.elapsed().as_secs_f64()
    );
    report(what, &waits);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_past_the_machine_embedded() {
    let (_d, s) = embedded_with(&[]).await;
    a_flood_past_the_machine(&s, "e", "flood past the machine, embedded").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_past_the_machine_distributed() {
    let (_d, s, run) = distributed_with("deluge", &[]).await;
    a_flood_past_the_machine(&s, &run, "flood past the machine, distributed").await;
}
