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
