//! The query DSL bodies: a search (the query language, the list filters,
//! `search_after`) and its histogram, and the histogram's answer read.

use serde_json::{Value, json};

use super::corrupt;
use super::documents::id_key;
use crate::error::BackendError;
use crate::model::{Cursor, Level, LevelCounts, LogFilter, STATS_MAX_BUCKETS, TOTAL_BOUND, format_ts};
use crate::search::query::{Expr, Matcher, PatternField, Query, unsortable};
use crate::search::terms::SeriesCounts;
use crate::search::{Terms, TermsField};

/// The query DSL for a DESIGN §4 query plus the list filters, newest first,
/// resuming after `cursor`; asks for `size` hits and the total, exact or
/// counted up to [`TOTAL_BOUND`].
pub fn search_body(q: &Query, filter: &LogFilter, cursor: Option<&Cursor>, size: usize, exact_total: bool) -> Value {
    let (mut must, mut must_not, mut filters) = (Vec::new(), Vec::new(), Vec::new());
    let top: Vec<&Expr> = match &q.expr {
        None => Vec::new(),
        Some(Expr::And(parts)) => parts.iter().collect(),
        Some(e) => vec![e],
    };
    for e in top {
        match e {
            Expr::Not(inner) => must_not.push(expr_query(inner)),
            // Exact matches do not score: filter context is cached.
            Expr::Match(m) if !matches!(m, Matcher::Text(_)) => filters.push(matcher_query(m)),
            _ => must.push(expr_query(e)),
        }
    }
    if let Some(s) = &filter.service {
        filters.push(json!({"term": {"service": s}}));
    }
    if let Some(l) = filter.level {
        filters.push(json!({"term": {"level": l.as_str()}}));
    }
    if filter.from.is_some() || filter.to.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(from) = filter.from {
            range.insert("gte".into(), json!(format_ts(from)));
        }
        if let Some(to) = filter.to {
            range.insert("lt".into(), json!(format_ts(to)));
        }
        filters.push(json!({"range": {"timestamp": range}}));
    }
    let mut body = json!({
        "size": size,
        "track_total_hits": if exact_total { json!(true) } else { json!(TOTAL_BOUND) },
        "_source": false,
        "query": {"bool": {"must": must, "must_not": must_not, "filter": filters}},
        "sort": [{"timestamp": "desc"}, {"id_key": "desc"}],
    });
    if let Some(c) = cursor {
        body["search_after"] = json!([c.timestamp, id_key(&c.id)]);
    }
    body
}

/// A search's histogram: the same query, no hits, a `date_histogram` of
/// `interval_ns` (whole milliseconds) with the levels counted per bucket.
pub fn histogram_body(q: &Query, filter: &LogFilter, interval_ns: i64) -> Value {
    let mut body = search_body(q, filter, None, 0, false);
    if let Some(b) = body.as_object_mut() {
        b.remove("sort");
        b.insert("track_total_hits".into(), json!(false));
        b.insert(
            "aggs".into(),
            json!({"t": {
                "date_histogram": {
                    "field": "timestamp",
                    "fixed_interval": format!("{}ms", (interval_ns / 1_000_000).max(1)),
                    "min_doc_count": 1
                },
                "aggs": {"l": {"terms": {"field": "level", "size": Level::ALL.len()}}}
            }}),
        );
    }
    body
}

/// Counting by a field: the same query, no hits, every match counted, a
/// `terms` aggregation of the `size` most common values (ties by value),
/// and for an attribute the matches that lack it. An attribute is counted
/// over `attr`, which holds each attribute as `key=value` (a `flat_object`
/// answers no aggregation): the values that start with `key=`.
///
/// With `interval_ns`, each value's matches, all matches and those that
/// lack the attribute are counted per `date_histogram` bucket too.
pub fn terms_body(q: &Query, filter: &LogFilter, field: &TermsField, size: usize, interval_ns: Option<i64>) -> Value {
    let mut body = search_body(q, filter, None, 0, true);
    let (on, include) = match field {
        TermsField::Service => ("service", None),
        TermsField::Level => ("level", None),
        TermsField::Attribute(key) => ("attr", Some(format!("{}=.*", lucene_literal(key)))),
        TermsField::AttributeKeys => ("attr_key", None),
    };
    // One shard per tenant index: its own list is the answer, no wider.
    let mut terms = json!({
        "field": on,
        "size": size.max(1),
        "shard_size": size.max(1),
        "order": [{"_count": "desc"}, {"_key": "asc"}]
    });
    if let Some(include) = include {
        terms["include"] = json!(include);
    }
    let mut aggs = json!({"t": {"terms": terms}});
    if let TermsField::AttributeKeys = field {
        aggs["m"] = json!({"filter": {"bool": {"must_not": [{"exists": {"field": "attr_key"}}]}}});
    }
    if let TermsField::Attribute(key) = field {
        // Lacking a `key=` in `attr`, as Tantivy counts it: a record
        // indexed before `attr` existed counts as missing.
        aggs["m"] = json!({"filter": {"bool": {"must_not": [{"prefix": {"attr": format!("{key}=")}}]}}});
    }
    if let Some(interval) = interval_ns {
        let h = json!({"date_histogram": {
            "field": "timestamp",
            "fixed_interval": format!("{}ms", (interval / 1_000_000).max(1)),
            "min_doc_count": 1
        }});
        for name in ["t", "m"] {
            if let Some(agg) = aggs.get_mut(name) {
                agg["aggs"] = json!({"h": h.clone()});
            }
        }
        aggs["h"] = h;
    }
    if let Some(b) = body.as_object_mut() {
        b.remove("sort");
        b.insert("aggs".into(), aggs);
    }
    body
}

/// [`terms_body`]'s answer.
pub(super) fn terms_of(answer: &Value, field: &TermsField, size: usize) -> Result<Terms, BackendError> {
    let total = answer
        .pointer("/hits/total/value")
        .and_then(Value::as_u64)
        .ok_or_else(|| corrupt("a count without its total"))?;
    let Some(buckets) = answer.pointer("/aggregations/t/buckets").and_then(Value::as_array) else {
        return Err(corrupt("a count without its buckets"));
    };
    let prefix = match field {
        TermsField::Attribute(key) => format!("{key}="),
        _ => String::new(),
    };
    let mut counts = Vec::with_capacity(buckets.len().min(size));
    for b in buckets.iter().take(size) {
        let (Some(key), Some(n)) = (b["key"].as_str(), b["doc_count"].as_u64()) else {
            return Err(corrupt(format!("a count's bucket without its key: {b}")));
        };
        counts.push((key.strip_prefix(prefix.as_str()).unwrap_or(key).to_string(), n));
    }
    let other = answer
        .pointer("/aggregations/t/sum_other_doc_count")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        + buckets
            .iter()
            .skip(size)
            .filter_map(|b| b["doc_count"].as_u64())
            .sum::<u64>();
    let missing = answer
        .pointer("/aggregations/m/doc_count")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut series = Vec::new();
    if let Some(all) = answer.pointer("/aggregations/h/buckets").and_then(Value::as_array) {
        let mut out = SeriesCounts::new(counts.len());
        for (b, n) in date_buckets(all)? {
            out.add_total(b, n);
        }
        for (i, value) in buckets.iter().take(size).enumerate() {
            let per_bucket = value.pointer("/h/buckets").and_then(Value::as_array);
            for (b, n) in date_buckets(per_bucket.map_or(&[][..], Vec::as_slice))? {
                out.add_value(b, i, n);
            }
        }
        if let Some(lacking) = answer.pointer("/aggregations/m/h/buckets").and_then(Value::as_array) {
            for (b, n) in date_buckets(lacking)? {
                out.add_missing(b, n);
            }
        }
        series = out.finish();
    }
    Ok(Terms {
        total,
        buckets: counts,
        other,
        missing,
        series,
    })
}

/// A `date_histogram`'s buckets: (start in ns, count). Keys are epoch
/// milliseconds, also for `date_nanos`.
pub(super) fn date_buckets(buckets: &[Value]) -> Result<Vec<(i64, u64)>, BackendError> {
    buckets
        .iter()
        .take(STATS_MAX_BUCKETS + 1)
        .map(|b| {
            let key = b["key"].as_i64().or_else(|| b["key"].as_f64().map(|k| k as i64));
            match (key, b["doc_count"].as_u64()) {
                (Some(k), Some(n)) => Ok((k.saturating_mul(1_000_000), n)),
                _ => Err(corrupt(format!("a histogram bucket without its key: {b}"))),
            }
        })
        .collect()
}

/// `s` as itself in a Lucene regular expression (a `terms` aggregation's
/// `include`).
fn lucene_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '.' | '?'
                | '+'
                | '*'
                | '|'
                | '{'
                | '}'
                | '['
                | ']'
                | '('
                | ')'
                | '"'
                | '\\'
                | '#'
                | '@'
                | '&'
                | '<'
                | '>'
                | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The buckets of [`histogram_body`]'s answer, oldest first.
pub(super) fn histogram_of(answer: &Value) -> Result<Vec<(i64, LevelCounts)>, BackendError> {
    let Some(buckets) = answer.pointer("/aggregations/t/buckets").and_then(Value::as_array) else {
        return Err(corrupt("a histogram answer without its buckets"));
    };
    let mut out = Vec::with_capacity(buckets.len().min(STATS_MAX_BUCKETS + 1));
    for b in buckets.iter().take(STATS_MAX_BUCKETS + 1) {
        // Keys are epoch milliseconds, also for date_nanos.
        let key = b["key"].as_i64().or_else(|| b["key"].as_f64().map(|k| k as i64));
        let key = key.ok_or_else(|| corrupt(format!("a histogram bucket without a key: {b}")))?;
        let mut counts = LevelCounts::default();
        for l in b.pointer("/l/buckets").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(level), Some(n)) = (l["key"].as_str().and_then(Level::parse), l["doc_count"].as_u64()) {
                counts.0[level as usize] += n;
            }
        }
        out.push((key.saturating_mul(1_000_000), counts));
    }
    Ok(out)
}

fn matcher_query(m: &Matcher) -> Value {
    match m {
        Matcher::Text(t) => json!({"bool": {
            "should": [{"match_phrase": {"message": t}}, {"match_phrase": {"full_log": t}}],
            "minimum_should_match": 1
        }}),
        Matcher::Service(s) => json!({"term": {"service": s}}),
        Matcher::Level(l) => json!({"term": {"level": l.as_str()}}),
        Matcher::Attribute { key, value } => json!({"term": {format!("attributes.{key}"): value}}),
        Matcher::Exists(key) => json!({"exists": {"field": format!("attributes.{key}")}}),
        Matcher::Number { key, from, to } => {
            let mut range = serde_json::Map::new();
            if let Some(from) = from {
                range.insert("gte".into(), json!(unsortable(*from)));
            }
            if let Some(to) = to {
                range.insert("lte".into(), json!(unsortable(*to)));
            }
            // `[* TO *]`: the attribute is a number.
            let mut filter = vec![json!({"term": {"num.k": key}})];
            if !range.is_empty() {
                filter.push(json!({"range": {"num.v": range}}));
            }
            // An index made before `num` gets it at its next write; until
            // then it holds no number.
            json!({"nested": {"path": "num", "ignore_unmapped": true, "query": {"bool": {"filter": filter}}}})
        }
        Matcher::Time { from: None, to: None } => json!({"match_all": {}}),
        Matcher::Time { from, to } => {
            let mut range = serde_json::Map::new();
            if let Some(from) = from {
                range.insert("gte".into(), json!(format_ts(*from)));
            }
            if let Some(to) = to {
                range.insert("lte".into(), json!(format_ts(*to)));
            }
            json!({"range": {"timestamp": range}})
        }
        Matcher::Pattern { field, pattern } => match field {
            PatternField::Service => json!({"wildcard": {"service": {"value": pattern}}}),
            // The parser lets only a prefix through here: `flat_object`
            // answers `prefix`.
            PatternField::Attribute(key) => json!({"prefix": {
                format!("attributes.{key}"): {"value": pattern.trim_end_matches('*')}
            }}),
            PatternField::Text => json!({"bool": {
                "should": [{"wildcard": {"message": {"value": pattern}}}, {"wildcard": {"full_log": {"value": pattern}}}],
                "minimum_should_match": 1
            }}),
        },
    }
}

/// The tree as nested `bool` queries (a `bool` of only `must_not` matches
/// every other document in OpenSearch).
fn expr_query(e: &Expr) -> Value {
    match e {
        Expr::Match(m) => matcher_query(m),
        Expr::Not(inner) => json!({"bool": {"must_not": [expr_query(inner)]}}),
        Expr::And(parts) => {
            let (not, yes): (Vec<&Expr>, Vec<&Expr>) = parts.iter().partition(|p| matches!(p, Expr::Not(_)));
            let must_not: Vec<Value> = not
                .into_iter()
                .filter_map(|p| match p {
                    Expr::Not(inner) => Some(expr_query(inner)),
                    _ => None,
                })
                .collect();
            let must: Vec<Value> = yes.into_iter().map(expr_query).collect();
            json!({"bool": {"must": must, "must_not": must_not}})
        }
        Expr::Or(parts) => json!({"bool": {
            "should": parts.iter().map(expr_query).collect::<Vec<_>>(),
            "minimum_should_match": 1
        }}),
    }
}
