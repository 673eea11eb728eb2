//! The LoggerHub batch encoding: how a batch of log records crosses the
//! host/plugin boundary as one `list<u8>` (see `wit/plugin.wit`).
//!
//! Layout, all integers little-endian:
//!
//! ```text
//! batch  := "LHB1" count:u32 record{count}
//! record := id:str tenant:str service:str level:u8 timestamp:i64
//!           message:str full_log:str language:opt-str
//!           attr-count:u32 (key:str value:str){attr-count}
//! str    := len:u32 utf8-bytes{len}
//! opt-str:= 0u8 | 1u8 str
//! ```
//!
//! Both sides of the boundary use this crate, so it has no dependencies and
//! builds for `wasm32-wasip2` as well as for the host.

use std::borrow::Cow;
use std::fmt;

pub mod limits;
pub mod line;
#[cfg(feature = "payload")]
pub mod payload;
pub mod time;
pub mod value;

pub use value::AttrValue;

const MAGIC: &[u8; 4] = b"LHB1";

/// Severity of a log record, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    #[default]
    Info = 2,
    Warn = 3,
    Error = 4,
    Fatal = 5,
}

impl Level {
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// Upper-case name, as stored and returned by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }

    /// Parses the names shippers and SDKs use, case-insensitively
    /// (`warning`, `err`, `critical`, syslog's `emerg`…).
    pub fn parse(s: &str) -> Option<Level> {
        let s = s.trim();
        let mut buf = [0u8; 16];
        if s.len() > buf.len() {
            return None;
        }
        for (dst, src) in buf.iter_mut().zip(s.bytes()) {
            *dst = src.to_ascii_lowercase();
        }
        Some(match &buf[..s.len()] {
            b"trace" => Level::Trace,
            b"debug" | b"dbg" => Level::Debug,
            b"info" | b"information" | b"informational" | b"notice" => Level::Info,
            b"warn" | b"warning" => Level::Warn,
            b"error" | b"err" => Level::Error,
            b"fatal" | b"critical" | b"crit" | b"alert" | b"emerg" | b"emergency" | b"panic" => Level::Fatal,
            _ => return None,
        })
    }

    pub fn from_u8(v: u8) -> Option<Level> {
        Level::ALL.get(usize::from(v)).copied()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log record, generic over how it holds its strings: [`Record`] owns
/// them (the host), [`RecordRef`] borrows them from the batch buffer where
/// it can (the guests: decoding then costs no allocation per field, and
/// only fields a plugin changes are copied).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordOf<S> {
    /// ULID or UUID; empty until the host assigns one.
    pub id: S,
    pub tenant: S,
    pub service: S,
    pub level: Level,
    /// Unix time in nanoseconds.
    pub timestamp: i64,
    pub message: S,
    pub full_log: S,
    pub language: Option<S>,
    pub attributes: Vec<(S, S)>,
}

/// A record that owns its strings.
pub type Record = RecordOf<String>;

/// A record whose strings borrow from a batch buffer until changed.
pub type RecordRef<'a> = RecordOf<Cow<'a, str>>;

impl<S: AsRef<str>> RecordOf<S> {
    /// The text of attribute `key`, if set: a string, or a number's or a
    /// boolean's literal (`"500"`, `"true"`); [`RecordOf::attr_value`]
    /// tells which.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attr_value(key).map(AttrValue::text)
    }

    /// The value of attribute `key`, with its type, if set.
    pub fn attr_value(&self, key: &str) -> Option<AttrValue<'_>> {
        self.attributes
            .iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| AttrValue::of(v.as_ref()))
    }

    /// Sets attribute `key`, replacing an earlier value.
    pub fn set_attr(&mut self, key: impl Into<S>, value: impl Into<S>) {
        let key = key.into();
        let value = value.into();
        match self.attributes.iter_mut().find(|(k, _)| k.as_ref() == key.as_ref()) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
    }

    /// Sets attribute `key` to a number (a non-finite one removes it:
    /// JSON has none).
    pub fn set_attr_number(&mut self, key: impl Into<S>, n: f64)
    where
        S: From<String>,
    {
        let key = key.into();
        match value::number_of(n) {
            Some(v) => self.set_attr(key, S::from(v)),
            None => {
                self.remove_attr(key.as_ref());
            }
        }
    }

    /// Sets attribute `key` to a boolean.
    pub fn set_attr_bool(&mut self, key: impl Into<S>, b: bool)
    where
        S: From<String>,
    {
        self.set_attr(key, S::from(value::boolean(b).to_string()));
    }

    /// Removes attribute `key`, returning its value.
    pub fn remove_attr(&mut self, key: &str) -> Option<S> {
        let pos = self.attributes.iter().position(|(k, _)| k.as_ref() == key)?;
        Some(self.attributes.remove(pos).1)
    }

    fn encoded_len(&self) -> usize {
        let strs = self.id.as_ref().len()
            + self.tenant.as_ref().len()
            + self.service.as_ref().len()
            + self.message.as_ref().len()
            + self.full_log.as_ref().len()
            + self.language.as_ref().map_or(0, |l| l.as_ref().len() + 4)
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 8)
                .sum::<usize>();
        strs + 5 * 4 + 1 + 8 + 1 + 4
    }
}

impl RecordRef<'_> {
    /// The same record owning its strings.
    pub fn into_owned(self) -> Record {
        Record {
            id: self.id.into_owned(),
            tenant: self.tenant.into_owned(),
            service: self.service.into_owned(),
            level: self.level,
            timestamp: self.timestamp,
            message: self.message.into_owned(),
            full_log: self.full_log.into_owned(),
            language: self.language.map(Cow::into_owned),
            attributes: self
                .attributes
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }
}

impl Record {
    /// A view of this record borrowing every string.
    pub fn borrowed(&self) -> RecordRef<'_> {
        RecordRef {
            id: self.id.as_str().into(),
            tenant: self.tenant.as_str().into(),
            service: self.service.as_str().into(),
            level: self.level,
            timestamp: self.timestamp,
            message: self.message.as_str().into(),
            full_log: self.full_log.as_str().into(),
            language: self.language.as_deref().map(Cow::Borrowed),
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
        }
    }
}

impl From<Record> for RecordRef<'static> {
    fn from(r: Record) -> Self {
        RecordRef {
            id: r.id.into(),
            tenant: r.tenant.into(),
            service: r.service.into(),
            level: r.level,
            timestamp: r.timestamp,
            message: r.message.into(),
            full_log: r.full_log.into(),
            language: r.language.map(Cow::Owned),
            attributes: r.attributes.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }
}

/// Why a buffer is not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid batch at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for DecodeError {}

/// Encodes `records` into a fresh buffer.
pub fn encode<S: AsRef<str>>(records: &[RecordOf<S>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + records.iter().map(RecordOf::encoded_len).sum::<usize>());
    encode_into(records, &mut out);
    out
}

/// Appends the encoding of `records` to `out`.
pub fn encode_into<S: AsRef<str>>(records: &[RecordOf<S>], out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    put_u32(out, records.len());
    for r in records {
        put_str(out, r.id.as_ref());
        put_str(out, r.tenant.as_ref());
        put_str(out, r.service.as_ref());
        out.push(r.level as u8);
        out.extend_from_slice(&r.timestamp.to_le_bytes());
        put_str(out, r.message.as_ref());
        put_str(out, r.full_log.as_ref());
        match &r.language {
            None => out.push(0),
            Some(l) => {
                out.push(1);
                put_str(out, l.as_ref());
            }
        }
        put_u32(out, r.attributes.len());
        for (k, v) in &r.attributes {
            put_str(out, k.as_ref());
            put_str(out, v.as_ref());
        }
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    // Lengths come from in-memory strings and vectors; a batch over 4 GiB
    // cannot cross the boundary anyway (wasm32 memory).
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// How many records a batch says it holds, read from its header alone (so
/// a host can refuse a batch before decoding it).
pub fn batch_len(buf: &[u8]) -> Option<usize> {
    if buf.get(..4)? != MAGIC {
        return None;
    }
    let count = buf.get(4..8)?;
    Some(u32::from_le_bytes([count[0], count[1], count[2], count[3]]) as usize)
}

/// Decodes a whole batch into records that own their strings. Never panics
/// on any input.
pub fn decode(buf: &[u8]) -> Result<Vec<Record>, DecodeError> {
    decode_as(buf)
}

/// Decodes a whole batch into records that borrow their strings from `buf`.
pub fn decode_ref(buf: &[u8]) -> Result<Vec<RecordRef<'_>>, DecodeError> {
    decode_as(buf)
}

fn decode_as<'a, S: From<&'a str>>(buf: &'a [u8]) -> Result<Vec<RecordOf<S>>, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    if r.take(4)? != MAGIC {
        return Err(r.err("bad magic"));
    }
    let count = r.u32()? as usize;
    // Each record takes at least 34 bytes: refuse counts the buffer cannot hold
    // before allocating for them.
    if count > buf.len() / 34 {
        return Err(r.err("record count exceeds buffer"));
    }
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.string()?;
        let tenant = r.string()?;
        let service = r.string()?;
        let level_byte = r.take(1)?[0];
        let level = Level::from_u8(level_byte).ok_or_else(|| r.err("bad level"))?;
        let ts = r.take(8)?;
        let mut ts_bytes = [0u8; 8];
        ts_bytes.copy_from_slice(ts);
        let timestamp = i64::from_le_bytes(ts_bytes);
        let message = r.string()?;
        let full_log = r.string()?;
        let language = match r.take(1)?[0] {
            0 => None,
            1 => Some(r.string()?),
            _ => return Err(r.err("bad option tag")),
        };
        let n_attrs = r.u32()? as usize;
        if n_attrs > (buf.len() - r.pos) / 8 {
            return Err(r.err("attribute count exceeds buffer"));
        }
        let mut attributes = Vec::with_capacity(n_attrs);
        for _ in 0..n_attrs {
            let k = r.string()?;
            let v = r.string()?;
            attributes.push((k, v));
        }
        records.push(RecordOf {
            id,
            tenant,
            service,
            level,
            timestamp,
            message,
            full_log,
            language,
            attributes,
        });
    }
    if r.pos != buf.len() {
        return Err(r.err("trailing bytes"));
    }
    Ok(records)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            offset: self.pos,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string<S: From<&'a str>>(&mut self) -> Result<S, DecodeError> {
        let len = self.u32()? as usize;
        let start = self.pos;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(S::from(s)),
            Err(_) => Err(DecodeError {
                offset: start,
                reason: "invalid utf-8",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: usize) -> Record {
        Record {
            id: format!("01J{i:023}"),
            tenant: "tenant_a".into(),
            service: "billing".into(),
            level: Level::ALL[i % 6],
            timestamp: 1_760_099_196_000_000_000 + i as i64,
            message: format!("payment {i} failed: ünïcode"),
            full_log: "Traceback (most recent call last): ...".into(),
            language: i.is_multiple_of(2).then(|| "python".to_string()),
            attributes: vec![("region".into(), "eu".into()), ("k".into(), String::new())],
        }
    }

    #[test]
    fn round_trips() {
        let records: Vec<_> = (0..20).map(sample).collect();
        let buf = encode(&records);
        assert_eq!(buf.len(), 8 + records.iter().map(Record::encoded_len).sum::<usize>());
        assert_eq!(decode(&buf).as_ref(), Ok(&records));
        assert_eq!(decode(&encode::<String>(&[])), Ok(vec![]));
        let borrowed = decode_ref(&buf).expect("decode_ref");
        assert!(
            matches!(borrowed[0].message, Cow::Borrowed(_)),
            "decoding copied a field"
        );
        assert_eq!(encode(&borrowed), buf);
        let owned: Vec<Record> = borrowed.into_iter().map(RecordRef::into_owned).collect();
        assert_eq!(owned, records);
        assert_eq!(RecordRef::from(records[0].clone()).into_owned(), records[0]);
        assert_eq!(records[1].borrowed().into_owned(), records[1]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let buf = encode(&[sample(1), sample(2)]);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
        let mut long = buf.clone();
        long.push(0);
        assert_eq!(decode(&long).map_err(|e| e.reason), Err("trailing bytes"));
    }

    #[test]
    fn rejects_huge_counts_without_allocating() {
        let mut buf = MAGIC.to_vec();
        buf.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&buf).map_err(|e| e.reason), Err("record count exceeds buffer"));
    }

    #[test]
    fn level_aliases() {
        assert_eq!(Level::parse("WARNING"), Some(Level::Warn));
        assert_eq!(Level::parse(" err "), Some(Level::Error));
        assert_eq!(Level::parse("Critical"), Some(Level::Fatal));
        assert_eq!(Level::parse("verbose-ish"), None);
        assert_eq!(Level::parse(&"x".repeat(100)), None);
        for l in Level::ALL {
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
    }

    #[test]
    fn attribute_helpers() {
        let mut r = Record::default();
        r.set_attr("a", "1");
        r.set_attr("a", "2");
        assert_eq!(r.attr("a"), Some("2"));
        assert_eq!(r.remove_attr("a").as_deref(), Some("2"));
        assert!(r.attributes.is_empty());
    }

    #[test]
    fn typed_attributes_read_as_text_and_as_values() {
        let mut r = Record::default();
        r.set_attr_number("ms", 12.5);
        r.set_attr_bool("ok", true);
        r.set_attr("id", "123");
        assert_eq!(r.attr("ms"), Some("12.5"));
        assert_eq!(r.attr_value("ms").and_then(AttrValue::as_f64), Some(12.5));
        assert_eq!(r.attr("ok"), Some("true"));
        assert_eq!(r.attr_value("ok"), Some(AttrValue::Bool(true)));
        assert_eq!(r.attr_value("id"), Some(AttrValue::Str("123")));
        assert!(limits::check_record(&r).is_ok());
        let back = decode(&encode(std::slice::from_ref(&r))).expect("decodes");
        assert_eq!(back[0].attr_value("ms"), Some(AttrValue::Number("12.5")));
        r.set_attr_number("ms", f64::INFINITY);
        assert_eq!(r.attr("ms"), None);
    }
}
