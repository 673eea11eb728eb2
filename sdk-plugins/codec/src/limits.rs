//! What every backend can store: a record within these limits is stored by
//! PostgreSQL and SQLite, S3 and a local directory, OpenSearch and Tantivy
//! alike. Ingest refuses a record outside them with a 400 naming the field
//! (the payload decoder checks them), and the host dead-letters a plugin's
//! output record outside them, so a record that got 202 is never retried
//! forever against a store that refuses it.
//!
//! Why each bound: PostgreSQL text and JSONB hold no NUL; its B-tree index
//! rows (on `service`) are at most ~2.7 KB; OpenSearch refuses keyword terms
//! over 32 KB (attributes are keywords); timestamps are nanoseconds in an
//! i64 on every backend, and dates far from now are typing errors.

use std::fmt;

use crate::RecordOf;

pub const MAX_SERVICE_BYTES: usize = 256;
pub const MAX_LANGUAGE_BYTES: usize = 64;
pub const MAX_ATTRIBUTES: usize = 256;
pub const MAX_ATTRIBUTE_KEY_BYTES: usize = 256;
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 16 * 1024;
/// Deepest key a nested object in a JSON record flattens to
/// (`a.b.c`…): OpenSearch refuses a mapping deeper than 20 by default,
/// and no logger nests this far. Deeper, the object stays whole, as its
/// JSON text.
pub const MAX_ATTRIBUTE_DEPTH: usize = 8;
/// 1900-01-01T00:00:00Z, in ns.
pub const MIN_TIMESTAMP: i64 = -2_208_988_800 * 1_000_000_000;
/// 2200-01-01T00:00:00Z, in ns (exclusive).
pub const MAX_TIMESTAMP: i64 = 7_258_118_400 * 1_000_000_000;

/// A field no backend can store as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.problem)
    }
}

impl std::error::Error for FieldError {}

fn err(field: &str, problem: String) -> FieldError {
    FieldError {
        field: field.chars().take(100).collect(),
        problem,
    }
}

/// What is wrong with a short name (service, language, attribute key), if
/// anything: too long, or a control character.
fn name_problem(value: &str, max: usize) -> Option<String> {
    if value.len() > max {
        return Some(format!("{} bytes; at most {max}", value.len()));
    }
    // Control characters are ASCII or C1 (U+0080..U+009F, two bytes from
    // 0xC2): look at bytes, and decode only when one of those shows up.
    if value.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2)
        && let Some(c) = value.chars().find(|c| c.is_control())
    {
        return Some(format!("holds the control character {c:?}"));
    }
    None
}

/// A short name (service, language, attribute key): bounded, and no
/// control characters.
pub fn check_name(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    name_problem(value, max).map_or(Ok(()), |p| Err(err(field, p)))
}

/// Free text (message, full log, attribute value): anything but NUL.
pub fn check_text(field: &str, value: &str) -> Result<(), FieldError> {
    if value.as_bytes().contains(&0) {
        return Err(err(field, "holds a NUL character".into()));
    }
    Ok(())
}

pub fn check_timestamp(ns: i64) -> Result<(), FieldError> {
    if (MIN_TIMESTAMP..MAX_TIMESTAMP).contains(&ns) {
        Ok(())
    } else {
        Err(err("timestamp", "outside 1900-01-01 to 2200-01-01".into()))
    }
}

/// Checks the attributes: how many, and each key and value. (Runs for
/// every record at ingest: the field's name is only made for an error.)
pub fn check_attributes<'a>(attrs: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> Result<(), FieldError> {
    if attrs.len() > MAX_ATTRIBUTES {
        return Err(err(
            "attributes",
            format!("{} attributes; at most {MAX_ATTRIBUTES}", attrs.len()),
        ));
    }
    for (k, v) in attrs {
        if k.is_empty() {
            return Err(err("attributes", "an empty key".into()));
        }
        let problem = name_problem(k, MAX_ATTRIBUTE_KEY_BYTES)
            .or_else(|| {
                (v.len() > MAX_ATTRIBUTE_VALUE_BYTES)
                    .then(|| format!("{} bytes; at most {MAX_ATTRIBUTE_VALUE_BYTES}", v.len()))
            })
            .or_else(|| crate::value::problem(v).map(str::to_string));
        if let Some(p) = problem {
            return Err(err(&format!("attributes.{k}"), p));
        }
    }
    Ok(())
}

/// Every field of a record a client or a plugin chooses (the host chooses
/// `tenant`, and replaces an `id` it cannot use).
pub fn check_record<S: AsRef<str>>(r: &RecordOf<S>) -> Result<(), FieldError> {
    check_name("service", r.service.as_ref(), MAX_SERVICE_BYTES)?;
    if let Some(l) = &r.language {
        check_name("language", l.as_ref(), MAX_LANGUAGE_BYTES)?;
    }
    check_text("message", r.message.as_ref())?;
    check_text("full_log", r.full_log.as_ref())?;
    check_timestamp(r.timestamp)?;
    check_attributes(r.attributes.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Level, Record};

    fn record() -> Record {
        Record {
            id: String::new(),
            tenant: "acme".into(),
            service: "billing".into(),
            level: Level::Info,
            timestamp: 1_760_099_196_000_000_000,
            message: "line one\n\tline two".into(),
            full_log: String::new(),
            language: Some("rust".into()),
            attributes: vec![("k".into(), "v".into())],
        }
    }

    #[test]
    fn what_no_backend_stores_is_named() {
        assert_eq!(check_record(&record()), Ok(()));
        let field = |f: fn(&mut Record)| {
            let mut r = record();
            f(&mut r);
            check_record(&r).map_err(|e| e.field)
        };
        assert_eq!(field(|r| r.service = "s".repeat(10_000)), Err("service".into()));
        assert_eq!(field(|r| r.service = "a\0b".into()), Err("service".into()));
        assert_eq!(field(|r| r.service = "a\nb".into()), Err("service".into()));
        assert_eq!(field(|r| r.message = "a\0b".into()), Err("message".into()));
        assert_eq!(field(|r| r.full_log = "\0".into()), Err("full_log".into()));
        assert_eq!(field(|r| r.language = Some("x\0".into())), Err("language".into()));
        assert_eq!(
            field(|r| r.attributes = vec![("k".into(), "\0".into())]),
            Err("attributes.k".into())
        );
        assert_eq!(
            field(|r| r.attributes = vec![("k\0".into(), "v".into())]),
            Err("attributes.k\0".into())
        );
        assert_eq!(
            field(|r| r.attributes = vec![(String::new(), "v".into())]),
            Err("attributes".into())
        );
        assert_eq!(
            field(|r| r.attributes = vec![("k".into(), "v".repeat(MAX_ATTRIBUTE_VALUE_BYTES + 1))]),
            Err("attributes.k".into())
        );
        assert_eq!(
            field(|r| r.attributes = (0..=MAX_ATTRIBUTES).map(|i| (i.to_string(), String::new())).collect()),
            Err("attributes".into())
        );
        assert_eq!(field(|r| r.timestamp = MAX_TIMESTAMP), Err("timestamp".into()));
        assert_eq!(field(|r| r.timestamp = MIN_TIMESTAMP - 1), Err("timestamp".into()));
        assert_eq!(field(|r| r.timestamp = 0), Ok(()));
        assert_eq!(field(|r| r.service = "ü".repeat(MAX_SERVICE_BYTES / 2)), Ok(()));
    }
}
