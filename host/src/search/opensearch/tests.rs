//! Unit tests of what needs no server: documents both ways, the template
//! against the documents, the query DSL.

use serde_json::{Value, json};

use super::{TEMPLATE, from_document, search_body, to_document};
use crate::model::{Cursor, Level, LogFilter, LogRecord, TOTAL_BOUND};
use crate::search::query::Query;

fn rec() -> LogRecord {
    LogRecord {
        id: "01K7ABCDEFGHJKMNPQRSTVWXYZ".into(),
        tenant: "acme".into(),
        service: "billing".into(),
        level: Level::Error,
        timestamp: 1_760_099_196_123_456_789,
        received_at: 1_760_099_197_000_000_000,
        message: "Payment failed".into(),
        full_log: "Traceback".into(),
        language: Some("python".into()),
        attributes: vec![("region".into(), "eu west".into())],
        raw_path: Some("logs/acme/x.ndjson#3".into()),
    }
}

#[test]
fn documents_round_trip() {
    let r = rec();
    let doc = to_document(&r);
    assert_eq!(doc["timestamp"], "2025-10-10T12:26:36.123456789Z");
    assert_eq!(doc["id_key"].as_str().map(str::len), Some(32));
    assert_eq!(from_document(doc).expect("reads back"), r);
}

#[test]
fn the_template_is_what_provision_sends() {
    let t: Value = serde_json::from_str(TEMPLATE).expect("template parses");
    assert_eq!(
        t["index_patterns"][0],
        format!("{}*", crate::config::DEFAULT_INDEX_PREFIX)
    );
    let props = &t["template"]["mappings"]["properties"];
    for field in to_document(&rec()).as_object().expect("object").keys() {
        assert!(props.get(field).is_some(), "{field} is not mapped");
    }
}

#[test]
fn query_translation() {
    let q = Query::parse(r#""invalid UUID" -timeout service:billing attributes.region:eu"#).expect("parses");
    let filter = LogFilter {
        level: Some(Level::Error),
        from: Some(0),
        ..Default::default()
    };
    let cursor = Cursor {
        timestamp: 5,
        id: "00000000-0000-0000-0000-0000000000ff".into(),
    };
    let body = search_body(&q, &filter, Some(&cursor), 11, true);
    assert_eq!(
        body,
        json!({
            "size": 11, "track_total_hits": true, "_source": false,
            "query": {"bool": {
                "must": [{"bool": {"should": [{"match_phrase": {"message": "invalid UUID"}},
                    {"match_phrase": {"full_log": "invalid UUID"}}], "minimum_should_match": 1}}],
                "must_not": [{"bool": {"should": [{"match_phrase": {"message": "timeout"}},
                    {"match_phrase": {"full_log": "timeout"}}], "minimum_should_match": 1}}],
                "filter": [{"term": {"service": "billing"}}, {"term": {"attributes.region": "eu"}},
                    {"term": {"level": "ERROR"}}, {"range": {"timestamp": {"gte": "1970-01-01T00:00:00Z"}}}]
            }},
            "sort": [{"timestamp": "desc"}, {"id_key": "desc"}],
            "search_after": [5, "000000000000000000000000000000ff"],
        })
    );
    // By default the count stops at the bound, as the API's does.
    let bounded = search_body(&q, &filter, None, 11, false);
    assert_eq!(bounded["track_total_hits"], json!(TOTAL_BOUND));
}
