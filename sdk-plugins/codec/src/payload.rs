//! The SDK payload (DESIGN.md §3) as JSON: one object, an array of objects,
//! or NDJSON. Ingest validates bodies with this decoder before it answers
//! 202, and the built-in JSON parser plugin runs the very same code, so what
//! ingest accepts the pipeline parses.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::{Level, Record, RecordOf, RecordRef, limits, line, time, value};

/// Why a body is not a valid payload; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for PayloadError {}

impl From<serde_json::Error> for PayloadError {
    fn from(e: serde_json::Error) -> Self {
        let text = e.to_string();
        let message = match text.rsplit_once(" at line ") {
            Some((m, _)) => m.to_string(),
            None => text,
        };
        PayloadError {
            line: e.line(),
            column: e.column(),
            message,
        }
    }
}

/// Decodes a JSON body into records. Fields the client did not send stay
/// empty (`id`, `tenant`, `service`, `full_log`) or zero (`timestamp`): the
/// host and the enricher fill them.
pub fn parse_json(body: &[u8]) -> Result<Vec<Record>, PayloadError> {
    let mut out = Vec::new();
    for_each(body, |r| out.push(r.into_record()))?;
    Ok(out)
}

/// [`parse_json`], with strings borrowed from `body` where JSON allows
/// (no escapes in them).
pub fn parse_json_ref(body: &[u8]) -> Result<Vec<RecordRef<'_>>, PayloadError> {
    let mut out = Vec::new();
    for_each(body, |r| out.push(r.into_record()))?;
    Ok(out)
}

/// [`parse_json_ref`], reading a shipped line as the line parser reads a
/// `text/plain` one (`line::detect`). A record that names no level of its
/// own is taken for a line a shipper tailed and wrapped: Fluent Bit's and
/// Docker's `{"log": …}`, Filebeat's and Vector's `message`, a Loki line,
/// an OTLP body (ingest writes a level for those only when the sender gave
/// one). Such a record takes the level its line names, and the time its
/// line names replaces the one the shipper stamped when it read the line.
/// The line stays the message. `now` places times written without a year.
pub fn parse_json_ref_reading_lines(body: &[u8], now: i64) -> Result<Vec<RecordRef<'_>>, PayloadError> {
    let mut out = Vec::new();
    for_each(body, |mut r| {
        r.read_line(now);
        out.push(r.into_record())
    })?;
    Ok(out)
}

/// What ingest needs to know of a body, read without copying its strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub count: usize,
    /// The first record's timestamp (0 if it has none).
    pub first_timestamp: i64,
    /// The first record naming a tenant other than the expected one:
    /// (index, tenant).
    pub foreign_tenant: Option<(usize, String)>,
    /// The oldest and the newest timestamp a record names, each with the
    /// first record's index that names it (records without one, or with 0,
    /// are stamped when they arrive, so they are neither).
    pub oldest: Option<(usize, i64)>,
    pub newest: Option<(usize, i64)>,
}

/// Validates a body exactly as [`parse_json`] does, without building records.
pub fn scan_json(body: &[u8], tenant: &str) -> Result<Scan, PayloadError> {
    let mut scan = Scan::default();
    for_each(body, |r| {
        if scan.count == 0 {
            scan.first_timestamp = r.timestamp.unwrap_or(0);
        }
        // 0 is "none": the record is stamped when it arrives.
        if let Some(ts) = r.timestamp.filter(|&ts| ts != 0) {
            if scan.oldest.is_none_or(|(_, o)| ts < o) {
                scan.oldest = Some((scan.count, ts));
            }
            if scan.newest.is_none_or(|(_, n)| ts > n) {
                scan.newest = Some((scan.count, ts));
            }
        }
        if scan.foreign_tenant.is_none()
            && let Some(t) = r.tenant.as_deref().filter(|t| !t.is_empty() && *t != tenant)
        {
            scan.foreign_tenant = Some((scan.count, t.to_string()));
        }
        scan.count += 1;
    })?;
    Ok(scan)
}

fn for_each<'a>(body: &'a [u8], mut f: impl FnMut(Incoming<'a>)) -> Result<(), PayloadError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return Err(PayloadError {
            line: 1,
            column: 1,
            message: "empty body: expected a JSON object, an array of objects, or NDJSON".into(),
        });
    };
    if body[first] == b'[' {
        let items: Vec<Incoming<'_>> = serde_json::from_slice(body)?;
        items.into_iter().for_each(f);
        return Ok(());
    }
    for item in serde_json::Deserializer::from_slice(body).into_iter::<Incoming<'_>>() {
        f(item?);
    }
    Ok(())
}

#[derive(Default)]
struct Incoming<'a> {
    id: Option<Cow<'a, str>>,
    tenant: Option<Cow<'a, str>>,
    service: Option<Cow<'a, str>>,
    level: Option<Level>,
    timestamp: Option<i64>,
    message: Option<Cow<'a, str>>,
    full_log: Option<Cow<'a, str>>,
    language: Option<Cow<'a, str>>,
    attributes: Vec<(String, String)>,
    /// `message` holds a Docker/Fluent Bit `log` field, which a real
    /// `message` replaces.
    message_from_log: bool,
}

impl<'a> Incoming<'a> {
    /// What every backend can store (`limits`): checked before 202, so a
    /// record that got one is never refused for good by a store.
    fn check(&self) -> Result<(), limits::FieldError> {
        limits::check_name(
            "service",
            self.service.as_deref().unwrap_or_default(),
            limits::MAX_SERVICE_BYTES,
        )?;
        if let Some(l) = &self.language {
            limits::check_name("language", l, limits::MAX_LANGUAGE_BYTES)?;
        }
        limits::check_text("message", self.message.as_deref().unwrap_or_default())?;
        limits::check_text("full_log", self.full_log.as_deref().unwrap_or_default())?;
        if let Some(t) = &self.tenant {
            limits::check_name("tenant_id", t, 64)?;
        }
        if let Some(ts) = self.timestamp {
            limits::check_timestamp(ts)?;
        }
        limits::check_attributes(self.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// A shipped line's own level and time (`parse_json_ref_reading_lines`).
    fn read_line(&mut self, now: i64) {
        if self.level.is_some() {
            return;
        }
        let line = match (&self.message, &self.full_log) {
            (Some(m), _) if !m.is_empty() => m,
            (_, Some(f)) => f,
            _ => return,
        };
        let (timestamp, level) = line::detect(line, now);
        if level.is_some() {
            self.level = level;
        }
        // A time no record may hold is no reading of the line.
        if let Some(ts) = timestamp.filter(|ts| limits::check_timestamp(*ts).is_ok()) {
            self.timestamp = Some(ts);
        }
    }

    fn into_record<S: From<Cow<'a, str>> + From<String>>(self) -> RecordOf<S> {
        let s = |v: Option<Cow<'a, str>>| S::from(v.unwrap_or_default());
        RecordOf {
            id: s(self.id),
            tenant: s(self.tenant),
            service: s(self.service),
            level: self.level.unwrap_or_default(),
            timestamp: self.timestamp.unwrap_or(0),
            message: s(self.message),
            full_log: s(self.full_log),
            language: self.language.map(S::from),
            attributes: self
                .attributes
                .into_iter()
                .map(|(k, v)| (S::from(k), S::from(v)))
                .collect(),
        }
    }
}

impl<'de> Deserialize<'de> for Incoming<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(IncomingVisitor)
    }
}

struct IncomingVisitor;

/// A string field that may be absent or null.
fn opt_str<'de, A: MapAccess<'de>>(map: &mut A, field: &str) -> Result<Option<Cow<'de, str>>, A::Error> {
    match map.next_value::<Option<CowStr<'de>>>() {
        Ok(v) => Ok(v.map(|c| c.0)),
        Err(e) => Err(de::Error::custom(format!("field `{field}`: {e}"))),
    }
}

impl<'de> Visitor<'de> for IncomingVisitor {
    type Value = Incoming<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a log record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = Incoming::default();
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            match key.0.as_ref() {
                "id" => {
                    r.id = opt_str(&mut map, "id")?;
                    if let Some(id) = r.id.as_ref().filter(|id| !is_valid_id(id)) {
                        return Err(de::Error::custom(format!(
                            "field `id`: {id:?} is neither a ULID nor a UUID"
                        )));
                    }
                }
                "tenant_id" | "tenant" => r.tenant = opt_str(&mut map, "tenant_id")?,
                "service" | "service.name" | "service_name" => match map.next_value::<Value>()? {
                    // ECS and OpenTelemetry nest it: {"service": {"name": …}}.
                    Value::Object(mut o) => {
                        if let Some(Value::String(name)) = o.remove("name") {
                            r.service = Some(Cow::Owned(name));
                        }
                        add_attribute(&mut r.attributes, "service".into(), Value::Object(o));
                    }
                    v => r.service = text_field("service", v)?,
                },
                "message" | "msg" => {
                    let message = opt_str(&mut map, "message")?;
                    if r.message_from_log
                        && let Some(log) = r.message.take()
                    {
                        r.attributes.push(("log".into(), log.into_owned()));
                    }
                    r.message_from_log = false;
                    r.message = message;
                }
                // Docker's json-file and Fluent Bit put the line under
                // `log`; ECS nests the level there ({"log": {"level": …}}).
                "log" => match map.next_value::<Value>()? {
                    Value::String(line) if r.message.is_none() => {
                        let line = line.strip_suffix('\n').unwrap_or(&line);
                        r.message = Some(Cow::Owned(line.strip_suffix('\r').unwrap_or(line).to_string()));
                        r.message_from_log = true;
                    }
                    // ECS's other `log.*` (Filebeat's `log.file.path`,
                    // `log.offset`) stay as attributes.
                    Value::Object(mut o) => {
                        if let Some(v) = o.remove("level") {
                            r.level = level_value(v)?;
                        }
                        add_attribute(&mut r.attributes, "log".into(), Value::Object(o));
                    }
                    Value::Null => {}
                    v => {
                        add_attribute(&mut r.attributes, "log".into(), v);
                    }
                },
                "full_log" => r.full_log = opt_str(&mut map, "full_log")?,
                "language" => r.language = opt_str(&mut map, "language")?,
                "level" | "severity" | "log.level" | "levelname" | "loglevel" | "lvl" | "severity_text" => {
                    if let Some(level) = level_value(map.next_value::<Value>()?)? {
                        r.level = Some(level);
                    }
                }
                "timestamp" | "time" | "@timestamp" | "ts" => {
                    r.timestamp =
                        match map.next_value::<Value>()? {
                            Value::Null => None,
                            Value::String(s) => Some(time::parse_rfc3339(&s).ok_or_else(|| {
                                de::Error::custom(format!("field `timestamp`: {s:?} is not an RFC 3339 time"))
                            })?),
                            Value::Number(n) => Some(epoch_to_ns(&n).ok_or_else(|| {
                                de::Error::custom(format!("field `timestamp`: {n} is not a unix time"))
                            })?),
                            other => {
                                return Err(de::Error::custom(format!(
                                    "field `timestamp`: expected an RFC 3339 string or a unix time, got {}",
                                    kind(&other)
                                )));
                            }
                        }
                }
                "attributes" => match map.next_value::<Value>()? {
                    Value::Null => {}
                    Value::Object(obj) => {
                        for (k, v) in obj {
                            add_attribute(&mut r.attributes, k, v);
                        }
                    }
                    other => {
                        return Err(de::Error::custom(format!(
                            "field `attributes`: expected an object of strings, got {}",
                            kind(&other)
                        )));
                    }
                },
                // Fields outside the schema are kept as attributes, as
                // shippers add their own (host, pid, trace_id…).
                other => {
                    let key = other.to_string();
                    add_attribute(&mut r.attributes, key, map.next_value::<Value>()?);
                }
            }
        }
        if r.message.is_none() && r.full_log.is_none() {
            return Err(de::Error::custom("field `message` is required"));
        }
        r.check().map_err(de::Error::custom)?;
        Ok(r)
    }
}

/// A level: a word in any case, a syslog severity (0–7) or a pino/bunyan
/// number (10–60).
fn level_value<E: de::Error>(v: Value) -> Result<Option<Level>, E> {
    let bad = |what: String| {
        E::custom(format!(
            "field `level`: unknown level {what} (expected trace, debug, info, warn, error or fatal, or a syslog severity)"
        ))
    };
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Level::parse(&s).map(Some).ok_or_else(|| bad(format!("{s:?}"))),
        Value::Number(n) => {
            let level = match n.as_u64() {
                Some(0..=2) => Level::Fatal,
                Some(3) => Level::Error,
                Some(4) => Level::Warn,
                Some(5 | 6) => Level::Info,
                Some(7) => Level::Debug,
                Some(10) => Level::Trace,
                Some(20) => Level::Debug,
                Some(30) => Level::Info,
                Some(40) => Level::Warn,
                Some(50) => Level::Error,
                Some(60) => Level::Fatal,
                _ => return Err(bad(n.to_string())),
            };
            Ok(Some(level))
        }
        other => Err(bad(kind(&other).to_string())),
    }
}

/// A text field given as any JSON scalar.
fn text_field<'a, E: de::Error>(field: &str, v: Value) -> Result<Option<Cow<'a, str>>, E> {
    scalar(v)
        .map(|s| s.map(Cow::Owned))
        .map_err(|kind| E::custom(format!("field `{field}`: expected a string, got {kind}")))
}

/// A string that borrows from the input when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

fn scalar(v: Value) -> Result<Option<String>, &'static str> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Array(_) => Err("an array"),
        Value::Object(_) => Err("an object"),
    }
}

/// An attribute's value into `out`: a nested object becomes dotted keys
/// (`{"http": {"status": 500}}` is `http.status`), as OpenSearch names
/// an object's fields; an array stays one attribute holding its JSON; a
/// null, or an empty object, is nothing; a key already there keeps its
/// first value (so that every index agrees on it).
///
/// An object stays whole, as its JSON, past `limits::MAX_ATTRIBUTE_DEPTH`,
/// where a member's dotted key would not be a valid key (empty, past
/// `limits::MAX_ATTRIBUTE_KEY_BYTES`, a control character), where its
/// keys would pass the record's `limits::MAX_ATTRIBUTES`, or where they
/// would take more than twice its JSON's bytes (a long key over many
/// small members): what a record turns into stays within a few times what
/// was sent, below the pipeline's bound on a parser's output.
fn add_attribute(out: &mut Vec<(String, String)>, key: String, v: Value) {
    if let Value::Object(o) = &v
        && flattens(key.len(), o, 1)
    {
        let (count, key_bytes) = shape(key.len(), &v, 1);
        if out.len() + count > limits::MAX_ATTRIBUTES || key_bytes > 2 * json_len(&v) + key.len() {
            let text = v.to_string();
            return push_new(out, key, text);
        }
    }
    flatten(out, key, v, 1);
}

/// Whether `o`, under a key of `key_len` bytes at `depth`, becomes
/// dotted keys.
fn flattens(key_len: usize, o: &serde_json::Map<String, Value>, depth: usize) -> bool {
    depth < limits::MAX_ATTRIBUTE_DEPTH
        && o.keys().all(|k| {
            !k.is_empty() && key_len + 1 + k.len() <= limits::MAX_ATTRIBUTE_KEY_BYTES && !k.contains(char::is_control)
        })
}

/// The attributes `flatten` makes of `v`, and the bytes of their keys.
fn shape(key_len: usize, v: &Value, depth: usize) -> (usize, usize) {
    match v {
        Value::Null => (0, 0),
        Value::Object(o) if flattens(key_len, o, depth) => o.iter().fold((0, 0), |(n, b), (k, v)| {
            let (cn, cb) = shape(key_len + 1 + k.len(), v, depth + 1);
            (n + cn, b + cb)
        }),
        _ => (1, key_len),
    }
}

fn flatten(out: &mut Vec<(String, String)>, key: String, v: Value, depth: usize) {
    match v {
        Value::Null => {}
        Value::Object(o) if flattens(key.len(), &o, depth) => {
            for (k, v) in o {
                flatten(out, format!("{key}.{k}"), v, depth + 1);
            }
        }
        v @ (Value::Object(_) | Value::Array(_)) => push_new(out, key, v.to_string()),
        // A string that holds a NUL gets one more at its end: the record's
        // check then refuses it as the string it is (a NUL at its start
        // would otherwise read as a number's mark, `value`).
        Value::String(mut s) => {
            if s.contains('\0') {
                s.push('\0');
            }
            push_new(out, key, s)
        }
        Value::Bool(b) => push_new(out, key, value::boolean(b).to_string()),
        // A number keeps its type (`value`); serde_json writes every one it
        // reads within the literal bound, the fallback is for safety only.
        Value::Number(n) => {
            let text = n.to_string();
            let v = value::number(&text).unwrap_or(text);
            push_new(out, key, v)
        }
    }
}

/// Stops one past the record's bound, which the check then refuses: a
/// record of many thousand keys is not searched for each of them.
fn push_new(out: &mut Vec<(String, String)>, key: String, value: String) {
    if out.len() <= limits::MAX_ATTRIBUTES && !out.iter().any(|(k, _)| *k == key) {
        out.push((key, value));
    }
}

/// Bytes of `v` as compact JSON, counted without writing them.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Unix time in seconds, milliseconds, microseconds or nanoseconds, told
/// apart by magnitude (as Vector and Loki do).
fn epoch_to_ns(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        let a = i.unsigned_abs();
        return if a >= 100_000_000_000_000_000 {
            Some(i)
        } else if a >= 100_000_000_000_000 {
            i.checked_mul(1_000)
        } else if a >= 100_000_000_000 {
            i.checked_mul(1_000_000)
        } else {
            i.checked_mul(1_000_000_000)
        };
    }
    let f = n.as_f64()?;
    if !f.is_finite() || f.abs() > 9.0e9 {
        return None;
    }
    Some((f * 1e9) as i64)
}

/// A ULID (26 Crockford base32 characters) or a UUID (36 with hyphens).
pub fn is_valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    match b.len() {
        26 => {
            b[0] <= b'7'
                && b.iter().all(|c| {
                    c.is_ascii_digit()
                        || (c.is_ascii_alphabetic() && !matches!(c.to_ascii_uppercase(), b'I' | b'L' | b'O' | b'U'))
                })
        }
        36 => b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{"tenant_id": "tenant_a", "service": "billing", "level": "ERROR",
 "timestamp": "2025-10-10T12:26:36Z", "message": "Payment failed due to invalid UUID",
 "full_log": "Traceback (most recent call last): ...", "language": "python"}"#;

    #[test]
    fn seed_payload() {
        let r = parse_json(SEED.as_bytes()).expect("valid");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].tenant, "tenant_a");
        assert_eq!(r[0].level, Level::Error);
        assert_eq!(r[0].timestamp, 1_760_099_196_000_000_000);
        assert_eq!(r[0].language.as_deref(), Some("python"));
        assert_eq!(r[0].message, "Payment failed due to invalid UUID");
    }

    #[test]
    fn array_ndjson_and_extra_fields() {
        let arr =
            br#"[{"message":"a"},{"message":"b","level":"warning","host":"h1","pid":7,"attributes":{"k":"v","n":1}}]"#;
        let r = parse_json(arr).expect("valid");
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].level, Level::Warn);
        assert_eq!(
            r[1].attributes,
            vec![
                ("host".into(), "h1".into()),
                ("pid".into(), "\u{0}7".into()),
                ("k".into(), "v".into()),
                ("n".into(), "\u{0}1".into())
            ]
        );
        let nd = b"{\"message\":\"a\"}\n\n{\"message\":\"b\\n\",\"timestamp\":1760099196}\n";
        let r = parse_json(nd).expect("valid");
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].message, "b\n");
        assert_eq!(r[1].timestamp, 1_760_099_196_000_000_000);
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let nd = b"{\"message\":\"ok\"}\n{\"message\":\"x\",\"level\":\"loud\"}\n";
        let e = parse_json(nd).expect_err("bad level");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("field `level`"), "{e}");

        let e = parse_json(b"{\"message\":\"ok\"}\n{\"service\":\"x\"}").expect_err("no message");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("`message` is required"), "{e}");

        let e = parse_json(b"{\"message\":\"ok\"}\n{not json").expect_err("syntax");
        assert_eq!(e.line, 2);

        let e = parse_json(b"{\"message\":\"ok\",\"id\":\"nope\"}").expect_err("bad id");
        assert!(e.message.contains("field `id`"), "{e}");

        assert!(parse_json(b"  \n").is_err());
        assert!(parse_json(b"42").is_err());
        assert!(parse_json(b"{\"message\":\"x\",\"timestamp\":\"noon\"}").is_err());
    }

    /// What shippers send: Docker/Fluent Bit `log`, ECS and OpenTelemetry
    /// nesting, Python's `levelname`, syslog and pino numeric levels.
    #[test]
    fn shipper_field_names() {
        let r = &parse_json(br#"{"log":"GET / 200\n","stream":"stdout","time":"2025-10-10T12:26:36.5Z"}"#)
            .expect("docker")[0];
        assert_eq!(r.message, "GET / 200");
        assert_eq!(r.timestamp, 1_760_099_196_500_000_000);
        assert_eq!(r.attributes, vec![("stream".to_string(), "stdout".to_string())]);

        let r = &parse_json(
            br#"{"@timestamp":1760099196000,"log":{"level":"WARN"},"service":{"name":"api"},"message":"m"}"#,
        )
        .expect("ecs")[0];
        assert_eq!(
            (r.level, r.service.as_str(), r.timestamp),
            (Level::Warn, "api", 1_760_099_196_000_000_000)
        );

        let r = &parse_json(br#"{"log":"from log","message":"real","log.level":"error","service.name":"billing"}"#)
            .expect("both")[0];
        assert_eq!(
            (r.message.as_str(), r.level, r.service.as_str()),
            ("real", Level::Error, "billing")
        );
        assert_eq!(r.attributes, vec![("log".to_string(), "from log".to_string())]);

        for (level, want) in [
            ("3", Level::Error),
            ("4", Level::Warn),
            ("6", Level::Info),
            ("50", Level::Error),
            ("10", Level::Trace),
        ] {
            let body = format!(r#"{{"msg":"x","level":{level}}}"#);
            assert_eq!(parse_json(body.as_bytes()).expect("numeric")[0].level, want, "{level}");
        }
        let r = &parse_json(br#"{"msg":"x","levelname":"CRITICAL"}"#).expect("python")[0];
        assert_eq!(r.level, Level::Fatal);
        assert!(parse_json(br#"{"msg":"x","level":99}"#).is_err());
        assert!(parse_json(br#"{"msg":"x","service":["a"]}"#).is_err());
    }

    /// A number keeps its type; a string with a NUL is refused, even one
    /// that would read as a number's mark.
    #[test]
    fn numbers_are_marked_and_strings_never() {
        let r = &parse_json(br#"{"message":"m","a":500,"b":"500","c":true}"#).expect("parses")[0];
        assert_eq!(r.attr_value("a"), Some(crate::AttrValue::Number("500")));
        assert_eq!(r.attr_value("b"), Some(crate::AttrValue::Str("500")));
        assert_eq!(r.attr_value("c"), Some(crate::AttrValue::Bool(true)));
        for body in [
            r#"{"message":"m","a":"\u0000500"}"#,
            r#"{"message":"m","attributes":{"a":"\u0000true"}}"#,
            r#"{"message":"m","a":{"b":"x\u0000"}}"#,
        ] {
            let e = parse_json(body.as_bytes()).expect_err(body).to_string();
            assert!(e.contains("NUL"), "{body}: {e}");
        }
    }

    /// Nested objects are dotted keys, under `attributes` and at the top
    /// level alike, to a depth; arrays stay JSON text.
    #[test]
    fn nested_objects_are_dotted_keys() {
        let r = &parse_json(
            br#"{"message":"m","attributes":{"http":{"status":500,"route":{"name":"pay"}},"tags":["a",1],"gone":null,"none":{}},
                 "user":{"id":7,"admin":false},"log":{"level":"warn","file":{"path":"/var/log/app.log"},"offset":12},
                 "service":{"name":"api","version":"1.2"}}"#,
        )
        .expect("parses")[0];
        let mut attrs = r.attributes.clone();
        attrs.sort();
        let want = [
            ("http.route.name", "pay"),
            ("http.status", "\u{0}500"),
            ("log.file.path", "/var/log/app.log"),
            ("log.offset", "\u{0}12"),
            ("service.version", "1.2"),
            ("tags", r#"["a",1]"#),
            ("user.admin", "\0false"),
            ("user.id", "\u{0}7"),
        ];
        assert_eq!(attrs, want.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!((r.level, r.service.as_str()), (Level::Warn, "api"));

        // Past the depth, the rest stays whole; so does an object whose
        // dotted keys would be too long.
        let deep = r#"{"message":"m","a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}"#;
        let r = &parse_json(deep.as_bytes()).expect("parses")[0];
        assert_eq!(
            r.attributes,
            vec![("a.b.c.d.e.f.g.h".to_string(), r#"{"i":1}"#.to_string())]
        );
        let long = format!(
            r#"{{"message":"m","{}":{{"k":1}}}}"#,
            "x".repeat(limits::MAX_ATTRIBUTE_KEY_BYTES - 1)
        );
        let r = &parse_json(long.as_bytes()).expect("parses")[0];
        assert_eq!(r.attributes[0].1, r#"{"k":1}"#);
        // An object whose keys would pass the record's bound stays whole,
        // as one whose dotted keys would outweigh it does (a long key over
        // many small members), and one with a key that is no valid key.
        let many: Vec<String> = (0..=limits::MAX_ATTRIBUTES).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let body = format!(r#"{{"message":"m","o":{{{}}}}}"#, many.join(","));
        let r = &parse_json(body.as_bytes()).expect("parses")[0];
        assert_eq!((r.attributes.len(), r.attributes[0].0.as_str()), (1, "o"));
        let wide: Vec<String> = (0..200).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let body = format!(r#"{{"message":"m","{}":{{{}}}}}"#, "x".repeat(200), wide.join(","));
        let r = &parse_json(body.as_bytes()).expect("parses")[0];
        let made: usize = r.attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert_eq!(r.attributes.len(), 1);
        assert!(made < 2 * body.len(), "{made} bytes from {}", body.len());
        let r = &parse_json(br#"{"message":"m","o":{"a\u0007":1,"b":2}}"#).expect("parses")[0];
        assert_eq!(
            r.attributes,
            vec![("o".to_string(), r#"{"a\u0007":1,"b":2}"#.to_string())]
        );
        // Many thousand keys are refused, in time.
        let keys: Vec<String> = (0..200_000).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let body = format!(r#"{{"message":"m",{}}}"#, keys.join(","));
        let started = std::time::Instant::now();
        assert!(parse_json(body.as_bytes()).is_err());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // A key already there keeps its first value.
        let r = &parse_json(br#"{"message":"m","http.status":"200","http":{"status":500}}"#).expect("parses")[0];
        assert_eq!(r.attributes, vec![("http.status".to_string(), "200".to_string())]);
    }

    /// A record without a level of its own is a shipped line: the line's
    /// level and time apply, the shipper's read time gives way, the line
    /// stays the message. A record that names its level keeps its own.
    #[test]
    fn shipped_lines_are_read_like_text() {
        const NOW: i64 = 1_765_839_600_000_000_000;
        const READ_AT: &str = "2025-12-15T23:00:00Z";
        let read = |body: &str| {
            parse_json_ref_reading_lines(body.as_bytes(), NOW)
                .expect("parses")
                .into_iter()
                .map(|r| (r.level, r.timestamp, r.message.into_owned()))
                .collect::<Vec<_>>()
        };
        let fluent_bit =
            format!(r#"{{"@timestamp":"{READ_AT}","log":"2025-10-10 12:26:36,123 ERROR [main] payment failed\n"}}"#);
        assert_eq!(
            read(&fluent_bit),
            vec![(
                Level::Error,
                1_760_099_196_123_000_000,
                "2025-10-10 12:26:36,123 ERROR [main] payment failed".to_string()
            )]
        );
        let read_at = time::parse_rfc3339(READ_AT).expect("time");
        let shipped = format!(
            "{{\"timestamp\":\"{READ_AT}\",\"message\":\"WARNING:root:disk almost full\"}}\n\
             {{\"message\":\"<11>Oct 11 22:14:15 host app: fell over\"}}\n\
             {{\"message\":\"no time, no level\",\"timestamp\":\"{READ_AT}\"}}\n\
             {{\"level\":\"debug\",\"timestamp\":\"{READ_AT}\",\"message\":\"2025-10-10T12:26:36Z ERROR own level\"}}"
        );
        let out = read(&shipped);
        assert_eq!((out[0].0, out[0].1), (Level::Warn, read_at));
        assert_eq!(out[1].0, Level::Error);
        assert_eq!(time::format_rfc3339(out[1].1), "2025-10-11T22:14:15Z");
        assert_eq!((out[2].0, out[2].1), (Level::Info, read_at));
        assert_eq!((out[3].0, out[3].1), (Level::Debug, read_at));
        let ancient = format!(r#"{{"timestamp":"{READ_AT}","message":"1850-01-01T00:00:00Z ERROR old"}}"#);
        assert_eq!(read(&ancient)[0].1, read_at, "a time no record may hold is no reading");
        // The decoder ingest validates with reads no line.
        let plain = parse_json(fluent_bit.as_bytes()).expect("parses");
        assert_eq!((plain[0].level, plain[0].timestamp), (Level::Info, read_at));
    }

    #[test]
    fn scan_agrees_with_parse() {
        let body = b"{\"message\":\"a\",\"timestamp\":1}\n{\"message\":\"b\",\"tenant_id\":\"x\"}\n{\"message\":\"c\",\"tenant_id\":\"y\"}";
        let scan = scan_json(body, "acme").expect("valid");
        assert_eq!(scan.count, parse_json(body).expect("valid").len());
        assert_eq!(scan.first_timestamp, 1_000_000_000);
        assert_eq!(scan.foreign_tenant, Some((1, "x".to_string())));
        assert_eq!(
            scan_json(body, "x").expect("valid").foreign_tenant,
            Some((2, "y".to_string()))
        );
        assert_eq!(scan_json(b"{\"x\":1}", "acme").map_err(|e| e.line), Err(1));
        let body = b"{\"message\":\"a\",\"timestamp\":5}\n{\"message\":\"b\"}\n{\"message\":\"c\",\"timestamp\":3}\n{\"message\":\"d\",\"timestamp\":3}\n{\"message\":\"e\",\"timestamp\":9}";
        let scan = scan_json(body, "acme").expect("valid");
        assert_eq!(scan.oldest, Some((2, 3_000_000_000)));
        assert_eq!(scan.newest, Some((4, 9_000_000_000)));
        assert_eq!(scan_json(b"{\"message\":\"a\"}", "acme").expect("valid").oldest, None);
        assert_eq!(
            scan_json(b"{\"message\":\"a\",\"timestamp\":0}", "acme")
                .expect("valid")
                .oldest,
            None
        );
    }

    #[test]
    fn ids() {
        assert!(is_valid_id("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
        assert!(is_valid_id("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_valid_id("81ARZ3NDEKTSV4RRFFQ69G5FAV"));
        assert!(!is_valid_id("01ARZ3NDEKTSV4RRFFQ69G5FAU"));
        assert!(!is_valid_id("123e4567e89b12d3a456426614174000"));
    }
}
