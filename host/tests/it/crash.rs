//! Crash safety: every log that got 202 is searchable exactly once after a
//! SIGKILL, wherever the kill lands.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::{Server, ndjson};

async fn all_ids(s: &Server, key: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/logs?limit=1000&cursor={c}"),
            None => "/v1/logs?limit=1000".to_string(),
        };
        let (status, page) = s.get(key, &path).await;
        assert_eq!(status, 200);
        ids.extend(
            page["hits"]
                .as_array()
                .expect("hits")
                .iter()
                .filter_map(|h| h["id"].as_str().map(str::to_string)),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

async fn wait_idle(s: &Server) {
    for _ in 0..2400 {
        if s.metric("loggerhub_queue_depth").await == 0.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("queue never drained");
}

#[tokio::test]
async fn sigkill_with_unprocessed_batches_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An ingest-only process: every accepted batch is still in the queue
    // when it dies.
    let mut s = Server::start(dir.path(), &["--workers", "0"]).await;
    let key = s.tenant("acme").await;
    let mut accepted = 0u64;
    for b in 0..20 {
        let (status, body) = s
            .post_logs(&key, "application/x-ndjson", ndjson(&format!("batch{b}"), 50, "api"))
            .await;
        assert_eq!(status, 202);
        accepted += body["accepted"].as_u64().expect("accepted");
    }
    assert_eq!(s.metric("loggerhub_queue_depth").await, 20.0);
    s.kill();

    let s = Server::start(dir.path(), &[]).await;
    s.drained(accepted).await;
    let ids = all_ids(&s, &key).await;
    assert_eq!(ids.len() as u64, accepted);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "duplicates in the metadata store"
    );
    let (_, page) = s.get(&key, "/v1/search?q=batch7&limit=1000").await;
    assert_eq!(page["total"], 50, "index holds each log once");
    let (_, page) = s.get(&key, "/v1/search?limit=1").await;
    assert_eq!(page["total"].as_u64(), Some(accepted));
}

#[tokio::test]
async fn sigkill_during_processing_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start(dir.path(), &[]).await;
    let key = s.tenant("acme").await;
    let mut accepted = 0u64;
    // Keep ingesting while the processor works, then kill it mid-stream.
    for b in 0..60 {
        let (status, body) = s
            .post_logs(&key, "application/x-ndjson", ndjson(&format!("wave{b}"), 200, "api"))
            .await;
        assert_eq!(status, 202);
        accepted += body["accepted"].as_u64().expect("accepted");
        if b == 40 {
            break;
        }
    }
    let processed_before = s.metric("loggerhub_logs_processed_total").await as u64;
    s.kill();
    assert!(
        processed_before < accepted,
        "the kill should land with work left ({processed_before}/{accepted})"
    );

    let s = Server::start(dir.path(), &[]).await;
    wait_idle(&s).await;
    let ids = all_ids(&s, &key).await;
    assert_eq!(ids.len() as u64, accepted);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    let (_, page) = s.get(&key, "/v1/search?limit=1").await;
    assert_eq!(page["total"].as_u64(), Some(accepted));
    for b in [0, 20, 40] {
        let (_, page) = s.get(&key, &format!("/v1/search?q=wave{b}&limit=1")).await;
        assert_eq!(page["total"], 200, "wave{b}");
    }
}

/// A tmpfs mounted for a test, unmounted when it ends.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (make test runs as root here)"
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The queue on a disk that fills up and is freed again: appends that
/// failed leave nothing behind that hides a later, acknowledged entry, and
/// every entry that got 202 is processed after a restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_never_costs_an_acknowledged_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let queue = data.join("queue");
    let _tmpfs = Tmpfs::mount(&queue, "1m");
    let filler = queue.join("filler");
    let fill_leaving = |free: usize| {
        std::fs::write(&filler, vec![0u8; 1024 * 1024 - free]).expect("filler");
    };
    fill_leaving(8 * 1024);
    let mut s = Server::start(&data, &[]).await;
    let key = s.tenant("acme").await;
    let (mut accepted, mut refused) = (Vec::new(), 0);
    let post = |i: usize| ndjson(&format!("disk{i}"), 100, "api");
    // Full from the first append (which opens the first segment), then
    // room for a few, then free.
    for (free, requests) in [(8 * 1024, 0..3), (100 * 1024, 3..13)] {
        fill_leaving(free);
        for i in requests {
            match s.post_logs(&key, "application/x-ndjson", post(i)).await.0 {
                202 => accepted.push(i),
                status => {
                    assert_eq!(status, 503, "a full disk is a 503");
                    refused += 1;
                }
            }
        }
    }
    assert!(
        refused >= 4 && !accepted.is_empty(),
        "accepted {accepted:?}, refused {refused}"
    );
    std::fs::remove_file(&filler).expect("free the disk");
    for i in 13..18 {
        assert_eq!(s.post_logs(&key, "application/x-ndjson", post(i)).await.0, 202);
        accepted.push(i);
    }
    s.kill();
    let s = Server::start(&data, &[]).await;
    let want = accepted.len() * 100;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ids = all_ids(&s, &key).await;
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "a log stored twice");
        if ids.len() == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of the {want} logs that got 202 are stored",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
