//! A record as the document the template maps, and read back from one;
//! `id_key`, the id as the sort key OpenSearch orders by.

use serde::Deserialize;
use serde_json::{Value, json};

use super::corrupt;
use crate::error::BackendError;
use crate::model::{Level, LogRecord, attributes_from_json, attributes_to_json, format_ts, id_sort_key};
use loggerhub_codec::AttrValue;

/// The document of one record, as the template maps it.
pub fn to_document(r: &LogRecord) -> Value {
    let text = |v: &str| AttrValue::of(v).text().to_string();
    // Numbers again as (key, value) pairs of a nested field: one `double`
    // for every key, so no tenant's keys grow the mapping and a key that
    // is a number in one record and a string in another refuses nothing.
    let numbers: Vec<Value> = r
        .attributes
        .iter()
        .filter_map(|(k, v)| {
            // -0 is 0, as in Tantivy and the tail (Lucene orders -0 first).
            let n = AttrValue::of(v).as_f64()?;
            Some(json!({"k": k, "v": if n == 0.0 { 0.0 } else { n }}))
        })
        .collect();
    let mut doc = json!({
        "id": r.id,
        "id_key": id_key(&r.id),
        "tenant": r.tenant,
        "service": r.service,
        "level": r.level.as_str(),
        "timestamp": format_ts(r.timestamp),
        "received_at": format_ts(r.received_at),
        "message": r.message,
        "full_log": r.full_log,
        "attributes": attributes_to_json(&r.attributes),
        // The attributes again as `key=value`, what counting by one reads.
        "attr": r.attributes.iter().map(|(k, v)| format!("{k}={}", text(v))).collect::<Vec<_>>(),
        // And their keys, what counting the tenant's attributes reads.
        "attr_key": r.attributes.iter().map(|(k, _)| k.as_str()).collect::<std::collections::BTreeSet<_>>(),
    });
    if !numbers.is_empty() {
        doc["num"] = Value::Array(numbers);
    }
    if let Some(l) = &r.language {
        doc["language"] = json!(l);
    }
    if let Some(p) = &r.raw_path {
        doc["raw_path"] = json!(p);
    }
    doc
}

pub(super) fn id_key(id: &str) -> String {
    format!("{:032x}", id_sort_key(id))
}

#[derive(Deserialize)]
struct Source {
    id: String,
    tenant: String,
    service: String,
    level: String,
    timestamp: String,
    received_at: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    full_log: String,
    language: Option<String>,
    #[serde(default)]
    attributes: serde_json::Map<String, Value>,
    raw_path: Option<String>,
}

/// Reads what [`to_document`] wrote.
pub fn from_document(source: Value) -> Result<LogRecord, BackendError> {
    let s: Source = serde_json::from_value(source).map_err(|e| corrupt(e.to_string()))?;
    let ts = |v: &str| crate::model::parse_ts(v).ok_or_else(|| corrupt(format!("bad timestamp {v:?} in the index")));
    Ok(LogRecord {
        level: Level::parse(&s.level).ok_or_else(|| corrupt(format!("bad level {:?}", s.level)))?,
        timestamp: ts(&s.timestamp)?,
        received_at: ts(&s.received_at)?,
        id: s.id,
        tenant: s.tenant,
        service: s.service,
        message: s.message,
        full_log: s.full_log,
        language: s.language,
        attributes: attributes_from_json(s.attributes),
        raw_path: s.raw_path,
    })
}
