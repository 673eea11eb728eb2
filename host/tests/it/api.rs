//! The HTTP API end to end, against the real binary on embedded backends.

use std::collections::HashSet;

use crate::common::{ADMIN, Server, ndjson};
use serde_json::{Value, json};

#[tokio::test]
async fn tenants_and_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let key = s.tenant("acme").await;
    assert!(key.starts_with("lh_"));

    let post = |body: Value, token: &str| {
        s.http
            .post(s.url("/v1/admin/tenants"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let r = post(json!({"slug": "acme"}), ADMIN).await.expect("dup");
    assert_eq!(r.status(), 409);
    for bad in ["A", "1abc", "a", "has-dash", "x".repeat(41).as_str()] {
        let r = post(json!({"slug": bad}), ADMIN).await.expect("bad slug");
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().await.expect("json");
        assert_eq!(v["error"]["code"], "invalid_slug");
    }
    let r = post(json!({"slug": "beta"}), "wrong").await.expect("wrong admin");
    assert_eq!(r.status(), 401);
    let r = post(json!({"slug": "beta"}), &key)
        .await
        .expect("tenant key is not admin");
    assert_eq!(r.status(), 401);

    // The CLI creates tenants through the same API.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loggerhub"))
        .args(["tenant", "create", "beta", "--url", &s.url])
        .env("LOGGERHUB_ADMIN_TOKEN", ADMIN)
        .output()
        .expect("cli");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("cli prints json");
    assert!(v["api_key"]["key"].as_str().is_some_and(|k| k.starts_with("lh_")));

    let r = s
        .http
        .get(s.url("/v1/admin/tenants"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("list");
    let v: Value = r.json().await.expect("json");
    let slugs: Vec<&str> = v["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .filter_map(|t| t["slug"].as_str())
        .collect();
    assert_eq!(slugs, vec!["acme", "beta"]);

    // A search-only key cannot ingest; a revoked key cannot do anything.
    let r = s
        .http
        .post(s.url("/v1/admin/tenants/acme/keys"))
        .bearer_auth(ADMIN)
        .json(&json!({"scopes": ["search"]}))
        .send()
        .await
        .expect("key");
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.expect("json");
    let search_key = v["key"].as_str().expect("key").to_string();
    let key_id = v["id"].as_str().expect("id").to_string();
    let (status, body) = s.post_logs(&search_key, "application/json", r#"{"message":"x"}"#).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "insufficient_scope");
    assert_eq!(s.get(&search_key, "/v1/logs").await.0, 200);
    let r = s
        .http
        .delete(s.url(&format!("/v1/admin/tenants/acme/keys/{key_id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), 204);
    assert_eq!(s.get(&search_key, "/v1/logs").await.0, 401);
    let r = s
        .http
        .get(s.url("/v1/admin/tenants/acme/keys"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("keys");
    let v: Value = r.json().await.expect("json");
    let keys = v["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k["id"] == key_id.as_str() && k["revoked"] == true));
    // Keys are stored only as hashes: the secret is nowhere in the database.
    let db = std::fs::read(dir.path().join("metadata.db")).expect("db");
    let wal = std::fs::read(dir.path().join("metadata.db-wal")).unwrap_or_default();
    for blob in [db, wal] {
        assert!(
            !blob.windows(key.len()).any(|w| w == key.as_bytes()),
            "plaintext key stored"
        );
    }
}

#[tokio::test]
async fn ingest_formats_and_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--max-body-bytes", "4096"]).await;
    let key = s.tenant("acme").await;

    let seed = r#"{"tenant_id": "acme", "service": "billing", "level": "ERROR",
        "timestamp": "2025-10-10T12:26:36Z", "message": "Payment failed due to invalid UUID",
        "full_log": "Traceback (most recent call last): ...", "language": "python"}"#;
    assert_eq!(
        s.post_logs(&key, "application/json", seed).await,
        (202, json!({"accepted": 1}))
    );
    let array = r#"[{"message":"a1"},{"message":"a2","service":"web"}]"#;
    assert_eq!(
        s.post_logs(&key, "application/json", array).await,
        (202, json!({"accepted": 2}))
    );
    let nd = "{\"message\":\"n1\"}\n{\"message\":\"n2\"}\n{\"message\":\"n3\"}\n";
    assert_eq!(
        s.post_logs(&key, "application/x-ndjson", nd).await,
        (202, json!({"accepted": 3}))
    );
    let text = "2025-10-10T12:00:00Z ERROR disk failure on sda\nGET /index.html 200\n\n";
    assert_eq!(
        s.post_logs(&key, "text/plain", text).await,
        (202, json!({"accepted": 2}))
    );
    s.drained(8).await;
    let (_, page) = s.get(&key, "/v1/logs?limit=1000").await;
    assert_eq!(page["total"], 8);
    let (_, errs) = s.get(&key, "/v1/logs?level=error").await;
    let msgs: HashSet<&str> = errs["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .filter_map(|h| h["message"].as_str())
        .collect();
    assert_eq!(
        msgs,
        HashSet::from([
            "Payment failed due to invalid UUID",
            "2025-10-10T12:00:00Z ERROR disk failure on sda"
        ])
    );

    // 400 names the line and the field.
    let (status, body) = s
        .post_logs(
            &key,
            "application/x-ndjson",
            "{\"message\":\"ok\"}\n{\"message\":\"x\",\"level\":\"loud\"}",
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_body");
    let msg = body["error"]["message"].as_str().expect("message");
    assert!(msg.starts_with("line 2") && msg.contains("level"), "{msg}");
    let (status, body) = s.post_logs(&key, "application/json", "{\"message\": ").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = s.post_logs(&key, "application/json", "[]").await;
    assert_eq!(status, 400);
    // 401 without or with an unknown key.
    let r = s.http.post(s.url("/v1/logs")).body("{}").send().await.expect("post");
    assert_eq!(r.status(), 401);
    assert_eq!(s.post_logs("lh_unknown", "application/json", "{}").await.0, 401);
    // 403 when the payload names another tenant.
    let (status, body) = s
        .post_logs(&key, "application/json", r#"{"tenant_id":"other","message":"x"}"#)
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "wrong_tenant");
    // 413 over the body limit (4096 here), 415 for other media types.
    let (status, body) = s
        .post_logs(&key, "application/x-ndjson", ndjson("big", 100, "api"))
        .await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert_eq!(s.post_logs(&key, "image/png", "x").await.0, 415);
    // Nothing refused reached the stores.
    s.drained(8).await;
    assert_eq!(s.get(&key, "/v1/logs").await.1["total"], 8);
    assert_eq!(s.metric("loggerhub_logs_ingested_total").await, 8.0);
}

#[tokio::test]
async fn list_search_detail_stats_and_isolation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let key = s.tenant("acme").await;
    let other = s.tenant("other").await;
    assert_eq!(
        s.post_logs(&key, "application/x-ndjson", ndjson("payment failed", 150, "billing"))
            .await
            .0,
        202
    );
    assert_eq!(
        s.post_logs(&key, "application/x-ndjson", ndjson("request served", 100, "web"))
            .await
            .0,
        202
    );
    assert_eq!(
        s.post_logs(&other, "application/x-ndjson", ndjson("payment failed", 10, "billing"))
            .await
            .0,
        202
    );
    s.drained(260).await;

    // The list view pages newest first, without gaps or repeats.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/logs?limit=100&cursor={c}"),
            None => "/v1/logs?limit=100".to_string(),
        };
        let (status, page) = s.get(&key, &path).await;
        assert_eq!(status, 200);
        assert_eq!(page["total"], 250);
        for h in page["hits"].as_array().expect("hits") {
            seen.push((
                h["timestamp"].as_str().expect("ts").to_string(),
                h["id"].as_str().expect("id").to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 250);
    assert_eq!(seen.iter().map(|(_, id)| id).collect::<HashSet<_>>().len(), 250);
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "not newest first");

    // Filters.
    let (_, page) = s.get(&key, "/v1/logs?service=web&limit=5").await;
    assert_eq!(page["total"], 100);
    let (_, page) = s.get(&key, "/v1/logs?service=billing&level=error").await;
    assert_eq!(page["total"], 50);
    let (_, page) = s
        .get(&key, "/v1/logs?from=2025-10-10T12:01:00Z&to=2025-10-10T12:02:00Z")
        .await;
    assert_eq!(page["total"], 100);
    assert_eq!(s.get(&key, "/v1/logs?limit=1001").await.0, 400);
    assert_eq!(s.get(&key, "/v1/logs?from=yesterday").await.0, 400);

    // Full text: terms, phrases, exclusions, fields, attributes.
    let total = |q: &'static str| {
        let s = &s;
        let key = key.clone();
        async move {
            let (status, page) = s.get(&key, &format!("/v1/search?q={}&limit=1000", urlencode(q))).await;
            assert_eq!(status, 200, "{q}: {page}");
            let hits = page["hits"].as_array().expect("hits").len() as u64;
            assert_eq!(page["total"].as_u64(), Some(hits), "{q}");
            hits
        }
    };
    assert_eq!(total("payment").await, 150);
    assert_eq!(total("\"payment failed\"").await, 150);
    assert_eq!(total("\"failed payment\"").await, 0);
    assert_eq!(total("served -payment").await, 100);
    assert_eq!(total("level:error service:web").await, 34);
    assert_eq!(total("attributes.n:7").await, 2);
    assert_eq!(total("trace 42").await, 2);
    assert_eq!(total("-level:info").await, 84);
    // AND, OR, NOT, parentheses (docs/QUERY.md).
    assert_eq!(total("payment OR served").await, 250);
    assert_eq!(total("NOT (payment OR served)").await, 0);
    assert_eq!(total("(level:error service:web) OR attributes.n:7").await, 36);
    assert_eq!(total("serv* OR PAYM?NT").await, 250);
    assert_eq!(total("service:w*").await, 100);
    // Time ranges in the query, the same as `from`/`to`.
    assert_eq!(
        total("timestamp:[2025-10-10T12:01:00Z TO 2025-10-10T12:02:00Z}").await,
        100
    );
    assert_eq!(total("timestamp:<now-1h payment").await, 150);
    assert_eq!(total("timestamp:>now-1h").await, 0);
    let (status, body) = s.get(&key, "/v1/search?q=payment%20timestamp:soon").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_query")));
    let (status, body) = s.get(&key, "/v1/search?q=%22open").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_query")));
    let (status, body) = s
        .get(&key, &format!("/v1/search?q={}", urlencode("payment AND (served OR")))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_query")));
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.ends_with("(at character 23)"), "{message}");

    // Counting by a field: the tenant's own records only.
    let aggregate = |body: Value| {
        let s = &s;
        let key = key.clone();
        async move { s.post_json(&key, "/v1/aggregate", &body).await }
    };
    let pairs = |v: &Value| -> Vec<(String, u64)> {
        v["buckets"]
            .as_array()
            .expect("buckets")
            .iter()
            .map(|b| {
                (
                    b["value"].as_str().unwrap_or_default().to_string(),
                    b["count"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let (status, v) = aggregate(json!({"by": "service"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(pairs(&v), [("billing".to_string(), 150), ("web".to_string(), 100)]);
    assert_eq!(
        (v["total"].as_u64(), v["other"].as_u64(), v["missing"].as_u64()),
        (Some(250), Some(0), Some(0))
    );
    let (_, v) = aggregate(json!({"q": "payment", "by": "level"})).await;
    assert_eq!(pairs(&v), [("INFO".to_string(), 100), ("ERROR".to_string(), 50)]);
    let (_, v) = aggregate(json!({"by": "@n", "size": 3})).await;
    assert_eq!(
        pairs(&v),
        [("0".to_string(), 2), ("1".to_string(), 2), ("10".to_string(), 2)]
    );
    assert_eq!(
        (v["other"].as_u64(), v["by"].as_str()),
        (Some(244), Some("attributes.n"))
    );
    // The tenant's attributes: each key by the matches that have it.
    let (_, v) = aggregate(json!({"by": "attributes"})).await;
    assert_eq!(pairs(&v), [("n".to_string(), 250)]);
    let (status, _) = aggregate(json!({"by": "attributes", "from": "2025-10-10T12:00:00Z", "interval": "1h"})).await;
    assert_eq!(status, 400, "a series is by values");
    let (_, v) = aggregate(json!({"by": "attributes.nope", "level": "error"})).await;
    assert_eq!((v["total"].as_u64(), v["missing"].as_u64()), (Some(84), Some(84)));
    // The body is JSON whatever the Content-Type says (curl -d says a form).
    let r = s
        .http
        .post(s.url("/v1/aggregate"))
        .bearer_auth(&key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"by": "service"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);

    // And per time bucket: the values' series, stacked.
    let (status, v) = aggregate(json!({"by": "service", "from": "2025-10-10T12:00:00Z",
                                        "to": "2025-10-10T12:03:00Z", "interval": "1m"}))
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["series"],
        json!([
            {"start": "2025-10-10T12:00:00Z", "count": 120, "by_value": {"billing": 60, "web": 60}, "other": 0, "missing": 0},
            {"start": "2025-10-10T12:01:00Z", "count": 100, "by_value": {"billing": 60, "web": 40}, "other": 0, "missing": 0},
            {"start": "2025-10-10T12:02:00Z", "count": 30, "by_value": {"billing": 30}, "other": 0, "missing": 0},
        ])
    );
    let (_, v) = aggregate(
        json!({"by": "@n", "size": 1, "from": "2025-10-10T12:00:00Z", "to": "2025-10-10T13:00:00Z", "interval": "1h"}),
    )
    .await;
    assert_eq!(
        v["series"],
        json!([{"start": "2025-10-10T12:00:00Z", "count": 250, "by_value": {"0": 2}, "other": 248, "missing": 0}])
    );
    for (bad, code) in [
        (json!({"by": "service", "interval": "1m"}), "bad_request"),
        (
            json!({"by": "service", "from": "2025-10-10T00:00:00Z", "to": "2025-10-11T00:00:00Z",
                "interval": "1s"}),
            "bad_request",
        ),
        (
            json!({"by": "service", "size": 1000, "from": "2025-10-10T00:00:00Z",
                "to": "2025-10-17T00:00:00Z", "interval": "1h"}),
            "bad_request",
        ),
        (json!({"by": "message"}), "bad_request"),
        (json!({"by": "service", "size": 0}), "bad_request"),
        (json!({"by": "service", "size": 1001}), "bad_request"),
        (json!({"by": "service", "bogus": 1}), "invalid_json"),
        (json!({"by": "service", "q": "(open"}), "invalid_query"),
        (json!({"by": "service", "from": "yesterday"}), "bad_request"),
    ] {
        let (status, v) = aggregate(bad.clone()).await;
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some(code)), "{bad}");
    }

    // Search pages with a cursor too, and hits carry metadata.
    let (_, p1) = s.get(&key, "/v1/search?q=payment&limit=100").await;
    let c = p1["next_cursor"].as_str().expect("cursor");
    let (_, p2) = s.get(&key, &format!("/v1/search?q=payment&limit=100&cursor={c}")).await;
    let ids: HashSet<&str> = p1["hits"]
        .as_array()
        .into_iter()
        .chain(p2["hits"].as_array())
        .flatten()
        .filter_map(|h| h["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 150);
    assert!(p2["next_cursor"].is_null());
    assert_eq!(p1["hits"][0]["service"], "billing");
    assert_eq!(p1["hits"][0]["attributes"]["n"].as_str().map(|_| true), Some(true));

    // Detail comes from the index, with the full log.
    let id = p1["hits"][0]["id"].as_str().expect("id");
    let (status, d) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(d["source"], "index");
    assert!(
        d["full_log"]
            .as_str()
            .expect("full_log")
            .starts_with("trace for payment failed")
    );
    assert!(d["raw_path"].as_str().expect("raw_path").starts_with("logs/acme/"));

    // Another tenant's id is not found, and its search sees only its own.
    assert_eq!(s.get(&other, &format!("/v1/logs/{id}")).await.0, 404);
    let (_, page) = s.get(&other, "/v1/search?q=payment&limit=1000").await;
    assert_eq!(page["total"], 10);
    assert!(
        page["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .all(|h| h["tenant"] == "other")
    );
    assert_eq!(s.get(&other, "/v1/logs").await.1["total"], 10);

    // Stats: counts by level and service, and a histogram.
    let (status, st) = s.get(&key, "/v1/stats?interval=1m").await;
    assert_eq!(status, 200);
    assert_eq!(st["total"], 250);
    assert_eq!(st["by_level"], json!({"ERROR": 84, "INFO": 166}));
    assert_eq!(st["by_service"], json!({"billing": 150, "web": 100}));
    let buckets = st["histogram"].as_array().expect("histogram");
    assert_eq!(
        buckets.iter().map(|b| b["count"].as_u64().unwrap_or(0)).sum::<u64>(),
        250
    );
    assert_eq!(
        buckets[0],
        json!({"start": "2025-10-10T12:00:00Z", "count": 120, "by_level": {"ERROR": 40, "INFO": 80}}),
        "each bucket is stacked by level"
    );
    assert_eq!(s.get(&key, "/v1/stats?interval=fortnight").await.0, 400);

    // A search's histogram, counted in the index.
    let (status, st) = s
        .get(
            &key,
            "/v1/stats?q=payment&interval=1m&from=2025-10-10T00:00:00Z&to=2025-10-11T00:00:00Z",
        )
        .await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["total"], 150);
    let buckets = st["histogram"].as_array().expect("histogram");
    assert_eq!(
        buckets.iter().map(|b| b["count"].as_u64().unwrap_or(0)).sum::<u64>(),
        150
    );
    let by_level: u64 = st["by_level"]
        .as_object()
        .expect("by_level")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(by_level, 150);
    assert_eq!(
        st["by_service"],
        json!({}),
        "a search's histogram does not count services"
    );
    let (status, body) = s.get(&key, "/v1/stats?q=payment").await;
    assert_eq!(status, 400, "a search's histogram needs `from`: {body}");
    let (_, body) = s.get(&key, "/v1/stats?q=%22open&from=2025-10-10T00:00:00Z").await;
    assert_eq!(body["error"]["code"], "invalid_query");
    let (status, _) = s
        .get(
            &key,
            "/v1/stats?q=payment&interval=1s&from=2025-01-01T00:00:00Z&to=2025-12-01T00:00:00Z",
        )
        .await;
    assert_eq!(status, 400, "too many buckets");
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn detail_falls_back_to_the_raw_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start(dir.path(), &[]).await;
    let key = s.tenant("acme").await;
    assert_eq!(
        s.post_logs(&key, "application/x-ndjson", ndjson("kept whole", 20, "api"))
            .await
            .0,
        202
    );
    s.drained(20).await;
    let (_, page) = s.get(&key, "/v1/logs?limit=1").await;
    let id = page["hits"][0]["id"].as_str().expect("id").to_string();
    s.kill();
    // Lose the index entirely: detail must rebuild from the raw store and
    // the list view must not care.
    std::fs::remove_dir_all(dir.path().join("index").join("acme")).expect("remove index");
    let s = Server::start(dir.path(), &[]).await;
    let (status, d) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["source"], "raw");
    assert!(
        d["full_log"]
            .as_str()
            .expect("full_log")
            .starts_with("trace for kept whole")
    );
    assert_eq!(d["id"], id.as_str());
    assert_eq!(s.get(&key, "/v1/logs").await.1["total"], 20);
}

#[tokio::test]
async fn retries_never_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let key = s.tenant("acme").await;
    let body = ndjson("retried", 30, "api");
    for _ in 0..3 {
        let r = s
            .http
            .post(s.url("/v1/logs"))
            .bearer_auth(&key)
            .header("content-type", "application/x-ndjson")
            .header("idempotency-key", "batch-0001")
            .body(body.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 202);
    }
    // Client-supplied ids dedupe too.
    let with_ids = r#"[{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","message":"own id"},{"id":"123e4567-e89b-12d3-a456-426614174000","message":"uuid id"}]"#;
    for _ in 0..2 {
        assert_eq!(s.post_logs(&key, "application/json", with_ids).await.0, 202);
    }
    s.drained(94).await;
    assert_eq!(s.get(&key, "/v1/logs").await.1["total"], 32);
    assert_eq!(s.get(&key, "/v1/search?q=retried").await.1["total"], 30);
    assert_eq!(s.get(&key, "/v1/search?q=%22own%20id%22").await.1["total"], 1);
    let (status, d) = s.get(&key, "/v1/logs/123e4567-e89b-12d3-a456-426614174000").await;
    assert_eq!((status, d["message"].as_str()), (200, Some("uuid id")));
}

#[tokio::test]
async fn full_queue_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No workers: nothing drains, so the small queue fills up.
    let s = Server::start(dir.path(), &["--workers", "0", "--queue-max-bytes", "20000"]).await;
    let key = s.tenant("acme").await;
    let body = ndjson("fill", 20, "api");
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..50 {
        let r = s
            .http
            .post(s.url("/v1/logs"))
            .bearer_auth(&key)
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await
            .expect("post");
        if r.status() == 202 {
            accepted += 1;
        } else {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the queue never filled");
    assert!(accepted > 0);
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "queue_full");
    assert_eq!(s.metric("loggerhub_queue_depth").await, f64::from(accepted));
}

#[tokio::test]
async fn health_ready_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let key = s.tenant("acme").await;
    let v: Value = s
        .http
        .get(s.url("/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(v, json!({"status": "ok"}));
    let r = s.http.get(s.url("/ready")).send().await.expect("ready");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["status"], "ready");
    for b in ["metadata", "raw", "index"] {
        assert_eq!(v["backends"][b], "ok", "{b}");
    }
    s.post_logs(&key, "application/x-ndjson", ndjson("m", 10, "api")).await;
    s.post_logs(&key, "text/plain", "one\ntwo").await;
    s.post_logs(&key, "application/json", "{").await;
    s.drained(12).await;
    let text = s.metrics().await;
    for needle in [
        "loggerhub_logs_ingested_total 12",
        "loggerhub_logs_processed_total 12",
        "loggerhub_queue_depth 0",
        "loggerhub_stage_seconds_count{stage=\"parse\",tenant=\"acme\",plugin=\"json-parser\"}",
        "loggerhub_stage_seconds_count{stage=\"parse\",tenant=\"acme\",plugin=\"line-parser\"}",
        "loggerhub_stage_seconds_count{stage=\"enrich\",tenant=\"acme\",plugin=\"default-enricher\"}",
        "loggerhub_stage_seconds_count{stage=\"route\",tenant=\"acme\",plugin=\"default-router\"}",
        "loggerhub_store_write_seconds_count{store=\"index\"}",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
    let r = s.http.get(s.url("/v1/nope")).send().await.expect("404");
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "not_found");
}
