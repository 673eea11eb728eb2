//! One OTLP log record as a document of the JSON payload: its resource's
//! attributes rendered once (`Shared`), then its level, message, time and
//! attributes, values nested past `MAX_DEPTH` cut.

use loggerhub_codec::Level;
use serde_json::{Map, Value, json};

use super::proto;

/// How deep an attribute's value may nest before it is cut: bounds the
/// recursion a hostile body can ask for.
const MAX_DEPTH: usize = 16;

/// A resource's attributes, rendered once and copied into each of its
/// records.
pub(super) struct Shared {
    service: Option<String>,
    attributes: Vec<(String, Value)>,
    /// What they add to each record.
    pub(super) bytes: usize,
}

impl Shared {
    pub(super) fn of(resource: &[proto::KeyValue]) -> Shared {
        let service = resource
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .map(|v| text(v, 0));
        let attributes: Vec<(String, Value)> = resource
            .iter()
            .filter(|kv| kv.key != "service.name")
            .filter_map(|kv| kv.value.as_ref().map(|v| (kv.key.clone(), attribute(v))))
            .collect();
        let bytes = attributes
            .iter()
            .map(|(k, v)| k.len() + v.to_string().len() + 6)
            .sum::<usize>()
            + service.as_ref().map_or(0, String::len);
        Shared {
            service,
            attributes,
            bytes,
        }
    }
}

pub(super) fn document(r: &proto::LogRecord, shared: &Shared, scope: Option<&proto::InstrumentationScope>) -> Value {
    let mut attributes: Map<String, Value> = shared.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for kv in &r.attributes {
        if let Some(v) = &kv.value {
            attributes.insert(kv.key.clone(), attribute(v));
        }
    }
    if let Some(scope) = scope.filter(|s| !s.name.is_empty()) {
        attributes.insert("otel.scope.name".into(), Value::String(scope.name.clone()));
    }
    if !r.event_name.is_empty() {
        attributes.insert("event.name".into(), Value::String(r.event_name.clone()));
    }
    for (key, id) in [("trace_id", &r.trace_id), ("span_id", &r.span_id)] {
        if id.iter().any(|b| *b != 0) {
            attributes.insert(key.into(), Value::String(hex::encode(id)));
        }
    }
    let full_log = attributes.remove("exception.stacktrace");
    let message = r.body.as_ref().map(|b| text(b, 0)).unwrap_or_default();
    let mut doc = json!({ "message": message, "attributes": attributes });
    if let Some(level) = level(r) {
        doc["level"] = json!(level.as_str());
    }
    let time = if r.time_unix_nano != 0 {
        r.time_unix_nano
    } else {
        r.observed_time_unix_nano
    };
    if let Ok(ns) = i64::try_from(time)
        && ns != 0
    {
        doc["timestamp"] = json!(ns);
    }
    if let Some(s) = &shared.service {
        doc["service"] = json!(s);
    }
    if let Some(f) = full_log {
        doc["full_log"] = f;
    }
    doc
}

/// The severity text when it names a level, else the number's range
/// (OTLP's SeverityNumber: 1–4 trace … 21–24 fatal).
fn level(r: &proto::LogRecord) -> Option<Level> {
    if let Some(l) = Level::parse(&r.severity_text) {
        return Some(l);
    }
    Some(match r.severity_number {
        1..=4 => Level::Trace,
        5..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warn,
        17..=20 => Level::Error,
        21..=24 => Level::Fatal,
        _ => return None,
    })
}

/// An attribute's value as the payload decoder reads it: a string, a
/// number or a boolean keeps its type; a map stays an object (the decoder
/// makes dotted keys of it, `http.status`, as of a JSON record's); an
/// array or bytes become text.
fn attribute(v: &proto::AnyValue) -> Value {
    use proto::Any;
    match &v.value {
        Some(
            Any::KvlistValue(_) | Any::StringValue(_) | Any::BoolValue(_) | Any::IntValue(_) | Any::DoubleValue(_),
        ) => json_value(v, 0),
        _ => Value::String(text(v, 0)),
    }
}

/// An attribute or body value as text: strings as they are, the rest as
/// JSON.
fn text(v: &proto::AnyValue, depth: usize) -> String {
    match &v.value {
        Some(proto::Any::StringValue(s)) => s.clone(),
        _ => json_value(v, depth).to_string(),
    }
}

fn json_value(v: &proto::AnyValue, depth: usize) -> Value {
    use proto::Any;
    if depth > MAX_DEPTH {
        return Value::String("…".into());
    }
    match &v.value {
        None => Value::Null,
        Some(Any::StringValue(s)) => json!(s),
        Some(Any::BoolValue(b)) => json!(b),
        Some(Any::IntValue(i)) => json!(i),
        Some(Any::DoubleValue(d)) => json!(d),
        Some(Any::BytesValue(b)) => {
            use base64::Engine;
            json!(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(Any::ArrayValue(a)) => Value::Array(a.values.iter().map(|x| json_value(x, depth + 1)).collect()),
        Some(Any::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map_or(Value::Null, |x| json_value(x, depth + 1));
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::*;

    #[test]
    fn deep_values_are_cut() {
        let mut v = AnyValue {
            value: Some(Any::StringValue("leaf".into())),
        };
        for _ in 0..100 {
            v = AnyValue {
                value: Some(Any::ArrayValue(ArrayValue { values: vec![v] })),
            };
        }
        let t = text(&v, 0);
        assert!(t.contains('…') && !t.contains("leaf"), "{t}");
    }
}
