//! A record as one JSON object: a line of a raw batch (DESIGN §3), and the
//! stored source of an index document. One format, so that the raw store
//! and both indexes read back exactly what they wrote.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{Level, LogRecord, format_ts};
use loggerhub_codec::time::parse_rfc3339;
use loggerhub_codec::{AttrValue, value};

#[derive(Serialize, Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    tenant: Cow<'a, str>,
    #[serde(borrow)]
    service: Cow<'a, str>,
    #[serde(borrow)]
    level: Cow<'a, str>,
    timestamp: String,
    received_at: String,
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(borrow)]
    full_log: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    language: Option<Cow<'a, str>>,
    attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    raw_path: Option<Cow<'a, str>>,
}

fn to_line(r: &LogRecord, with_raw_path: bool) -> Line<'_> {
    Line {
        id: Cow::Borrowed(&r.id),
        tenant: Cow::Borrowed(&r.tenant),
        service: Cow::Borrowed(&r.service),
        level: Cow::Borrowed(r.level.as_str()),
        timestamp: format_ts(r.timestamp),
        received_at: format_ts(r.received_at),
        message: Cow::Borrowed(&r.message),
        full_log: Cow::Borrowed(&r.full_log),
        language: r.language.as_deref().map(Cow::Borrowed),
        attributes: attributes_to_json(&r.attributes),
        raw_path: r.raw_path.as_deref().filter(|_| with_raw_path).map(Cow::Borrowed),
    }
}

/// An attribute's value as JSON: its string, or the number or boolean
/// it holds (`loggerhub_codec::value`).
pub fn attr_to_json(v: &str) -> serde_json::Value {
    match AttrValue::of(v) {
        AttrValue::Str(s) => serde_json::Value::String(s.to_string()),
        AttrValue::Bool(b) => serde_json::Value::Bool(b),
        AttrValue::Number(n) => serde_json::from_str::<serde_json::Number>(n)
            .map_or_else(|_| serde_json::Value::String(n.to_string()), serde_json::Value::Number),
    }
}

/// What [`attr_to_json`] makes of a value, read back into the value a
/// record holds; anything else (an array, an object) as its JSON text.
pub fn attr_from_json(v: serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Bool(b) => value::boolean(b).to_string(),
        serde_json::Value::Number(n) => {
            let text = n.to_string();
            value::number(&text).unwrap_or(text)
        }
        other => other.to_string(),
    }
}

/// A value as the host keeps it: a mark before what is not a number or a
/// boolean taken off (`value::settle`), and a number written as JSON
/// writes it (`1E3` and `1000.0` are `1000.0`, `1e16` is `1e+16`), so that
/// its text is the same in every store and index whoever wrote it (a
/// plugin's SDK, Python's `repr`).
pub fn settle_attr(v: &mut String) {
    value::settle(v);
    if let AttrValue::Number(n) = AttrValue::of(v)
        && let Ok(json) = serde_json::from_str::<serde_json::Number>(n)
        && let Some(canonical) = value::number(&json.to_string())
        && canonical != *v
    {
        *v = canonical;
    }
}

/// The attributes as one JSON object, each value typed.
pub fn attributes_to_json(attrs: &[(String, String)]) -> serde_json::Map<String, serde_json::Value> {
    attrs.iter().map(|(k, v)| (k.clone(), attr_to_json(v))).collect()
}

/// Reads what [`attributes_to_json`] wrote.
pub fn attributes_from_json(map: serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    map.into_iter().map(|(k, v)| (k, attr_from_json(v))).collect()
}

/// Appends `r` as one JSON object to `out`; `with_raw_path` keeps its raw
/// path (an index document has one; a line of the raw store is where the
/// path points, so it never holds it).
pub fn write_record(out: &mut Vec<u8>, r: &LogRecord, with_raw_path: bool) {
    // Serialising plain strings and maps into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &to_line(r, with_raw_path));
}

/// `r` as one JSON object, raw path included.
pub fn record_to_json(r: &LogRecord) -> Vec<u8> {
    let mut out = Vec::new();
    write_record(&mut out, r, true);
    out
}

/// Reads what [`write_record`] wrote.
pub fn record_from_json(bytes: &[u8]) -> Result<LogRecord, String> {
    let l: Line<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(LogRecord {
        id: l.id.into_owned(),
        tenant: l.tenant.into_owned(),
        service: l.service.into_owned(),
        level: Level::parse(&l.level).unwrap_or_default(),
        timestamp: parse_rfc3339(&l.timestamp).unwrap_or(0),
        received_at: parse_rfc3339(&l.received_at).unwrap_or(0),
        message: l.message.into_owned(),
        full_log: l.full_log.into_owned(),
        language: l.language.map(Cow::into_owned),
        attributes: attributes_from_json(l.attributes),
        raw_path: l.raw_path.map(Cow::into_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_settle_as_json_writes_them() {
        for (given, kept) in [
            ("\u{0}1E3", "\u{0}1000.0"),
            ("\u{0}1e16", "\u{0}1e+16"),
            ("\u{0}1E+16", "\u{0}1e+16"),
            ("\u{0}500", "\u{0}500"),
            ("\u{0}0.25", "\u{0}0.25"),
            ("\u{0}-0", "\u{0}0"),
            ("\u{0}-0.0", "\u{0}0"),
            ("\u{0}[REDACTED]", "[REDACTED]"),
            ("plain", "plain"),
        ] {
            let mut v = given.to_string();
            settle_attr(&mut v);
            assert_eq!(v, kept);
            assert_eq!(
                attr_from_json(attr_to_json(&v)),
                kept,
                "the stores read back what they wrote"
            );
        }
    }

    #[test]
    fn round_trip_with_and_without_raw_path() {
        let r = LogRecord {
            id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
            tenant: "acme".into(),
            service: "web".into(),
            level: Level::Warn,
            timestamp: 1_700_000_000_123_000_000,
            received_at: 1_700_000_001_000_000_000,
            message: "m \"q\"".into(),
            full_log: "a\nb".into(),
            language: Some("rust".into()),
            // In key order: a JSON object keeps its keys sorted.
            attributes: vec![
                ("id".into(), "123".into()),
                ("k".into(), "v".into()),
                ("ms".into(), "\u{0}12.5".into()),
                ("ok".into(), "\0true".into()),
            ],
            raw_path: Some("logs/acme/x.ndjson#3".into()),
        };
        let json: serde_json::Value = serde_json::from_slice(&record_to_json(&r)).expect("json");
        assert_eq!(
            json["attributes"],
            serde_json::json!({"k": "v", "id": "123", "ms": 12.5, "ok": true}),
            "numbers and booleans are written as JSON's"
        );
        assert_eq!(record_from_json(&record_to_json(&r)), Ok(r.clone()));
        let mut line = Vec::new();
        write_record(&mut line, &r, false);
        let back = record_from_json(&line).expect("parses");
        assert_eq!(back.raw_path, None);
        assert_eq!(back.message, r.message);
        assert!(record_from_json(b"{").is_err());
    }
}
