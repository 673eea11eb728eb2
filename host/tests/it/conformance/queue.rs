//! The `Queue` conformance suite: every implementation must pass it
//! unchanged (host/tests/stores.rs runs it on the local queue and on Redis).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use loggerhub::error::ErrorKind;
use loggerhub::queue::{Delivery, Queue, QueueEntry};

/// Opens the queue called `name` with room for `max_bytes`; opening the same
/// name again after dropping the first is a restart of the process.
pub type Open<'a> = &'a (dyn Fn(String, u64) -> BoxFuture<'static, Arc<dyn Queue>> + Sync);

pub fn entry(i: i64) -> QueueEntry {
    QueueEntry {
        tenant: "acme".into(),
        batch_id: ulid::Ulid::from_parts(1_760_000_000_000 + i as u64, i as u128),
        received_at: i,
        content_type: "application/x-ndjson".into(),
        service: (i % 2 == 0).then(|| "web".to_string()),
        idempotent: i % 3 == 0,
        body: Bytes::from(format!("{{\"message\":\"entry {i}\"}}")),
    }
}

/// Takes until `n` deliveries arrived or `within` passed.
pub async fn take_n(q: &dyn Queue, n: usize, within: Duration) -> Vec<Delivery> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        got.extend(q.take(n - got.len(), Duration::from_millis(100)).await.expect("take"));
    }
    got
}

fn tokens(d: &[Delivery]) -> Vec<u64> {
    d.iter().map(|d| d.token).collect()
}

pub async fn run(open: Open<'_>, name: &str) {
    // Push, take in order, intact.
    let q = open(format!("{name}-main"), 1 << 30).await;
    q.ping().await.expect("ping");
    for i in 0..5 {
        q.push(entry(i)).await.expect("push");
    }
    assert_eq!(q.depth().entries, 5);
    let bodies: u64 = (0..5).map(|i| entry(i).body.len() as u64).sum();
    assert!(q.depth().bytes >= bodies, "depth counts {} bytes", q.depth().bytes);
    let got = take_n(q.as_ref(), 5, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 5);
    for (i, d) in got.iter().enumerate() {
        assert_eq!(d.entry, entry(i as i64), "entry {i} changed in the queue");
        assert!(!d.redelivered);
    }
    assert!(
        q.take(5, Duration::from_millis(50)).await.expect("take").is_empty(),
        "taken entries were delivered twice"
    );

    // Ack removes; nack hands back for another delivery.
    q.ack(&tokens(&got[..2])).await.expect("ack");
    assert_eq!(q.depth().entries, 3);
    q.nack(&tokens(&got[2..3])).await.expect("nack");
    let again = take_n(q.as_ref(), 1, Duration::from_secs(5)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].entry, entry(2));
    assert!(again[0].redelivered);
    q.ack(&tokens(&again)).await.expect("ack");

    // A restart delivers what was taken and never acked, marked redelivered.
    drop(q);
    let q = open(format!("{name}-main"), 1 << 30).await;
    let back = take_n(q.as_ref(), 2, Duration::from_secs(10)).await;
    let mut seen: Vec<i64> = back.iter().map(|d| d.entry.received_at).collect();
    seen.sort_unstable();
    assert_eq!(seen, vec![3, 4], "unacked entries lost or acked ones back");
    assert!(back.iter().all(|d| d.redelivered));
    q.ack(&tokens(&back)).await.expect("ack");
    assert_eq!(q.depth().entries, 0);
    assert_eq!(q.depth().bytes, 0);

    // An empty queue waits about `wait`, then answers nothing.
    let started = Instant::now();
    assert!(q.take(1, Duration::from_millis(200)).await.expect("take").is_empty());
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(q);

    // Bounded: past its bytes the queue refuses, until entries are acked.
    // Entries 0 and 6 have the same size (12 is larger); the queue's own
    // count of one sets the bound.
    let probe = open(format!("{name}-probe"), 1 << 30).await;
    probe.push(entry(0)).await.expect("push");
    let one = probe.depth().bytes;
    drop(probe);
    let q = open(format!("{name}-small"), 2 * one).await;
    q.push(entry(0)).await.expect("push");
    q.push(entry(6)).await.expect("push");
    assert!(
        matches!(q.push(entry(12)).await, Err(e) if e.kind == ErrorKind::Full),
        "over capacity accepted"
    );
    let got = take_n(q.as_ref(), 1, Duration::from_secs(5)).await;
    q.ack(&tokens(&got)).await.expect("ack");
    q.push(entry(0)).await.expect("room again after ack");
    drop(q);

    lanes(open, name).await;
    together(open, name).await;
}

/// Pushes that arrive at once (ingest's handlers on many connections) are
/// each kept once, in each pusher's order, counted in their lanes and
/// bytes; and past the bound exactly the entries that do not fit are
/// refused, however the implementation groups them.
async fn together(open: Open<'_>, name: &str) {
    let q = open(format!("{name}-together"), 1 << 30).await;
    let pushers = (0..8).map(|p| {
        let q = q.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                let tenant = ["ta", "tb", "tc", "td"][p % 4];
                q.push(of(tenant, p as i64 * 1_000 + i)).await.expect("push");
            }
        })
    });
    for p in futures::future::join_all(pushers).await {
        p.expect("pusher");
    }
    // Counted where the queue keeps its counts: a restart reads them back.
    drop(q);
    let q = open(format!("{name}-together"), 1 << 30).await;
    assert_eq!(q.depth().entries, 320);
    assert_eq!(
        lane_counts(q.as_ref()).await,
        ["ta", "tb", "tc", "td"].map(|t| (t.to_string(), 80)).to_vec()
    );
    let mut all = Vec::new();
    for tenant in ["ta", "tb", "tc", "td"] {
        let got = q.take_lane(tenant, 1_000, usize::MAX).await.expect("take");
        assert!(got.iter().all(|d| d.entry.tenant == tenant));
        for p in 0..8 {
            let mine: Vec<i64> = arrivals(&got).into_iter().filter(|a| a / 1_000 == p).collect();
            assert!(
                mine.is_sorted(),
                "pusher {p}'s entries out of order in {tenant}: {mine:?}"
            );
        }
        all.extend(got);
    }
    let mut seen = arrivals(&all);
    seen.sort_unstable();
    let expected: Vec<i64> = (0..8).flat_map(|p| (0..40).map(move |i| p * 1_000 + i)).collect();
    assert_eq!(seen, expected, "an entry lost or kept twice");
    q.ack(&tokens(&all)).await.expect("ack");
    assert_eq!(q.depth().bytes, 0);
    drop(q);

    // 40 same-sized entries at once into room for 10 of them.
    let sized = |tenant: &str, i: i64| QueueEntry {
        service: Some("web".into()),
        idempotent: false,
        ..of(tenant, i)
    };
    let probe = open(format!("{name}-together-probe"), 1 << 30).await;
    probe.push(sized("ta", 100)).await.expect("push");
    let one = probe.depth().bytes;
    drop(probe);
    let q = open(format!("{name}-together-small"), 10 * one).await;
    let pushes = (0..40).map(|i| {
        let q = q.clone();
        let entry = sized(["ta", "tb"][i % 2], 100 + i as i64);
        tokio::spawn(async move { q.push(entry).await })
    });
    let (mut added, mut full) = (0, 0);
    for r in futures::future::join_all(pushes).await {
        match r.expect("push") {
            Ok(()) => added += 1,
            Err(e) if e.kind == ErrorKind::Full => full += 1,
            Err(e) => panic!("push failed: {e}"),
        }
    }
    assert_eq!((added, full), (10, 30), "the bound let through {added}");
    drop(q);
    let q = open(format!("{name}-together-small"), 10 * one).await;
    assert_eq!(q.depth().entries, 10);
    assert_eq!(q.depth().bytes, 10 * one);
    assert_eq!(lane_counts(q.as_ref()).await, vec![("ta".into(), 5), ("tb".into(), 5)]);
}

fn of(tenant: &str, i: i64) -> QueueEntry {
    QueueEntry {
        tenant: tenant.into(),
        ..entry(i)
    }
}

pub async fn lane_counts(q: &dyn Queue) -> Vec<(String, u64)> {
    let mut lanes: Vec<(String, u64)> = q
        .lanes()
        .await
        .expect("lanes")
        .ready
        .into_iter()
        .map(|l| (l.tenant, l.entries))
        .collect();
    lanes.sort();
    lanes
}

fn arrivals(d: &[Delivery]) -> Vec<i64> {
    d.iter().map(|d| d.entry.received_at).collect()
}

/// Each tenant's entries wait in a lane of their own: taking one tenant's
/// never hands out another's, in order, with hand-backs first.
async fn lanes(open: Open<'_>, name: &str) {
    let q = open(format!("{name}-lanes"), 1 << 30).await;
    for (tenant, i) in [("a", 0), ("b", 1), ("a", 2), ("b", 3), ("a", 4)] {
        q.push(of(tenant, i)).await.expect("push");
    }
    assert_eq!(lane_counts(q.as_ref()).await, vec![("a".into(), 3), ("b".into(), 2)]);
    let b = q.take_lane("b", 10, usize::MAX).await.expect("take b");
    assert_eq!(arrivals(&b), vec![1, 3]);
    assert!(b.iter().all(|d| d.entry.tenant == "b"));
    assert_eq!(lane_counts(q.as_ref()).await, vec![("a".into(), 3)]);
    assert!(q.take_lane("b", 10, usize::MAX).await.expect("take b").is_empty());
    assert!(q.take_lane("nobody", 10, usize::MAX).await.expect("take").is_empty());

    let a = q.take_lane("a", 2, usize::MAX).await.expect("take a");
    assert_eq!(arrivals(&a), vec![0, 2]);
    // Released unstarted: first in its lane again, not marked redelivered.
    q.release(&tokens(&a)).await.expect("release");
    assert_eq!(lane_counts(q.as_ref()).await, vec![("a".into(), 3)]);
    // A byte cap stops the take, but one entry is always taken.
    let one = q.take_lane("a", 10, 1).await.expect("take a");
    assert_eq!(arrivals(&one), vec![0]);
    assert!(!one[0].redelivered);
    q.nack(&tokens(&one)).await.expect("nack");
    let rest = q.take_lane("a", 10, usize::MAX).await.expect("take a");
    assert_eq!(arrivals(&rest), vec![0, 2, 4]);
    assert_eq!(
        rest.iter().map(|d| d.redelivered).collect::<Vec<_>>(),
        vec![true, false, false]
    );

    // `wait` answers a push made after the look, and only waits out its
    // time when nothing changed.
    let mark = q.lanes().await.expect("lanes").mark;
    let started = Instant::now();
    q.wait(mark, Duration::from_millis(300)).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "wait returned after {waited:?} with nothing new"
    );
    let mark = q.lanes().await.expect("lanes").mark;
    let pusher = {
        let q = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            q.push(of("c", 5)).await.expect("push");
        })
    };
    let started = Instant::now();
    q.wait(mark, Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a push did not wake the waiter"
    );
    pusher.await.expect("pusher");
    assert_eq!(lane_counts(q.as_ref()).await, vec![("c".into(), 1)]);
    let c = q.take_lane("c", 10, usize::MAX).await.expect("take c");
    q.ack(&tokens(&[b, rest, c].concat())).await.expect("ack");
    assert_eq!(q.depth().entries, 0);
    assert!(lane_counts(q.as_ref()).await.is_empty());
}
