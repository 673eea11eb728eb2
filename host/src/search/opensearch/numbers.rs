//! Statistics of a number attribute (`SearchIndex::numbers`) as one
//! search: no hits, every match counted, and over the nested `num` field
//! (each number attribute of a record as `{k, v}`) the `stats` and
//! `percentiles` of the values whose key is the attribute's: for all the
//! matches, under each bucket of a `terms` aggregation (`terms_body`'s),
//! or under each bucket of a `date_histogram`.

use serde_json::{Value, json};

use super::corrupt;
use super::dsl::{date_buckets, search_body, terms_body, terms_of};
use crate::error::BackendError;
use crate::model::LogFilter;
use crate::search::TermsField;
use crate::search::numbers::{Numbers, PERCENTS, Summary};
use crate::search::query::Query;

/// The statistics of `key`'s numbers among the documents above it.
fn metric(key: &str) -> Value {
    json!({"nested": {"path": "num"}, "aggs": {"k": {
        "filter": {"term": {"num.k": key}},
        "aggs": {
            "s": {"stats": {"field": "num.v"}},
            "p": {"percentiles": {"field": "num.v", "percents": PERCENTS}}
        }
    }}})
}

pub fn numbers_body(
    q: &Query,
    filter: &LogFilter,
    key: &str,
    group: Option<(&TermsField, usize)>,
    interval_ns: Option<i64>,
) -> Value {
    let mut body = match group {
        Some((field, size)) => {
            let mut body = terms_body(q, filter, field, size, None);
            body["aggs"]["t"]["aggs"] = json!({"n": metric(key)});
            body
        }
        None => {
            let mut body = search_body(q, filter, None, 0, true);
            if let Some(b) = body.as_object_mut() {
                b.remove("sort");
            }
            body["aggs"] = json!({});
            body
        }
    };
    body["aggs"]["n"] = metric(key);
    if let Some(interval) = interval_ns {
        body["aggs"]["h"] = json!({
            "date_histogram": {
                "field": "timestamp",
                "fixed_interval": format!("{}ms", (interval / 1_000_000).max(1)),
                "min_doc_count": 1
            },
            "aggs": {"n": metric(key)}
        });
    }
    body
}

/// [`numbers_body`]'s answer.
pub(super) fn numbers_of(
    answer: &Value,
    group: Option<(&TermsField, usize)>,
    interval_ns: Option<i64>,
) -> Result<Numbers, BackendError> {
    let total = answer
        .pointer("/hits/total/value")
        .and_then(Value::as_u64)
        .ok_or_else(|| corrupt("statistics without their total"))?;
    let all = summary(answer.pointer("/aggregations/n"))?;
    let (terms, per_value) = match group {
        Some((field, size)) => {
            let terms = terms_of(answer, field, size)?;
            let buckets = answer
                .pointer("/aggregations/t/buckets")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            let per_value = buckets
                .iter()
                .take(terms.buckets.len())
                .map(|b| summary(b.get("n")))
                .collect::<Result<Vec<_>, _>>()?;
            (Some(terms), per_value)
        }
        None => (None, Vec::new()),
    };
    let mut series = Vec::new();
    if interval_ns.is_some() {
        let buckets = answer
            .pointer("/aggregations/h/buckets")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for ((start, n), b) in date_buckets(buckets)?.into_iter().zip(buckets) {
            series.push((start, n, summary(b.get("n"))?));
        }
    }
    Ok(Numbers {
        total,
        all,
        terms,
        per_value,
        series,
    })
}

/// One `metric`'s answer.
fn summary(n: Option<&Value>) -> Result<Summary, BackendError> {
    let k = n
        .and_then(|n| n.get("k"))
        .ok_or_else(|| corrupt("statistics without their figures"))?;
    let count = k.pointer("/s/count").and_then(Value::as_u64).unwrap_or(0);
    if count == 0 {
        return Ok(Summary::default());
    }
    let figure = |name: &str| k.pointer(&format!("/s/{name}")).and_then(Value::as_f64);
    let mut percentiles = [None; 4];
    let values = k.pointer("/p/values");
    for (slot, p) in percentiles.iter_mut().zip(PERCENTS) {
        // Keys are written `95.0`; a value is `null` without numbers.
        *slot = values.and_then(|v| v.get(format!("{p:.1}"))).and_then(Value::as_f64);
    }
    Ok(Summary {
        count,
        // OpenSearch writes an overflowed sum as the string "Infinity".
        sum: figure("sum").unwrap_or(f64::INFINITY),
        min: figure("min"),
        max: figure("max"),
        percentiles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_nests_the_statistics_under_each_bucket() {
        let q = Query::parse("level:error").expect("parses");
        let body = numbers_body(&q, &LogFilter::default(), "ms", Some((&TermsField::Service, 5)), None);
        assert_eq!(body["size"], 0);
        assert_eq!(body["aggs"]["n"]["nested"]["path"], "num");
        assert_eq!(body["aggs"]["n"]["aggs"]["k"]["filter"]["term"]["num.k"], "ms");
        assert_eq!(body["aggs"]["t"]["terms"]["field"], "service");
        assert_eq!(body["aggs"]["t"]["aggs"]["n"], body["aggs"]["n"]);
        let series = numbers_body(&q, &LogFilter::default(), "ms", None, Some(60_000_000_000));
        assert_eq!(series["aggs"]["h"]["date_histogram"]["fixed_interval"], "60000ms");
        assert!(series.get("sort").is_none());
    }

    #[test]
    fn reads_an_answer() {
        let answer = json!({
            "hits": {"total": {"value": 7, "relation": "eq"}},
            "aggregations": {"n": {"doc_count": 9, "k": {"doc_count": 3,
                "s": {"count": 3, "min": 1.0, "max": 3.0, "avg": 2.0, "sum": 6.0},
                "p": {"values": {"50.0": 2.0, "90.0": 3.0, "95.0": 3.0, "99.0": 3.0}}}},
             "h": {"buckets": [{"key": 60_000, "doc_count": 7, "n": {"k": {"s": {"count": 0}}}}]}}
        });
        let n = numbers_of(&answer, None, Some(60_000_000_000)).expect("reads");
        assert_eq!((n.total, n.all.count, n.all.sum, n.all.max), (7, 3, 6.0, Some(3.0)));
        assert_eq!(n.all.percentiles, [Some(2.0), Some(3.0), Some(3.0), Some(3.0)]);
        assert_eq!(n.series, vec![(60_000_000_000, 7, Summary::default())]);
        assert!(numbers_of(&json!({}), None, None).is_err());
    }
}
