//! LoggerHub as separate services (`serve --role`): one ingest, two
//! processors and one search process share PostgreSQL, Redis, S3 and
//! OpenSearch (the servers `make test` starts). Logs flow end to end, both
//! processors take work, and a processor killed with SIGKILL in the middle
//! of it loses nothing: its unacked entries go to the other one.

use std::time::{Duration, Instant};

use crate::common::{Server, distributed_flags, service_url};
use serde_json::{Value, json};

/// Requests of this many logs each; enough that processing outlasts the
/// moment the first processor is killed.
const BATCH: usize = 200;

fn batch(round: usize) -> String {
    (0..BATCH)
        .map(|i| {
            let service = ["billing", "auth"][i % 2];
            json!({"service": service, "level": "info",
                   "message": format!("order {round}-{i} shipped"),
                   "attributes": {"round": round.to_string()}})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn total(search: &Server, key: &str, path: &str) -> u64 {
    let (status, page) = search.get(key, path).await;
    assert_eq!(status, 200, "{page}");
    page["total"].as_u64().unwrap_or(0)
}

/// One deployment: ingest, two processors (the second logging to
/// `p2_log`) and search, each its own process and data directory, sharing
/// the services under names unique to `tag`.
struct Cluster {
    ingest: Server,
    p1: Server,
    p2: Server,
    search: Server,
    queue: String,
    p2_log: std::path::PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

async fn cluster(tag: &str) -> Cluster {
    let queue = format!("lh{tag}-{}", std::process::id());
    let mut backends = distributed_flags(&queue);
    // A killed processor's entries go to the other one after 2 s of
    // silence instead of the default minute.
    backends.extend(["--claim-idle-ms".to_string(), "2000".to_string()]);
    let flags = |role: &'static str| {
        let mut flags: Vec<&str> = backends.iter().map(String::as_str).collect();
        flags.extend(["--role", role]);
        flags
    };
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let p2_log = dirs[2].path().join("p2.log");
    Cluster {
        ingest: Server::start(dirs[0].path(), &flags("ingest")).await,
        p1: Server::start(dirs[1].path(), &flags("processor")).await,
        p2: Server::start_logging(dirs[2].path(), &flags("processor"), &p2_log).await,
        search: Server::start(dirs[3].path(), &flags("search")).await,
        queue,
        p2_log,
        _dirs: dirs,
    }
}

#[tokio::test]
async fn ingest_two_processors_and_search_as_separate_processes() {
    let redis = service_url("REDIS_URL");
    let Cluster {
        ingest,
        mut p1,
        p2,
        search,
        queue,
        p2_log,
        _dirs,
    } = cluster("roles").await;
    let p1_pid = p1.child.id();
    let pid = std::process::id();

    // The admin API is on the search process; the key works everywhere.
    let slug = format!("roles_{pid}");
    let key = search.tenant(&slug).await;

    // Each process serves its role's endpoints only, and says so.
    let (status, err) = ingest.get(&key, "/v1/search?q=x").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("wrong_role")),
        "{err}"
    );
    let (status, err) = search.post_logs(&key, "application/x-ndjson", batch(0)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("wrong_role")),
        "{err}"
    );
    for s in [&ingest, &p1, &p2, &search] {
        let (status, ready) = s.get(&key, "/ready").await;
        assert_eq!(status, 200, "{ready}");
    }

    // Logs flow; as soon as the first processor has done some work it is
    // killed with whatever it holds, and more logs follow.
    let mut round = 0;
    // Paced, so that the backlog (which the OpenSearch stand-in indexes at
    // a few thousand documents a second) stays small.
    let post_deadline = Instant::now() + Duration::from_secs(90);
    while p1.metric("loggerhub_logs_processed_total").await == 0.0 {
        assert!(
            Instant::now() < post_deadline,
            "the first processor never took any work"
        );
        let (status, body) = ingest.post_logs(&key, "application/x-ndjson", batch(round)).await;
        assert_eq!(status, 202, "{body}");
        round += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A burst, so that it holds entries when it dies: five batches were
    // sometimes all done by then on a quiet machine.
    for _ in 0..20 {
        let (status, body) = ingest.post_logs(&key, "application/x-ndjson", batch(round)).await;
        assert_eq!(status, 202, "{body}");
        round += 1;
    }
    p1.kill();
    let held = pending_of(&redis, &queue, &slug, p1_pid).await;
    assert!(
        held > 0,
        "the processor held nothing when it was killed: the takeover went untested"
    );
    let killed_at = round;
    let rounds = killed_at + 10;
    while round < rounds {
        let (status, body) = ingest.post_logs(&key, "application/x-ndjson", batch(round)).await;
        assert_eq!(status, 202, "{body}");
        round += 1;
    }
    let expected = (rounds * BATCH) as u64;

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let listed = total(&search, &key, "/v1/logs?limit=1").await;
        let found = total(&search, &key, "/v1/search?q=shipped&limit=1").await;
        if listed == expected && found == expected {
            break;
        }
        assert!(
            listed <= expected && found <= expected,
            "duplicates: {listed} listed, {found} found"
        );
        assert!(
            Instant::now() < deadline,
            "lost logs: {listed} listed, {found} found of {expected} (processor killed after round {killed_at})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Both processors did work; the survivor finished the rest, including
    // what the killed one held.
    assert!(p2.metric("loggerhub_logs_processed_total").await > 0.0);
    // What the killed one held may have reached the stores before it died
    // (then only its ack was missing): either way the survivor claims it.
    if held > 0 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::read_to_string(&p2_log).expect("p2 log");
            let left = pending_of(&redis, &queue, &slug, p1_pid).await;
            if left == 0 && log.contains("claimed entries of a silent consumer") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{left} entries still held by the killed processor"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(
            total(&search, &key, "/v1/logs?limit=1").await,
            expected,
            "a claimed entry duplicated"
        );
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "roles: processor killed holding {held} unacked queue entries; {expected} logs arrived exactly once"
    );
    // Each round's logs are all there, exactly once.
    for round in [0, killed_at, rounds - 1] {
        let path = format!("/v1/search?q=attributes.round:{round}&limit=1");
        assert_eq!(total(&search, &key, &path).await, BATCH as u64, "round {round}");
    }
    // Detail through the search process, from the index.
    let (_, page) = search.get(&key, "/v1/logs?limit=1").await;
    let id = page["hits"][0]["id"].as_str().expect("id").to_string();
    let (status, detail): (u16, Value) = search.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!((status, detail["source"].as_str()), (200, Some("index")), "{detail}");
    assert_eq!(ingest.metric("loggerhub_logs_ingested_total").await as u64, expected);
}

/// Entries of `tenant`'s lane the consumer of process `pid` holds unacked.
async fn pending_of(redis_url: &str, queue: &str, tenant: &str, pid: u32) -> u64 {
    let client = redis::Client::open(redis_url).expect("redis url");
    let mut con = client.get_multiplexed_async_connection().await.expect("redis");
    let consumers: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(format!("{queue}:lane:{tenant}"))
        .arg("processors")
        .query_async(&mut con)
        .await
        .expect("XINFO CONSUMERS");
    let tag = format!("-{pid}-");
    consumers
        .iter()
        .filter(
            |c| matches!(c.get("name"), Some(redis::Value::BulkString(n)) if String::from_utf8_lossy(n).contains(&tag)),
        )
        .filter_map(|c| match c.get("pending") {
            Some(redis::Value::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        })
        .sum()
}

/// A plugin uploaded through one processor, and the pipeline that uses it,
/// run on the other processor too (shared through the object store); a
/// plugin deleted through the other one disappears from the first.
#[tokio::test]
async fn a_plugin_uploaded_to_one_processor_runs_on_every_processor() {
    let c = cluster("plugins").await;
    let slug = format!("plugins_{}", std::process::id());
    let key = c.search.tenant(&slug).await;
    let pii = std::fs::read(loggerhub::runtime::builtin::PII_REDACTOR_PATH).expect("example plugin built by build.rs");
    let (status, body) = c.p1.put_plugin(&key, "enricher", "pii", pii).await;
    assert_eq!(status, 201, "{body}");
    let spec = json!({"enrichers": ["default-enricher", "pii"], "config": {"pii": {"redact": "email"}}});
    let (status, body) = c.p1.put_pipeline(&key, &spec).await;
    assert_eq!(status, 200, "{body}");

    // The other processor has it within a few pulls.
    let listed = |v: &Value| {
        v["plugins"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "pii" && p["active"] == 1))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, plugins) = c.p2.get(&key, "/v1/plugins").await;
        let (_, pipeline) = c.p2.get(&key, "/v1/pipeline").await;
        if listed(&plugins) && pipeline["enrichers"] == json!(["default-enricher", "pii"]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "p2 never got the plugin: {plugins} {pipeline}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A processor swaps a pulled change in once it has compiled it: warm
    // up until both have run the plugin (which also shows that both take
    // work).
    let ran_pii = format!("loggerhub_stage_seconds_count{{stage=\"enrich\",tenant=\"{slug}\",plugin=\"pii\"}}");
    let post_deadline = Instant::now() + Duration::from_secs(90);
    let mut round = 0;
    loop {
        let body: Vec<String> = (0..50)
            .map(|i| json!({"message": format!("warmup {round}-{i}")}).to_string())
            .collect();
        let (status, b) = c.ingest.post_logs(&key, "application/x-ndjson", body.join("\n")).await;
        assert_eq!(status, 202, "{b}");
        round += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (n1, n2) = (c.p1.metric(&ran_pii).await, c.p2.metric(&ran_pii).await);
        if n1 > 0.0 && n2 > 0.0 {
            break;
        }
        assert!(
            Instant::now() < post_deadline,
            "pii never ran on both processors: {n1} {n2}"
        );
    }
    let warmup = (round * 50) as u64;

    // From then on, every log is redacted whichever processor takes it.
    let rounds = 10;
    for round in 0..rounds {
        let body: Vec<String> = (0..50)
            .map(|i| json!({"message": format!("signup {round}-{i} by user{i}@example.com")}).to_string())
            .collect();
        let (status, b) = c.ingest.post_logs(&key, "application/x-ndjson", body.join("\n")).await;
        assert_eq!(status, 202, "{b}");
    }
    let signups = (rounds * 50) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Metadata and index are written side by side: wait for both.
    while total(&c.search, &key, "/v1/logs?limit=1").await < warmup + signups
        || total(&c.search, &key, "/v1/search?q=signup&limit=1").await < signups
    {
        assert!(Instant::now() < deadline, "logs did not arrive");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, page) = c
        .search
        .get(&key, &format!("/v1/search?q=signup&limit={signups}"))
        .await;
    let hits = page["hits"].as_array().expect("hits");
    assert_eq!(hits.len() as u64, signups, "{page}");
    for h in hits {
        let m = h["message"].as_str().unwrap_or_default();
        assert!(m.contains("[REDACTED:email]") && !m.contains('@'), "not redacted: {m}");
    }
    assert_eq!(total(&c.search, &key, "/v1/search?q=example.com&limit=1").await, 0);
    assert!(c.p1.metric(&ran_pii).await > 0.0 && c.p2.metric(&ran_pii).await > 0.0);

    // Deleted through the other processor: gone from the first.
    let (status, body) = c.p2.put_pipeline(&key, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let r =
        c.p2.http
            .delete(c.p2.url("/v1/plugins/enricher/pii"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("delete");
    assert_eq!(r.status(), 204);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, plugins) = c.p1.get(&key, "/v1/plugins").await;
        if !listed(&plugins) {
            break;
        }
        assert!(Instant::now() < deadline, "p1 still has the plugin: {plugins}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
