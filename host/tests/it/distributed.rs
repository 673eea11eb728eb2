//! LoggerHub on the distributed backends `make test` starts: the same API
//! flow as on the embedded ones, with the metadata in PostgreSQL, the queue
//! in Redis, the raw logs in Garage (S3) and the index in OpenSearch (the
//! server `OPENSEARCH_URL` names: osmem-server unless the caller set a real
//! one).

use crate::common::{Server, distributed_flags, service_url};
use serde_json::json;

#[tokio::test]
async fn serves_end_to_end_on_postgresql_redis_s3_and_opensearch() {
    let db = service_url("DATABASE_URL");
    let opensearch = service_url("OPENSEARCH_URL");
    let name = format!("lhdist-{}", std::process::id());
    let index_prefix = format!("{name}-");
    let dir = tempfile::tempdir().expect("tempdir");
    let owned = distributed_flags(&name);
    let flags: Vec<&str> = owned.iter().map(String::as_str).collect();
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
