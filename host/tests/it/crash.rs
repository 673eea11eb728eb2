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
