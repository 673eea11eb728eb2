//! What users see while a backend is down, on real servers the test runs
//! privately (so that stopping one disturbs no other test): writes wait in
//! the queue and are retried, the reads that do not need the missing
//! backend keep working, `/ready` names it, and once it is back everything
//! accepted arrives, nothing lost.

use std::time::Duration;

use crate::common::Server;
use crate::common::private::{PrivateGarage, PrivateOpenSearch, PrivatePostgres, PrivateRedis, free_port};
use serde_json::json;

/// A tenant `acme` with one processed log ("before"): its key and the
/// log's id.
async fn tenant_with_a_log(s: &Server) -> (String, String) {
    let key = s.tenant("acme").await;
    let (status, body) = s
        .post_logs(&key, "application/json", json!({"message": "before"}).to_string())
        .await;
    assert_eq!(status, 202, "{body}");
    s.drained(1).await;
    let (_, page) = s.get(&key, "/v1/logs").await;
    let id = page["hits"][0]["id"].as_str().expect("id").to_string();
    (key, id)
}

/// Logs processed stay at `n` for a while: the writes are held back.
async fn stays_processed(s: &Server, n: f64) {
    for _ in 0..10 {
        assert_eq!(
            s.metric("loggerhub_logs_processed_total").await,
            n,
            "processed while down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// While Redis is down, ingest answers 503 with Retry-After and `/ready`
/// says which backend is down, reads keep working; once Redis is back,
/// ingest resumes on the same process and nothing accepted is lost.
#[tokio::test]
async fn redis_down_then_back() {
    let port = free_port();
    let redis = PrivateRedis::start(port, tempfile::tempdir().expect("tempdir"));
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--redis-url", &url]).await;
    let key = s.tenant("acme").await;
    let one = |m: &str| json!({"message": m}).to_string();
    assert_eq!(s.post_logs(&key, "application/json", one("before")).await.0, 202);
    s.drained(1).await;

    let data = redis.stop();
    let r = s
        .http
        .post(s.url("/v1/logs"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(one("while down"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let (status, ready) = s.get(&key, "/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_ne!(ready["backends"]["queue"]["status"], "ok", "{ready}");
    assert_eq!(ready["backends"]["metadata"], "ok", "{ready}");
    let (status, page) = s.get(&key, "/v1/logs").await;
    assert_eq!(
        (status, &page["total"]),
        (200, &json!(1)),
        "reads stopped with the queue"
    );

    // Same port, same data: the process reconnects by itself.
    let _redis = PrivateRedis::start(port, data);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, _) = s.post_logs(&key, "application/json", one("after")).await;
        if status == 202 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ingest never came back ({status})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    s.drained(2).await;
    let (_, page) = s.get(&key, "/v1/logs").await;
    assert_eq!(page["total"], 2, "{page}");
}

/// While PostgreSQL is down, ingest keeps answering 202 (keys are cached
/// a few seconds; the body goes to the queue), processing waits, the list
/// view answers 503 with a stable code, detail is served from the index,
/// and `/ready` names the metadata store. Once it is back the held
/// batches are written, nothing lost.
#[tokio::test]
async fn postgres_down_then_back() {
    let pg = PrivatePostgres::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--database-url", &pg.url()]).await;
    let (key, id) = tenant_with_a_log(&s).await;
    let one = |m: &str| json!({"message": m}).to_string();

    pg.stop();
    let (status, body) = s.post_logs(&key, "application/json", one("while down")).await;
    assert_eq!(status, 202, "ingest needs no metadata write: {body}");
    let (status, ready) = s.get(&key, "/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_ne!(ready["backends"]["metadata"], "ok", "{ready}");
    let (status, err) = s.get(&key, "/v1/logs").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (503, Some("backend_unavailable")),
        "{err}"
    );
    let (status, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!((status, detail["source"].as_str()), (200, Some("index")), "{detail}");
    stays_processed(&s, 1.0).await;

    pg.start();
    s.drained(2).await;
    let (status, page) = s.get(&key, "/v1/logs").await;
    assert_eq!((status, &page["total"]), (200, &json!(2)), "{page}");
}

/// While S3 is down, ingest answers 202, processing waits (nothing is
/// acked before its raw object exists), the list view, search and detail
/// from the index keep working, and `/ready` names the raw store. Once it
/// is back the held batches are written, nothing lost.
#[tokio::test]
async fn s3_down_then_back() {
    let mut garage = PrivateGarage::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--object-store-url", &garage.url()]).await;
    let (key, id) = tenant_with_a_log(&s).await;
    let one = |m: &str| json!({"message": m}).to_string();

    garage.stop();
    assert_eq!(s.post_logs(&key, "application/json", one("while down")).await.0, 202);
    let (status, ready) = s.get(&key, "/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_ne!(ready["backends"]["raw"], "ok", "{ready}");
    assert_eq!(ready["backends"]["metadata"], "ok", "{ready}");
    let (status, page) = s.get(&key, "/v1/logs").await;
    assert_eq!((status, &page["total"]), (200, &json!(1)), "{page}");
    let (status, page) = s.get(&key, "/v1/search?q=before").await;
    assert_eq!((status, &page["total"]), (200, &json!(1)), "{page}");
    let (status, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!((status, detail["source"].as_str()), (200, Some("index")), "{detail}");
    stays_processed(&s, 1.0).await;

    garage.start();
    s.drained(2).await;
    let (_, page) = s.get(&key, "/v1/search?q=down").await;
    assert_eq!(page["total"], 1, "{page}");
}

/// With OpenSearch down, even at start: the server starts, tenants are
/// created, ingest answers 202, processing waits, the list view works,
/// search answers 503, detail comes from the raw store, `/ready` names the
/// index. Once OpenSearch answers, the index and template are created and
/// the held batches are written.
#[tokio::test]
async fn opensearch_down_then_back() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--opensearch-url", &url]).await;
    let key = s.tenant("acme").await;
    let body = [
        json!({"message": "written while down"}),
        json!({"message": "also down"}),
    ]
    .map(|v| v.to_string())
    .join("\n");
    assert_eq!(s.post_logs(&key, "application/x-ndjson", body).await.0, 202);
    let (status, ready) = s.get(&key, "/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_ne!(ready["backends"]["index"], "ok", "{ready}");
    let (status, err) = s.get(&key, "/v1/search?q=down").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (503, Some("backend_unavailable")),
        "{err}"
    );
    stays_processed(&s, 0.0).await;
    // The metadata and raw writes of the held batch went through; the list
    // view and detail (rebuilt from the raw store) serve them.
    let (status, page) = s.get(&key, "/v1/logs").await;
    assert_eq!((status, &page["total"]), (200, &json!(2)), "{page}");
    let id = page["hits"][0]["id"].as_str().expect("id").to_string();
    let (status, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!((status, detail["source"].as_str()), (200, Some("raw")), "{detail}");

    let _os = PrivateOpenSearch::start(port);
    s.drained(2).await;
    let (status, page) = s.get(&key, "/v1/search?q=down").await;
    assert_eq!((status, &page["total"]), (200, &json!(2)), "{page}");
    let (_, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!(detail["source"], "index", "{detail}");
}
