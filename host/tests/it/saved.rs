//! Saved searches (issue 24, point 4): a tenant keeps searches under a
//! name, replaces and deletes them; another tenant never reaches them;
//! names, queries and filters are checked; the count is bounded.

use serde_json::{Value, json};

use crate::common::{ADMIN, Server, embedded_with};

async fn call(s: &Server, method: &str, key: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = s
        .http
        .request(method.parse().expect("method"), s.url(path))
        .bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_keeps_its_searches_and_only_it_reaches_them() {
    let (_d, s) = embedded_with(&[]).await;
    let key = s.tenant("keeper").await;
    let other = s.tenant("stranger").await;

    let errors = json!({"query": "level:error (service:billing OR service:payments)",
                        "filters": {"range": "1h", "group": "service"}});
    let (status, v) = call(
        &s,
        "PUT",
        &key,
        "/v1/saved-searches/checkout-errors",
        Some(errors.clone()),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["name"], "checkout-errors");
    assert_eq!(v["filters"], json!({"range": "1h", "group": "service"}));
    let created = v["created_at"].clone();
    let (status, v) = call(
        &s,
        "PUT",
        &key,
        "/v1/saved-searches/checkout-errors",
        Some(json!({"query": "level:fatal", "filters": {"level": "fatal", "from": "2025-10-10T00:00:00Z"}})),
    )
    .await;
    assert_eq!(status, 200, "replaced: {v}");
    assert_eq!((v["query"].as_str(), &v["created_at"]), (Some("level:fatal"), &created));
    // Kept in canonical form: a time's padding is not stored as sent.
    let padded = format!("2025-10-10T00:00:00.{}Z", "0".repeat(100_000));
    let body = json!({"filters": {"level": "ERROR", "from": padded}});
    let (_, v) = call(&s, "PUT", &key, "/v1/saved-searches/padded", Some(body)).await;
    assert_eq!(
        v["filters"],
        json!({"level": "error", "from": "2025-10-10T00:00:00Z"}),
        "{v}"
    );
    assert_eq!(call(&s, "DELETE", &key, "/v1/saved-searches/padded", None).await.0, 204);
    // The body is JSON whatever the Content-Type says (curl -d says a form).
    let r = s
        .http
        .put(s.url("/v1/saved-searches/a.b_c-1"))
        .bearer_auth(&key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("{}")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 201);
    let (_, list) = call(&s, "GET", &key, "/v1/saved-searches", None).await;
    let names: Vec<&str> = list["saved_searches"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert_eq!(names, ["a.b_c-1", "checkout-errors"]);

    // Another tenant sees none of it, and cannot delete it.
    let (_, theirs) = call(&s, "GET", &other, "/v1/saved-searches", None).await;
    assert_eq!(theirs["saved_searches"], json!([]));
    for method in ["GET", "DELETE"] {
        let (status, v) = call(&s, method, &other, "/v1/saved-searches/checkout-errors", None).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{method}"
        );
    }
    assert_eq!(
        call(&s, "GET", &key, "/v1/saved-searches/checkout-errors", None)
            .await
            .0,
        200
    );

    // What cannot be saved.
    for (name, body, code) in [
        ("Bad Name", json!({}), "bad_request"),
        ("x", json!({"query": "(open"}), "invalid_query"),
        ("x", json!({"query": "a", "filters": {"level": "loud"}}), "bad_request"),
        ("x", json!({"filters": {"range": "2y"}}), "bad_request"),
        (
            "x",
            json!({"filters": {"range": "1h", "from": "2025-10-10T00:00:00Z"}}),
            "bad_request",
        ),
        ("x", json!({"filters": {"group": "message"}}), "bad_request"),
        ("x", json!({"filters": {"color": "red"}}), "invalid_json"),
        ("x", json!({"query": "a".repeat(4097)}), "invalid_query"),
    ] {
        let path = format!("/v1/saved-searches/{}", name.replace(' ', "%20"));
        let (status, v) = call(&s, "PUT", &key, &path, Some(body.clone())).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some(code)),
            "{name} {body}"
        );
    }
    assert_eq!(
        call(&s, "GET", &key, "/v1/saved-searches/..%2F..%2Fetc", None).await.0,
        404
    );

    // Deleted once.
    assert_eq!(
        call(&s, "DELETE", &key, "/v1/saved-searches/a.b_c-1", None).await.0,
        204
    );
    assert_eq!(
        call(&s, "DELETE", &key, "/v1/saved-searches/a.b_c-1", None).await.0,
        404
    );

    // At most 200 a tenant; replacing one is always possible.
    for i in 0..199 {
        let (status, v) = call(&s, "PUT", &key, &format!("/v1/saved-searches/s{i}"), Some(json!({}))).await;
        assert_eq!(status, 201, "{i}: {v}");
    }
    let (status, v) = call(&s, "PUT", &key, "/v1/saved-searches/one-too-many", Some(json!({}))).await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("plan_limit")), "{v}");
    assert_eq!(
        call(&s, "PUT", &key, "/v1/saved-searches/s7", Some(json!({"query": "x"})))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&s, "PUT", &other, "/v1/saved-searches/s7", Some(json!({})))
            .await
            .0,
        201
    );

    // A key without the search scope reaches none of it.
    let (_, ingest_only) = call(
        &s,
        "POST",
        ADMIN,
        "/v1/admin/tenants/keeper/keys",
        Some(json!({"scopes": ["ingest"]})),
    )
    .await;
    let ingest_only = ingest_only["key"].as_str().expect("key");
    let (status, v) = call(&s, "GET", ingest_only, "/v1/saved-searches", None).await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("insufficient_scope")));
}
