//! LoggerHub on the distributed backends `make test` starts: the same API
//! flow as on the embedded ones, with the metadata in PostgreSQL, the queue
//! in Redis, the raw logs in Garage (S3) and the index in OpenSearch (the
//! server `OPENSEARCH_URL` names: osmem-server unless the caller set a real
//! one).

mod common;

use common::Server;
use serde_json::json;

fn service_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with `make test`, which starts the services (infra/local/services.sh)")
    })
}

#[tokio::test]
async fn serves_end_to_end_on_postgresql_redis_s3_and_opensearch() {
    let db = service_url("DATABASE_URL");
    let redis = service_url("REDIS_URL");
    // The S3 credentials reach the server through the environment
    // (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), as in production.
    let s3 = service_url("OBJECT_STORE_URL");
    let opensearch = service_url("OPENSEARCH_URL");
    let queue = format!("lhdist-{}", std::process::id());
    let index_prefix = format!("lhdist-{}-", std::process::id());
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = [
        "--database-url",
        db.as_str(),
        "--redis-url",
        redis.as_str(),
        "--queue-name",
        queue.as_str(),
        "--object-store-url",
        s3.as_str(),
        "--opensearch-url",
        opensearch.as_str(),
        "--index-prefix",
        index_prefix.as_str(),
    ];
    let s = Server::start(dir.path(), &flags).await;
    // Tenant names are unique per run: the database outlives the server.
    let slug = format!("dist_{}", std::process::id());
    let key = s.tenant(&slug).await;
    let lines: Vec<String> = (0..30)
        .map(|i| {
            let (service, level) = (["billing", "auth"][i % 2], ["info", "error", "warn"][i % 3]);
            json!({"service": service, "level": level,
                   "message": format!("payment {i} failed"), "attributes": {"n": i.to_string()}})
            .to_string()
        })
        .collect();
    let (status, _) = s.post_logs(&key, "application/x-ndjson", lines.join("\n")).await;
    assert_eq!(status, 202);
    s.drained(30).await;

    let (status, page) = s.get(&key, "/v1/logs?service=auth&limit=5").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 15);
    assert_eq!(page["hits"].as_array().map(Vec::len), Some(5));
    assert!(page["next_cursor"].is_string());
    let (_, page) = s.get(&key, "/v1/search?q=payment%20level:error").await;
    assert_eq!(page["total"], 10, "{page}");
    let id = page["hits"][0]["id"].as_str().expect("id").to_string();
    let (_, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!(detail["id"], id.as_str());
    let (_, stats) = s.get(&key, "/v1/stats?interval=1h").await;
    assert_eq!(stats["total"], 30, "{stats}");

    // The rows are in the tenant's own schema.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db)
        .await
        .expect("connect");
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM tenant_{slug}.logs")))
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(n, 30);

    // Every entry went through the stream and was acked and deleted.
    let (_, ready) = s.get(&key, "/ready").await;
    assert_eq!(ready["backends"]["queue"]["entries"], 0, "{ready}");
    assert_eq!(ready["status"], "ready", "{ready}");
    assert!(!dir.path().join("queue").exists(), "the local queue was used");
    assert!(!dir.path().join("raw").exists(), "the local raw store was used");
    assert!(!dir.path().join("index").exists(), "the local index was used");
    assert_eq!(detail["source"], "index", "{detail}");

    // Without the index, detail is rebuilt from the raw object in S3.
    let gone = s
        .http
        .delete(format!("{opensearch}/{index_prefix}{slug}"))
        .send()
        .await
        .expect("DELETE index");
    assert!(gone.status().is_success(), "{}", gone.status());
    let (status, d) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["source"], "raw");
    assert!(
        d["raw_path"]
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("logs/{slug}/"))),
        "{d}"
    );
}

/// A private Redis on a free port, killed when dropped.
struct PrivateRedis {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start(port: u16, dir: tempfile::TempDir) -> PrivateRedis {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (installed by infra/local/services.sh)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        PrivateRedis { child, port, _dir: dir }
    }

    fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self._dir, tempfile::tempdir().expect("tempdir"))
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// While Redis is down, ingest answers 503 with Retry-After and `/ready`
/// says which backend is down, reads keep working; once Redis is back,
/// ingest resumes on the same process and nothing accepted is lost.
#[tokio::test]
async fn redis_down_then_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
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
