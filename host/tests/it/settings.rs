//! Settings as users give them: one that cannot work stops the start with
//! a message naming it; the S3 endpoint may come the way object_store and
//! the AWS tools document it (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP`).

use std::path::Path;

use loggerhub::runtime::builtin;
use serde_json::json;

use crate::common::{Server, fails_to_start, service_url};

/// Relative paths, as `make run` passes them (`--data-dir ./data`), are
/// taken from the directory the server starts in, for every path it
/// derives (plugins and their compiled cache, a SQLite file, a raw-store
/// directory): it starts, compiles an uploaded plugin, stores and serves.
#[tokio::test]
async fn relative_paths_work_from_the_starting_directory() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let s = Server::start_in(
        cwd.path(),
        Path::new("./data"),
        &[
            "--database-url",
            "sqlite://meta/lh.db",
            "--object-store-url",
            "file://raw",
        ],
    )
    .await;
    let key = s.tenant("acme").await;
    let wasm = std::fs::read(builtin::PII_REDACTOR_PATH).expect("example plugin built by build.rs");
    let (status, body) = s.put_plugin(&key, "enricher", "pii", wasm).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = s
        .put_pipeline(&key, &json!({"enrichers": ["default-enricher", "pii"]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .post_logs(
            &key,
            "application/json",
            json!({"message": "mail ann@example.com"}).to_string(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let hits = s.hits(&key, "/v1/search?q=mail", 1).await;
    assert_eq!(hits[0]["message"], "mail [REDACTED:email]");
    let id = hits[0]["id"].as_str().expect("id");
    let (status, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!(status, 200, "{detail}");
    // Every path landed under the starting directory.
    for path in [
        "data/compiled",
        "data/plugins/acme",
        "data/index",
        "meta/lh.db",
        "raw/logs/acme",
    ] {
        assert!(
            cwd.path().join(path).exists(),
            "{path} is not under the starting directory"
        );
    }
}

#[tokio::test]
async fn a_setting_that_cannot_work_fails_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, env, named) in [
        (&["--max-body-bytes", "0"][..], &[][..], "--max-body-bytes"),
        (&["--database-url", "mysql://db/logs"], &[], "DATABASE_URL"),
        (
            &["--object-store-url", "s3://logs?endpint=http://x"],
            &[],
            "OBJECT_STORE_URL",
        ),
        (&["--redis-url", "localhost:6379"], &[], "REDIS_URL"),
        (
            &["--opensearch-url", "http://127.0.0.1:9", "--index-prefix", "Logs"],
            &[],
            "--index-prefix",
        ),
        (
            &["--object-store-url", "s3://logs"],
            &[("AWS_ENDPOINT", "http://127.0.0.1:9"), ("AWS_ALLOW_HTTP", "false")],
            "AWS_ALLOW_HTTP",
        ),
    ] {
        let said = fails_to_start(dir.path(), args, env);
        assert!(said.contains(named), "{args:?} {env:?}: {said}");
    }
}

/// `OBJECT_STORE_URL=s3://bucket` with the endpoint in `AWS_ENDPOINT` and
/// `AWS_ALLOW_HTTP=true`: logs reach the bucket (detail is rebuilt from it
/// once the index copy is gone).
#[tokio::test]
async fn s3_endpoint_from_the_aws_variables() {
    let url = service_url("OBJECT_STORE_URL");
    let (bucket_part, query) = url.split_once('?').expect("s3://bucket?endpoint=…");
    let endpoint = query
        .split('&')
        .find_map(|p| p.strip_prefix("endpoint="))
        .expect("endpoint");
    let region = query
        .split('&')
        .find_map(|p| p.strip_prefix("region="))
        .expect("region");
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("AWS_ENDPOINT", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", region),
    ];
    let flags = ["--object-store-url", bucket_part];
    let start = || Server::start_with_env(dir.path(), &flags, &env);
    let s = start().await;
    let key = s.tenant("acme").await;
    let (status, _) = s
        .post_logs(
            &key,
            "application/json",
            json!({"message": "via AWS_ENDPOINT"}).to_string(),
        )
        .await;
    assert_eq!(status, 202);
    s.drained(1).await;
    let (_, page) = s.get(&key, "/v1/logs").await;
    let id = page["hits"][0]["id"].as_str().expect("id").to_string();
    let raw_path = {
        let (_, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
        detail["raw_path"].as_str().expect("raw path").to_string()
    };
    assert!(raw_path.starts_with("logs/acme/"), "{raw_path}");
    drop(s);
    // The index is gone: the detail can only come from the bucket.
    std::fs::remove_dir_all(dir.path().join("index")).expect("remove index");
    let s = start().await;
    let (status, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!((status, detail["source"].as_str()), (200, Some("raw")), "{detail}");
    assert_eq!(detail["message"], "via AWS_ENDPOINT");
}
