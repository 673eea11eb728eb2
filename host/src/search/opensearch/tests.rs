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

/// Counting by an attribute, on the wire: the key's characters literal in
/// `include`, one shard's list, missing as no `key=` in `attr`, and the
/// answer (with its series) read back.
#[test]
fn counting_by_a_field_both_ways() {
    use crate::search::{SeriesBucket, TermsField};
    let field = TermsField::Attribute("http.status(x)".into());
    let body = super::terms_body(
        &Query::parse("level:error").expect("parses"),
        &LogFilter::default(),
        &field,
        2,
        Some(60_000_000_000),
    );
    let t = &body["aggs"]["t"];
    assert_eq!(t["terms"]["include"], r"http\.status\(x\)=.*");
    assert_eq!(
        (t["terms"]["size"].as_u64(), t["terms"]["shard_size"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(t["aggs"]["h"]["date_histogram"]["fixed_interval"], "60000ms");
    assert_eq!(
        body["aggs"]["m"]["filter"]["bool"]["must_not"][0],
        json!({"prefix": {"attr": "http.status(x)="}})
    );
    assert_eq!(body["track_total_hits"], true);
    let minute = |m: i64| json!(1_760_099_160_000i64 + m * 60_000);
    let answer = json!({
        "hits": {"total": {"value": 9, "relation": "eq"}},
        "aggregations": {
            "t": {"sum_other_doc_count": 2, "buckets": [
                {"key": "http.status(x)=500", "doc_count": 4, "h": {"buckets": [{"key": minute(0), "doc_count": 4}]}},
                {"key": "http.status(x)=404", "doc_count": 2, "h": {"buckets": [{"key": minute(1), "doc_count": 2}]}}]},
            "m": {"doc_count": 1, "h": {"buckets": [{"key": minute(1), "doc_count": 1}]}},
            "h": {"buckets": [{"key": minute(0), "doc_count": 5}, {"key": minute(1), "doc_count": 4}]}
        }
    });
    let got = super::dsl::terms_of(&answer, &field, 2).expect("reads");
    assert_eq!(got.buckets, vec![("500".to_string(), 4), ("404".to_string(), 2)]);
    assert_eq!((got.total, got.other, got.missing), (9, 2, 1));
    let at = |m: i64| (1_760_099_160_000i64 + m * 60_000) * 1_000_000;
    assert_eq!(
        got.series,
        vec![
            SeriesBucket {
                start: at(0),
                total: 5,
                counts: vec![4, 0],
                other: 1,
                missing: 0
            },
            SeriesBucket {
                start: at(1),
                total: 4,
                counts: vec![0, 2],
                other: 1,
                missing: 1
            },
        ]
    );
}
