//! The OpenSearch index against recorded exchanges in OpenSearch 2.x's REST
//! format (tests/fixtures/opensearch/*.json): each fixture lists the
//! requests the index must send, in order and exactly (method, path, query,
//! JSON or NDJSON body), and the answers OpenSearch gives to them. A
//! loopback server replays the answers and reports every request that
//! differs. This runs with or without `OPENSEARCH_URL`; the live suite
//! (tests/stores.rs, `index_opensearch`) runs when it is set.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use loggerhub::model::{Cursor, Level, LogFilter, LogRecord};
use loggerhub::search::opensearch::{OpenSearchIndex, TEMPLATE};
use loggerhub::search::{IndexRow, Query, SearchIndex};
use serde_json::Value;

struct Exchange {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    body: Option<Value>,
    ndjson: Option<Vec<Value>>,
    status: u16,
    response: Value,
}

#[derive(Default)]
struct Replay {
    expected: VecDeque<Exchange>,
    errors: Vec<String>,
}

/// `"$template"`, `"$template.template"` and
/// `"$template.template.mappings"` stand for the shipped index template
/// and its parts, so fixtures do not copy it.
fn expand(v: Value) -> Value {
    let template: Value = serde_json::from_str(TEMPLATE).expect("template");
    match v.as_str() {
        Some("$template") => template,
        Some("$template.template") => template["template"].clone(),
        Some("$template.template.mappings") => template["template"]["mappings"].clone(),
        _ => v,
    }
}

fn load(name: &str) -> VecDeque<Exchange> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/opensearch")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = VecDeque::new();
    for x in doc["exchanges"].as_array().expect("exchanges") {
        let req = &x["request"];
        let repeat = x["repeat"].as_u64().unwrap_or(1);
        for _ in 0..repeat {
            out.push_back(Exchange {
                method: req["method"].as_str().expect("method").to_string(),
                path: req["path"].as_str().expect("path").to_string(),
                query: req["query"]
                    .as_object()
                    .map(|q| {
                        q.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
                body: req.get("body").cloned().map(expand),
                ndjson: req.get("ndjson").and_then(Value::as_array).cloned(),
                status: x["response"]["status"].as_u64().expect("status") as u16,
                response: x["response"]["body"].clone(),
            });
        }
    }
    out
}

async fn handle(
    axum::extract::State(replay): axum::extract::State<Arc<Mutex<Replay>>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> axum::response::Response {
    let mut r = replay.lock().expect("replay lock");
    let seen = format!("{method} {uri}");
    let Some(x) = r.expected.pop_front() else {
        r.errors.push(format!("unexpected request {seen}"));
        return (StatusCode::INTERNAL_SERVER_ERROR, "no more exchanges").into_response();
    };
    let query: BTreeMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let mut wrong = Vec::new();
    if method.as_str() != x.method || uri.path() != x.path {
        wrong.push(format!("expected {} {}", x.method, x.path));
    }
    if query != x.query {
        wrong.push(format!("query {query:?}, expected {:?}", x.query));
    }
    if let Some(want) = &x.body {
        match serde_json::from_slice::<Value>(&body) {
            Ok(got) if &got == want => {}
            Ok(got) => wrong.push(format!("body {got}\n  expected {want}")),
            Err(e) => wrong.push(format!("body is not JSON ({e})")),
        }
    }
    if let Some(want) = &x.ndjson {
        let text = String::from_utf8_lossy(&body);
        if !text.ends_with('\n') {
            wrong.push("NDJSON body does not end with a newline".into());
        }
        let got: Result<Vec<Value>, _> = text.lines().map(serde_json::from_str).collect();
        match got {
            Ok(got) if &got == want => {}
            Ok(got) => wrong.push(format!(
                "NDJSON {}\n  expected {}",
                Value::Array(got),
                Value::Array(want.clone())
            )),
            Err(e) => wrong.push(format!("NDJSON line is not JSON ({e})")),
        }
    }
    if !wrong.is_empty() {
        r.errors.push(format!("{seen}: {}", wrong.join("; ")));
    }
    let status = StatusCode::from_u16(x.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(x.response)).into_response()
}

/// A loopback server replaying `fixture`; check it with `finish`.
struct Fixture {
    url: String,
    replay: Arc<Mutex<Replay>>,
    server: tokio::task::JoinHandle<()>,
}

impl Fixture {
    async fn start(fixture: &str) -> Fixture {
        let replay = Arc::new(Mutex::new(Replay {
            expected: load(fixture),
            errors: Vec::new(),
        }));
        let app = axum::Router::new().fallback(handle).with_state(replay.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fixture { url, replay, server }
    }

    /// Every exchange happened, and every request was the expected one.
    fn finish(self) {
        self.server.abort();
        let r = self.replay.lock().expect("replay lock");
        assert!(
            r.errors.is_empty(),
            "requests differ from the fixture:\n{}",
            r.errors.join("\n")
        );
        assert!(
            r.expected.is_empty(),
            "{} expected requests never came, first: {} {}",
            r.expected.len(),
            r.expected[0].method,
            r.expected[0].path
        );
    }
}

fn record(n: u8) -> LogRecord {
    let base = LogRecord {
        id: format!("00000000-0000-4000-8000-00000000000{n}"),
        tenant: "acme".into(),
        service: "billing".into(),
        level: Level::Error,
        timestamp: 1_760_099_196_123_456_789,
        received_at: 1_760_099_197_000_000_000,
        message: "Payment failed due to invalid UUID".into(),
        full_log: "Traceback (most recent call last): ...".into(),
        language: Some("python".into()),
        attributes: vec![("region".into(), "eu-west-1".into())],
        raw_path: Some(format!("logs/acme/2025/10/10/b1.ndjson#{n}")),
    };
    match n {
        1 => base,
        2 => LogRecord {
            service: "api".into(),
            level: Level::Info,
            timestamp: base.timestamp + 1_000_000_000,
            message: "GET /v1/orders 200".into(),
            full_log: String::new(),
            language: None,
            attributes: vec![],
            ..base
        },
        // Before 1970: OpenSearch's date_nanos refuses it.
        _ => LogRecord {
            timestamp: -1_000_000_000,
            ..base
        },
    }
}

fn rows(recs: &[LogRecord]) -> Vec<IndexRow<'_>> {
    recs.iter()
        .map(|r| IndexRow {
            record: r,
            may_exist: false,
        })
        .collect()
}

#[tokio::test]
async fn provision_creates_the_index_from_the_template_once() {
    let f = Fixture::start("provision.json").await;
    let index = OpenSearchIndex::open(&f.url, "loggerhub-logs-").expect("open");
    index.provision("acme").await.expect("creates");
    // Another process got there first: not an error.
    index.provision("acme").await.expect("already there");
    f.finish();
}

#[tokio::test]
async fn bulk_retries_rejected_for_load_and_reports_refused_items() {
    let f = Fixture::start("bulk_item_errors.json").await;
    let index = OpenSearchIndex::open(&f.url, "loggerhub-logs-").expect("open");
    let recs = [record(1), record(2), record(3)];
    let rejected = index.index("acme", &rows(&recs)).await.expect("bulk");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].id, recs[2].id);
    assert!(
        rejected[0].reason.contains("mapper_parsing_exception"),
        "{}",
        rejected[0].reason
    );
    f.finish();
}

#[tokio::test]
async fn bulk_fails_when_load_rejections_outlast_the_retries() {
    let f = Fixture::start("bulk_retries_exhausted.json").await;
    let index = OpenSearchIndex::open(&f.url, "loggerhub-logs-").expect("open");
    let recs = [record(1)];
    let err = index.index("acme", &rows(&recs)).await.expect_err("gives up");
    assert!(err.to_string().contains("es_rejected_execution_exception"), "{err}");
    f.finish();
}

#[tokio::test]
async fn search_translates_the_query_and_pages_with_search_after() {
    let f = Fixture::start("search_after.json").await;
    let index = OpenSearchIndex::open(&f.url, "loggerhub-logs-").expect("open");
    let q = Query::parse(r#"payment -"timed out" service:billing attributes.region:eu-west-1"#).expect("query");
    let filter = LogFilter {
        level: Some(Level::Error),
        from: Some(1_760_000_000_000_000_000),
        to: Some(1_760_200_000_000_000_000),
        ..Default::default()
    };
    let first = index.search("acme", &q, &filter, None, 2, true).await.expect("page 1");
    assert_eq!(first.total, 3);
    assert_eq!(
        first.ids,
        [
            "00000000-0000-4000-8000-000000000005",
            "00000000-0000-4000-8000-000000000004"
        ]
    );
    let cursor = first.next_cursor.expect("a next page");
    assert_eq!(
        cursor,
        Cursor {
            timestamp: 1_760_099_196_123_456_789,
            id: "00000000-0000-4000-8000-000000000004".into()
        }
    );
    let second = index
        .search("acme", &q, &filter, Some(&cursor), 2, true)
        .await
        .expect("page 2");
    assert_eq!((second.total, second.next_cursor), (3, None));
    assert_eq!(second.ids, ["00000000-0000-4000-8000-000000000001"]);
    // A tenant without an index yet has nothing.
    let none = index
        .search("newco", &q, &filter, None, 2, true)
        .await
        .expect("no index");
    assert_eq!((none.total, none.ids.len()), (0, 0));
    f.finish();
}

#[tokio::test]
async fn get_reads_a_document_by_id() {
    let f = Fixture::start("get_by_id.json").await;
    let index = OpenSearchIndex::open(&f.url, "loggerhub-logs-").expect("open");
    let want = record(1);
    assert_eq!(index.get("acme", &want.id).await.expect("get"), Some(want));
    let missing = "00000000-0000-4000-8000-000000000009";
    assert_eq!(index.get("acme", missing).await.expect("get"), None);
    assert_eq!(index.get("newco", missing).await.expect("get"), None);
    f.finish();
}
