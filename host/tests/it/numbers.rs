//! Attribute values keep their JSON type, end to end (issue 24): what a
//! client sends as a number is a number in every answer, in a range query
//! and in `POST /v1/aggregate`'s statistics, on the embedded backends and
//! on the distributed ones; a string that reads as a number stays a
//! string, and one key can be both.

use serde_json::{Value, json};

use crate::api::urlencode;
use crate::common::{Server, distributed_with, embedded_with};

/// 200 records a second apart from 2025-10-10T12:00:00Z: `duration_ms`
/// is `i` (a number) except in every tenth record, where it is the string
/// "slow"; `id` is a string of digits; `http.status` a nested number;
/// `ok` a boolean.
fn body() -> String {
    (0..200)
        .map(|i: i64| {
            let duration: Value = if i % 10 == 9 { json!("slow") } else { json!(i) };
            json!({
                "service": if i % 2 == 0 { "api" } else { "db" },
                "level": if i % 4 == 0 { "ERROR" } else { "INFO" },
                "timestamp": loggerhub::model::format_ts(1_760_097_600_000_000_000 + i * 1_000_000_000),
                "message": format!("request {i}"),
                "attributes": {"duration_ms": duration, "id": format!("{}", 1000 + i), "ok": i % 3 == 0,
                               "http": {"status": 200 + (i % 4) * 100}},
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The numbers `duration_ms` holds in the records that `keep` keeps.
fn durations(keep: impl Fn(i64) -> bool) -> Vec<f64> {
    (0..200).filter(|i| i % 10 != 9 && keep(*i)).map(|i| i as f64).collect()
}

async fn aggregate(s: &Server, key: &str, body: Value) -> (u16, Value) {
    s.post_json(key, "/v1/aggregate", &body).await
}

/// `stats` against the numbers `v`: count, min, max, sum exactly; each
/// percentile within one rank of where it falls.
fn check_stats(stats: &Value, v: &[f64], what: &str) {
    assert_eq!(stats["count"].as_u64(), Some(v.len() as u64), "{what}: {stats}");
    assert_eq!(stats["min"].as_f64(), v.first().copied(), "{what}: {stats}");
    assert_eq!(stats["max"].as_f64(), v.last().copied(), "{what}: {stats}");
    assert_eq!(stats["sum"].as_f64(), Some(v.iter().sum::<f64>()), "{what}: {stats}");
    for (name, p) in [("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0)] {
        let x = stats[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: {name} in {stats}"));
        let rank: f64 = p / 100.0 * (v.len() - 1) as f64;
        let (lo, hi) = (
            v[(rank.floor() as usize).saturating_sub(1)],
            v[(rank.ceil() as usize + 1).min(v.len() - 1)],
        );
        assert!(lo <= x && x <= hi, "{what}: {name} {x} not in [{lo}, {hi}]");
    }
}

async fn typed_everywhere(s: &Server, key: &str, stranger: &str) {
    assert_eq!(s.post_logs(key, "application/x-ndjson", body()).await.0, 202);
    s.drained(200).await;

    // Every answer writes the values as they were sent.
    let (_, list) = s.get(key, "/v1/logs?limit=200").await;
    let (_, found) = s.get(key, "/v1/search?q=request&limit=200").await;
    for page in [&list, &found] {
        let hit = page["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .find(|h| h["message"] == "request 7")
            .expect("request 7");
        assert_eq!(
            hit["attributes"],
            json!({"duration_ms": 7, "id": "1007", "ok": false, "http.status": 500}),
            "{hit}"
        );
        let slow = page["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .find(|h| h["message"] == "request 9");
        assert_eq!(slow.expect("request 9")["attributes"]["duration_ms"], "slow");
    }
    let id = found["hits"][0]["id"].as_str().expect("id");
    let (_, detail) = s.get(key, &format!("/v1/logs/{id}")).await;
    assert!(
        detail["attributes"]["duration_ms"].is_number() || detail["attributes"]["duration_ms"] == "slow",
        "{detail}"
    );
    assert!(detail["attributes"]["ok"].is_boolean(), "{detail}");

    // Ranges read numbers only; an exact match reads the text.
    let total = |q: &str| {
        let path = format!("/v1/search?q={}&limit=1", urlencode(q));
        async move { s.get(key, &path).await.1["total"].as_u64() }
    };
    assert_eq!(total("@duration_ms:>=150").await, Some(45));
    assert_eq!(total("attributes.duration_ms:[10 TO 19}").await, Some(9));
    assert_eq!(total("@http.status:[500 TO 599] level:error").await, Some(0));
    assert_eq!(total("@http.status:>=500").await, Some(50));
    assert_eq!(total("@id:>0").await, Some(0), "a string of digits is no number");
    assert_eq!(total("@id:1007").await, Some(1));
    assert_eq!(total("@duration_ms:7").await, Some(1));
    assert_eq!(total("@ok:true").await, Some(67));
    assert_eq!(total("-@duration_ms:[* TO *]").await, Some(20));
    let (status, v) = s
        .get(key, &format!("/v1/search?q={}", urlencode("@duration_ms:>fast")))
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_query")),
        "{v}"
    );

    // Statistics: of all the matches, per value, per time bucket.
    let (status, v) = aggregate(s, key, json!({"stats": "@duration_ms"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["total"].as_u64(), v["number"].as_str()),
        (Some(200), Some("attributes.duration_ms"))
    );
    check_stats(&v["stats"], &durations(|_| true), "all");
    assert_eq!(
        v["stats"]["avg"].as_f64(),
        Some(durations(|_| true).iter().sum::<f64>() / 180.0)
    );
    let (_, v) = aggregate(
        s,
        key,
        json!({"q": "level:error", "stats": "@duration_ms", "by": "service"}),
    )
    .await;
    assert_eq!(
        v["buckets"].as_array().map(Vec::len),
        Some(1),
        "errors are all api: {v}"
    );
    assert_eq!(
        (v["buckets"][0]["value"].as_str(), v["buckets"][0]["count"].as_u64()),
        (Some("api"), Some(50))
    );
    check_stats(&v["buckets"][0]["stats"], &durations(|i| i % 4 == 0), "errors of api");
    let (_, v) = aggregate(
        s,
        key,
        json!({"stats": "attributes.duration_ms", "from": "2025-10-10T12:00:00Z", "to": "2025-10-10T12:10:00Z",
               "interval": "1m"}),
    )
    .await;
    let series = v["series"].as_array().expect("series");
    assert_eq!(series.len(), 4, "{v}");
    assert_eq!(series[3]["start"], "2025-10-10T12:03:00Z");
    assert_eq!(
        (series[3]["count"].as_u64(), series[3]["missing"].as_u64()),
        (Some(20), Some(2))
    );
    check_stats(&series[3]["stats"], &durations(|i| i >= 180), "the fourth minute");
    let (_, v) = aggregate(s, key, json!({"stats": "@id"})).await;
    assert_eq!(
        (v["stats"]["count"].as_u64(), v["stats"]["p95"].as_f64()),
        (Some(0), None),
        "{v}"
    );

    // Bounded and checked like every read; a stranger sees none of it.
    for bad in [
        json!({}),
        json!({"stats": "service"}),
        json!({"stats": "@duration_ms", "by": "attributes"}),
        json!({"stats": "@duration_ms", "by": "service", "from": "2025-10-10T12:00:00Z", "interval": "1m"}),
        json!({"stats": "@duration_ms", "from": "2025-10-10T00:00:00Z", "to": "2025-10-20T00:00:00Z", "interval": "1m"}),
        json!({"stats": "@duration_ms", "interval": "1m"}),
        json!({"stats": "@duration_ms", "q": "(open"}),
    ] {
        let (status, v) = aggregate(s, key, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {v}");
    }
    let (status, v) = aggregate(s, stranger, json!({"stats": "@duration_ms"})).await;
    assert_eq!(
        (status, v["total"].as_u64(), v["stats"]["count"].as_u64()),
        (200, Some(0), Some(0)),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_on_the_embedded_backends() {
    let (dir, s) = embedded_with(&[]).await;
    let key = s.tenant("acme").await;
    let stranger = s.tenant("stranger").await;
    typed_everywhere(&s, &key, &stranger).await;

    // The CLI's table of statistics, per value.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loggerhub"))
        .env("LOGGERHUB_URL", &s.url)
        .env("LOGGERHUB_API_KEY", &key)
        .env("LOGGERHUB_STATE_DIR", dir.path())
        .args(["aggregate", "--stats", "@duration_ms", "--by", "service", "level:error"])
        .output()
        .expect("aggregate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows[0],
        [
            "attributes.duration_ms",
            "count",
            "min",
            "max",
            "avg",
            "sum",
            "p50",
            "p90",
            "p95",
            "p99"
        ],
        "{table}"
    );
    assert_eq!(rows[1][..5], ["(all)", "50", "0", "196", "98"], "{table}");
    assert_eq!(rows[2][..3], ["api", "50", "0"], "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_on_the_distributed_backends() {
    let (_dir, s, run) = distributed_with("numbers", &[]).await;
    let key = s.tenant(&format!("acme{run}")).await;
    let stranger = s.tenant(&format!("stranger{run}")).await;
    typed_everywhere(&s, &key, &stranger).await;
}
