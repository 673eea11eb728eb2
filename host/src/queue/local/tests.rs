//! The embedded queue on a temporary directory: recovery, torn tails, the
//! memory budget, carrying forward, a full queue.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::LocalQueue;
use crate::queue::{Depth, Queue, QueueEntry};

fn entry(i: usize) -> QueueEntry {
    QueueEntry {
        tenant: "acme".into(),
        batch_id: ulid::Ulid::new(),
        received_at: i as i64,
        content_type: "application/json".into(),
        service: None,
        idempotent: false,
        body: Bytes::from(format!("{{\"message\":\"{i}\"}}")),
    }
}

#[tokio::test]
async fn unacked_entries_survive_reopen_and_acked_ones_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let q = LocalQueue::open(dir.path(), 1 << 30).expect("open");
        for i in 0..10 {
            q.push(entry(i)).await.expect("push");
        }
        let got = q.take(4, Duration::from_millis(10)).await.expect("take");
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(|d| !d.redelivered));
        q.ack(&[got[0].token, got[1].token]).await.expect("ack");
        // got[2], got[3] taken but never acked: redelivered after reopen.
        q.close();
    }
    let q = LocalQueue::open(dir.path(), 1 << 30).expect("reopen");
    assert_eq!(q.depth().entries, 8);
    let got = q.take(100, Duration::from_millis(10)).await.expect("take");
    let seen: Vec<i64> = got.iter().map(|d| d.entry.received_at).collect();
    assert_eq!(seen, (2..10).collect::<Vec<_>>());
    // After a restart any entry may have been processed already.
    assert!(got.iter().all(|d| d.redelivered));
    q.ack(&got.iter().map(|d| d.token).collect::<Vec<_>>())
        .await
        .expect("ack");
    assert_eq!(q.depth(), Depth::default());
    q.push(entry(10)).await.expect("push after ack");
    q.close();
    drop(q);
    let q = LocalQueue::open(dir.path(), 1 << 30).expect("reopen again");
    let got = q.take(100, Duration::from_millis(10)).await.expect("take");
    assert_eq!(got.iter().map(|d| d.entry.received_at).collect::<Vec<_>>(), vec![10]);
}

#[tokio::test]
async fn torn_tail_is_cut_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let q = LocalQueue::open(dir.path(), 1 << 30).expect("open");
        for i in 0..3 {
            q.push(entry(i)).await.expect("push");
        }
        q.close();
    }
    let seg = fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("segment-"))
        .expect("segment");
    let len = seg.metadata().expect("meta").len();
    OpenOptions::new()
        .write(true)
        .open(seg.path())
        .expect("open")
        .set_len(len - 3)
        .expect("truncate");
    let q = LocalQueue::open(dir.path(), 1 << 30).expect("reopen");
    assert_eq!(q.depth().entries, 2);
}

#[tokio::test]
async fn entries_past_the_memory_budget_are_read_back_from_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = entry(0).encoded_len() as u64;
    let q = LocalQueue::open_with_budget(dir.path(), 1 << 30, one * 3).expect("open");
    for i in 0..10 {
        q.push(entry(i)).await.expect("push");
    }
    assert_eq!(q.state.lock().resident, one * 3);
    let got = q.take(100, Duration::from_millis(10)).await.expect("take");
    let seen: Vec<i64> = got.iter().map(|d| d.entry.received_at).collect();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(got[9].entry.body, entry(9).body);
    q.ack(&got.iter().map(|d| d.token).collect::<Vec<_>>())
        .await
        .expect("ack");
    assert_eq!(q.state.lock().resident, 0);
    assert_eq!(q.depth(), Depth::default());
}

/// A lane that waits does not keep everyone's acked segments on disk,
/// nor have them all handed back after a restart: its entries are
/// carried to the tail, idempotent, in order.
#[tokio::test]
async fn a_waiting_lane_does_not_pin_the_segments_behind_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segments = |dir: &Path| {
        fs::read_dir(dir)
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("segment-"))
            .count()
    };
    {
        let q = LocalQueue::open_with(dir.path(), 1 << 30, 1 << 20, 2048).expect("open");
        for i in 0..2 {
            let mut held = entry(i);
            held.tenant = "held".into();
            q.push(held).await.expect("push");
        }
        // Another tenant's traffic, each entry taken and acked.
        for i in 0..200 {
            let mut busy = entry(100 + i);
            busy.tenant = "busy".into();
            q.push(busy).await.expect("push");
            let got = q.take_lane("busy", 10, 1 << 20).await.expect("take");
            q.ack(&got.iter().map(|d| d.token).collect::<Vec<_>>())
                .await
                .expect("ack");
        }
        assert!(segments(dir.path()) <= 3, "{} segments kept", segments(dir.path()));
        assert_eq!(q.depth().entries, 2);
        q.close();
    }
    let q = LocalQueue::open(dir.path(), 1 << 30).expect("reopen");
    let got = q.take(100, Duration::from_millis(10)).await.expect("take");
    let seen: Vec<(String, i64, bool)> = got
        .iter()
        .map(|d| (d.entry.tenant.clone(), d.entry.received_at, d.entry.idempotent))
        .collect();
    assert_eq!(seen[..2], [("held".into(), 0, true), ("held".into(), 1, true)]);
    // What a restart hands back of the others' acked entries is at
    // most what the last two segments hold (about thirty entries of 70
    // bytes to a segment of 2 KiB), not all 200.
    let again = seen.iter().filter(|(t, _, _)| t == "busy").count();
    assert!(again <= 60, "{again} acked entries handed back");
}

/// A lane taken from lately is being worked through: even sparse, its
/// entries stay where they are.
#[tokio::test]
async fn a_lane_being_worked_is_not_carried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = LocalQueue::open_with(dir.path(), 1 << 30, 1 << 20, 2048).expect("open");
    let mut next = entry(0);
    next.tenant = "worked".into();
    q.push(next).await.expect("push");
    assert!(q.take_lane("worked", 0, 1 << 20).await.expect("take").is_empty());
    for i in 0..200 {
        let mut busy = entry(100 + i);
        busy.tenant = "busy".into();
        q.push(busy).await.expect("push");
        let got = q.take_lane("busy", 10, 1 << 20).await.expect("take");
        q.ack(&got.iter().map(|d| d.token).collect::<Vec<_>>())
            .await
            .expect("ack");
    }
    assert_eq!(q.carried.load(Ordering::Relaxed), 0);
}

/// A backlog being worked through is not a waiting lane: segments full
/// of waiting entries are never written again, however many pile up.
#[tokio::test]
async fn a_backlog_is_not_carried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = LocalQueue::open_with(dir.path(), 1 << 30, 1 << 20, 1024).expect("open");
    for i in 0..100 {
        let mut waiting = entry(i);
        waiting.tenant = if i % 2 == 0 { "slow" } else { "fast" }.into();
        q.push(waiting).await.expect("push");
    }
    // The fast tenant's half is worked through; the slow one's waits,
    // half of every segment.
    let got = q.take_lane("fast", 100, 1 << 20).await.expect("take");
    q.ack(&got.iter().map(|d| d.token).collect::<Vec<_>>())
        .await
        .expect("ack");
    assert_eq!(q.carried.load(Ordering::Relaxed), 0);
    assert_eq!(q.depth().entries, 50);
}

#[tokio::test]
async fn full_queue_refuses_and_nack_redelivers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = entry(0).encoded_len() as u64;
    let q = LocalQueue::open(dir.path(), one * 2).expect("open");
    q.push(entry(0)).await.expect("push");
    q.push(entry(1)).await.expect("push");
    assert!(matches!(q.push(entry(2)).await, Err(e) if e.kind == crate::error::ErrorKind::Full));
    let got = q.take(1, Duration::from_millis(10)).await.expect("take");
    q.nack(&[got[0].token]).await.expect("nack");
    let again = q.take(1, Duration::from_millis(10)).await.expect("take");
    assert_eq!(again[0].token, got[0].token);
    assert!(!got[0].redelivered && again[0].redelivered);
    q.ack(&[again[0].token]).await.expect("ack");
    q.push(entry(3)).await.expect("room again");
}
