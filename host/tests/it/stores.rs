//! One conformance suite per backend trait, run against the embedded and
//! the distributed implementation alike. The distributed ones use the real
//! servers `make test` starts (infra/local/services.sh): PostgreSQL at
//! `DATABASE_URL`, Redis at `REDIS_URL`, Garage (S3) at `OBJECT_STORE_URL`,
//! and the OpenSearch API at `OPENSEARCH_URL` (a real OpenSearch when the
//! caller names one, else osmem-server; the test prints which).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::common::service_url;
use futures::FutureExt;
use loggerhub::config::RawBackend;
use loggerhub::queue::Queue;
use loggerhub::queue::local::LocalQueue;
use loggerhub::queue::redis::RedisQueue;
use loggerhub::search::opensearch::OpenSearchIndex;
use loggerhub::search::tantivy::TantivyIndex;
use loggerhub::stores::postgres::PgStore;
use loggerhub::stores::raw::RawStore;
use loggerhub::stores::sqlite::SqliteStore;

/// How long an entry stays with a silent Redis consumer in these tests.
const CLAIM_IDLE: Duration = Duration::from_millis(300);

#[tokio::test]
async fn metadata_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("m.db")).await.expect("open");
    let (a, b) = crate::conformance::metadata::fresh_tenants();
    crate::conformance::metadata::run(&store, &a, &b).await;
    let (c, _) = crate::conformance::metadata::fresh_tenants();
    crate::conformance::metadata::counts(&store, &c).await;
}

#[tokio::test]
async fn metadata_postgres() {
    let store = PgStore::open(&service_url("DATABASE_URL"))
        .await
        .expect("connect to PostgreSQL");
    let (a, b) = crate::conformance::metadata::fresh_tenants();
    crate::conformance::metadata::run(&store, &a, &b).await;
    let (c, _) = crate::conformance::metadata::fresh_tenants();
    crate::conformance::metadata::counts(&store, &c).await;
    // Opening again finds the migrations applied and changes nothing.
    let reopened = PgStore::open(&service_url("DATABASE_URL")).await.expect("reopen");
    // Every session of the pool bounds its statements.
    for _ in 0..3 {
        assert_eq!(
            reopened.setting("statement_timeout").await.expect("setting").as_deref(),
            // What docs/API.md promises (a statement cancelled after 30 s,
            // answered 503), not the constant it is read from.
            Some("30s")
        );
    }
}

#[tokio::test]
async fn queue_local() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root: PathBuf = dir.path().to_path_buf();
    let open = move |name: String, max: u64| {
        let path = root.join(name);
        async move { LocalQueue::open(&path, max).expect("open local queue") as Arc<dyn Queue> }.boxed()
    };
    crate::conformance::queue::run(&open, "q").await;
}

fn redis_prefix() -> String {
    format!("lhtest-{}-{:08x}", std::process::id(), rand::random::<u32>())
}

#[tokio::test]
async fn queue_redis() {
    let url = service_url("REDIS_URL");
    let open = move |name: String, max: u64| {
        let url = url.clone();
        async move {
            Arc::new(
                RedisQueue::open(&url, &name, max, CLAIM_IDLE)
                    .await
                    .expect("open redis queue"),
            ) as Arc<dyn Queue>
        }
        .boxed()
    };
    crate::conformance::queue::run(&open, &redis_prefix()).await;
}

/// Pushes that arrive together share a script call; an entry Redis refuses
/// (its lane is not a stream: an operator's mistake) fails alone, and only
/// what was added is counted.
#[tokio::test]
async fn redis_pushes_that_arrive_together_share_a_call_and_fail_alone() {
    let url = service_url("REDIS_URL");
    let name = redis_prefix();
    let q = Arc::new(RedisQueue::open(&url, &name, 1 << 30, CLAIM_IDLE).await.expect("open"));
    let pushers = (0..8).map(|p| {
        let q = q.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                q.push(crate::conformance::queue::entry(p * 1_000 + i))
                    .await
                    .expect("push");
            }
        })
    });
    for p in futures::future::join_all(pushers).await {
        p.expect("pusher");
    }
    let calls = q.push_calls();
    assert!(calls <= 160, "320 pushes at once took {calls} calls");

    let client = redis::Client::open(url.as_str()).expect("client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    let _: () = redis::cmd("SET")
        .arg(format!("{name}:lane:broken"))
        .arg("not a stream")
        .query_async(&mut conn)
        .await
        .expect("set");
    let of = |tenant: &str, i: i64| loggerhub::queue::QueueEntry {
        tenant: tenant.into(),
        ..crate::conformance::queue::entry(i)
    };
    let before = q.push_calls();
    let pushes = (0..6).map(|i| {
        let (q, entry) = (q.clone(), of(if i == 2 { "broken" } else { "fine" }, 9_000 + i));
        tokio::spawn(async move { q.push(entry).await })
    });
    let results: Vec<_> = futures::future::join_all(pushes)
        .await
        .into_iter()
        .map(|r| r.expect("push"))
        .collect();
    assert_eq!(q.push_calls() - before, 1, "the six pushes were not one call");
    for (i, r) in results.iter().enumerate() {
        match (i, r) {
            (2, Err(e)) => assert_eq!(e.kind, loggerhub::error::ErrorKind::Corrupt),
            (2, Ok(())) => panic!("an entry for a lane that is not a stream was accepted"),
            (_, r) => assert!(r.is_ok(), "push {i} failed with the broken one: {r:?}"),
        }
    }
    let fine: u64 = (0..6)
        .filter(|i| *i != 2)
        .map(|i| of("fine", 9_000 + i).encode().len() as u64)
        .sum();
    let all: u64 = (0..8)
        .flat_map(|p| (0..40).map(move |i| crate::conformance::queue::entry(p * 1_000 + i).encode().len() as u64))
        .sum();
    drop(q);
    let q = RedisQueue::open(&url, &name, 1 << 30, CLAIM_IDLE)
        .await
        .expect("reopen");
    assert_eq!(q.depth().bytes, all + fine, "Redis counted the refused entry's bytes");
    assert_eq!(
        crate::conformance::queue::lane_counts(&q).await,
        vec![("acme".into(), 320), ("fine".into(), 5)],
        "the refused entry's lane was counted"
    );
}

/// Two processors share the stream: each entry goes to one of them, and the
/// entries a processor took and never acked go to the other one once it has
/// been silent for the claim delay.
#[tokio::test]
async fn redis_consumers_share_work_and_take_over_a_dead_ones_entries() {
    let url = service_url("REDIS_URL");
    let name = redis_prefix();
    let a = RedisQueue::open(&url, &name, 1 << 30, CLAIM_IDLE).await.expect("a");
    let b = RedisQueue::open(&url, &name, 1 << 30, CLAIM_IDLE).await.expect("b");
    for i in 0..20 {
        a.push(crate::conformance::queue::entry(i)).await.expect("push");
    }
    let from_a = a.take(10, Duration::from_millis(100)).await.expect("take a");
    let from_b = crate::conformance::queue::take_n(&b, 10, Duration::from_secs(5)).await;
    assert_eq!((from_a.len(), from_b.len()), (10, 10));
    let mut all: Vec<i64> = from_a.iter().chain(&from_b).map(|d| d.entry.received_at).collect();
    all.sort_unstable();
    assert_eq!(all, (0..20).collect::<Vec<_>>(), "an entry went to both consumers");
    b.ack(&from_b.iter().map(|d| d.token).collect::<Vec<_>>())
        .await
        .expect("ack b");

    // `a` dies without acking: `b` gets its ten, marked redelivered.
    drop(a);
    let taken_over = crate::conformance::queue::take_n(&b, 10, Duration::from_secs(10)).await;
    let mut got: Vec<i64> = taken_over.iter().map(|d| d.entry.received_at).collect();
    got.sort_unstable();
    let mut want: Vec<i64> = from_a.iter().map(|d| d.entry.received_at).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    assert!(taken_over.iter().all(|d| d.redelivered));
    b.ack(&taken_over.iter().map(|d| d.token).collect::<Vec<_>>())
        .await
        .expect("ack");
    assert_eq!(b.depth().entries, 0);
}

/// The raw store an `OBJECT_STORE_URL` names.
fn s3(url: &str) -> RawStore {
    RawStore::open(&RawBackend::from_url(url).expect("OBJECT_STORE_URL")).expect("open")
}

#[tokio::test]
async fn raw_local() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RawStore::local(dir.path()).expect("open");
    crate::conformance::raw::run(&store, "acme").await;
}

#[tokio::test]
async fn raw_s3() {
    let url = service_url("OBJECT_STORE_URL");
    let store = s3(&url);
    let (tenant, _) = crate::conformance::metadata::fresh_tenants();
    crate::conformance::raw::run(&store, &tenant).await;
}

#[tokio::test]
async fn index_tantivy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = TantivyIndex::open(dir.path()).expect("open");
    let (a, b) = crate::conformance::metadata::fresh_tenants();
    crate::conformance::index::run(&index, &a, &b).await;
    let (c, _) = crate::conformance::metadata::fresh_tenants();
    crate::conformance::index::spread(&index, &c).await;
}

/// Straight to stderr, past the test harness's capture: the run's output
/// must say which OpenSearch the suite ran against.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Live whenever `OPENSEARCH_URL` is set (`make test` sets it); the
/// fixtures in tests/opensearch_fixtures.rs check the wire format either way.
#[tokio::test]
async fn index_opensearch() {
    let Ok(url) = std::env::var("OPENSEARCH_URL") else {
        say("OpenSearch conformance: NOT RUN live (OPENSEARCH_URL unset); only the REST fixtures checked it");
        return;
    };
    let prefix = format!("lhtest-{:08x}-", rand::random::<u32>());
    let index = OpenSearchIndex::open(&url, &prefix).expect("connect to OpenSearch");
    let server = index.server_version().await.expect("GET /");
    say(&format!("OpenSearch conformance: live against {url} ({server})"));
    let (a, b) = crate::conformance::metadata::fresh_tenants();
    crate::conformance::index::run(&index, &a, &b).await;
    let (c, _) = crate::conformance::metadata::fresh_tenants();
    crate::conformance::index::spread(&index, &c).await;
}

/// The same records and a few hundred random queries on Tantivy and on
/// OpenSearch: both find what the tail's `Query::matches` finds.
#[tokio::test]
async fn index_differential() {
    let Ok(url) = std::env::var("OPENSEARCH_URL") else {
        say("query differential: NOT RUN (OPENSEARCH_URL unset)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let tantivy = TantivyIndex::open(dir.path()).expect("open");
    let prefix = format!("lhtest-{:08x}-", rand::random::<u32>());
    let opensearch = OpenSearchIndex::open(&url, &prefix).expect("connect to OpenSearch");
    let (tenant, _) = crate::conformance::metadata::fresh_tenants();
    crate::conformance::differential::run(&tantivy, &opensearch, &tenant).await;
}

/// Dead letters in a bucket two processors share: what one wrote, the other
/// lists, reads and removes.
#[tokio::test]
async fn dead_letters_shared_through_s3() {
    use loggerhub::stores::dead_letters::{DeadLetter, DeadLetters};
    let url = service_url("OBJECT_STORE_URL");
    let open = || DeadLetters::shared(&s3(&url));
    let (a, b) = (open(), open());
    let (tenant, _) = crate::conformance::metadata::fresh_tenants();
    let id = ulid::Ulid::new().to_string();
    let letter = DeadLetter {
        tenant: tenant.clone(),
        batch_id: id.clone(),
        received_at: "2025-10-09T08:53:20Z".into(),
        content_type: "text/plain".into(),
        service: Some("web".into()),
        idempotent: false,
        plugin: "parser@v1".into(),
        kind: "trap".into(),
        reason: "boom".into(),
        body: "not a log line".into(),
        records: None,
        origin_batches: Vec::new(),
    };
    a.put(letter).await.expect("put");
    let listed = b.list(&tenant).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].reason.as_str(), listed[0].body.as_str()),
        ("boom", "not a log line")
    );
    assert!(b.get(&tenant, &id).await.expect("get").is_some());
    b.remove(&tenant, &id).await.expect("remove");
    assert!(a.list(&tenant).await.expect("list").is_empty());
    assert!(a.get(&tenant, &id).await.expect("get").is_none());
}

/// A queue left by the one-stream version (`<name>:stream`) is moved into
/// the tenants' lanes when a processor of this version opens it: nothing
/// accepted before an upgrade is lost.
#[tokio::test]
async fn redis_queue_of_the_one_stream_version_moves_into_lanes() {
    let url = service_url("REDIS_URL");
    let name = redis_prefix();
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    let old: Vec<_> = [("a", 0), ("b", 1), ("a", 2)]
        .into_iter()
        .map(|(tenant, i)| loggerhub::queue::QueueEntry {
            tenant: tenant.into(),
            ..crate::conformance::queue::entry(i)
        })
        .collect();
    let mut bytes = 0;
    for e in &old {
        let payload = e.encode();
        bytes += payload.len() as u64;
        let _: String = redis::cmd("XADD")
            .arg(format!("{name}:stream"))
            .arg("*")
            .arg("e")
            .arg(payload)
            .query_async(&mut conn)
            .await
            .expect("xadd");
    }
    let _: () = redis::cmd("SET")
        .arg(format!("{name}:bytes"))
        .arg(bytes)
        .query_async(&mut conn)
        .await
        .expect("set");

    let q = RedisQueue::open(&url, &name, 1 << 30, CLAIM_IDLE).await.expect("open");
    assert_eq!(q.depth().entries, 3);
    let a = q.take_lane("a", 10, usize::MAX).await.expect("take a");
    let b = q.take_lane("b", 10, usize::MAX).await.expect("take b");
    let got: Vec<_> = a.iter().chain(&b).map(|d| d.entry.clone()).collect();
    assert_eq!(got, vec![old[0].clone(), old[2].clone(), old[1].clone()]);
    let left: u64 = redis::cmd("EXISTS")
        .arg(format!("{name}:stream"))
        .query_async(&mut conn)
        .await
        .expect("exists");
    assert_eq!(left, 0, "the old stream stayed");
    q.ack(&a.iter().chain(&b).map(|d| d.token).collect::<Vec<_>>())
        .await
        .expect("ack");
    assert_eq!(q.depth(), loggerhub::queue::Depth::default());
}
