//! Reading the shippers' messages one part at a time, so that what a
//! request holds is never built whole before the conversion budget sees it
//! (`Converted`). Decoded all at once, a few bytes per part became a
//! structure of a hundred or more: 10 MB of empty OTLP records (two bytes
//! each) took 1.75 GB before a limit was checked.
//!
//! - Protobuf: `fields` walks a message's fields without decoding them;
//!   the converters decode one record at a time.
//! - JSON: `for_each` hands the elements of an array over one by one, as
//!   borrowed text; `Nodes` counts the values a part holds, on either
//!   encoding, which bounds what decoding it builds.

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Objects and arrays one record may hold, its attributes and its body's
/// nesting together: each becomes a structure of about a hundred bytes
/// when decoded, so a record's decoding is bounded before it starts. Far
/// above what a record can store (256 attributes).
pub const MAX_NODES: usize = 4096;

/// How deep a value may nest before the record is refused.
pub const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

/// One field of a protobuf message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of a protobuf message, in order, as (number, value).
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf }
}

pub struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| WireError("a varint runs past the end".into()))?;
            self.buf = rest;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError("a varint longer than 10 bytes".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError("a field runs past the end of its message".into()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn next_field(&mut self) -> Result<(u32, Field<'a>), WireError> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| WireError("a field number out of range".into()))?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default())),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError("a length out of range".into()))?;
                Field::Bytes(self.take(len)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default())),
            wire => return Err(WireError(format!("wire type {wire} is not supported"))),
        };
        Ok((number, field))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Field<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let next = self.next_field();
        if next.is_err() {
            self.buf = &[];
        }
        Some(next)
    }
}

/// The length-delimited fields numbered `number` of `buf`.
pub fn messages(buf: &[u8], number: u32) -> impl Iterator<Item = Result<&[u8], WireError>> {
    fields(buf).filter_map(move |f| match f {
        Ok((n, Field::Bytes(b))) if n == number => Some(Ok(b)),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    })
}

/// Counts structures as a decoder would build them, and stops at the first
/// past `MAX_NODES` or `MAX_NESTING`.
#[derive(Debug, Default)]
pub struct Nodes {
    pub count: usize,
}

impl Nodes {
    fn add(&mut self, depth: usize) -> Result<(), WireError> {
        self.count += 1;
        if self.count > MAX_NODES {
            return Err(WireError(format!("more than {MAX_NODES} values and attributes")));
        }
        if depth > MAX_NESTING {
            return Err(WireError(format!("values nested more than {MAX_NESTING} deep")));
        }
        Ok(())
    }

    /// An OTLP `AnyValue` (common.proto): an `ArrayValue` (5) holds
    /// `AnyValue`s (1), a `KeyValueList` (6) holds `KeyValue`s (1), each
    /// with an `AnyValue` (2).
    pub fn any_value(&mut self, buf: &[u8], depth: usize) -> Result<(), WireError> {
        self.add(depth)?;
        for field in fields(buf) {
            match field? {
                (5, Field::Bytes(array)) => {
                    for value in messages(array, 1) {
                        self.any_value(value?, depth + 1)?;
                    }
                }
                (6, Field::Bytes(list)) => {
                    for kv in messages(list, 1) {
                        self.key_value(kv?, depth + 1)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// An OTLP `KeyValue`: its value is field 2.
    pub fn key_value(&mut self, buf: &[u8], depth: usize) -> Result<(), WireError> {
        self.add(depth)?;
        for value in messages(buf, 2) {
            self.any_value(value?, depth + 1)?;
        }
        Ok(())
    }

    /// Every object, array, member and element of a JSON text (its
    /// brackets, colons and commas outside its strings).
    pub fn json(&mut self, text: &str) -> Result<(), WireError> {
        let (mut in_string, mut escaped, mut depth) = (false, false, 0usize);
        for b in text.bytes() {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    self.add(depth)?;
                }
                b',' | b':' => self.add(depth)?,
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Calls `each` on every element of the JSON array `array` (null or absent
/// is an empty one), as borrowed text, one at a time: the array is never
/// held decoded.
pub fn for_each<'de, E>(array: Option<&'de RawValue>, each: impl FnMut(&'de RawValue) -> Result<(), E>) -> Result<(), E>
where
    E: From<WireError>,
{
    let Some(array) = array else { return Ok(()) };
    if array.get().trim() == "null" {
        return Ok(());
    }
    let mut error = None;
    let seed = Elements {
        each,
        error: &mut error,
    };
    let mut de = serde_json::Deserializer::from_str(array.get());
    let walked = seed.deserialize(&mut de);
    if let Some(e) = error {
        return Err(e);
    }
    walked.map_err(|e| WireError(format!("expected an array: {e}")).into())
}

struct Elements<'a, F, E> {
    each: F,
    error: &'a mut Option<E>,
}

impl<'de, F, E> DeserializeSeed<'de> for Elements<'_, F, E>
where
    F: FnMut(&'de RawValue) -> Result<(), E>,
{
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F, E> Visitor<'de> for Elements<'_, F, E>
where
    F: FnMut(&'de RawValue) -> Result<(), E>,
{
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<&'de RawValue>()? {
            if let Err(e) = (self.each)(element) {
                *self.error = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_walk_every_wire_type_and_refuse_a_short_message() {
        // 1: varint 150, 2: bytes "hi", 3: fixed64 1, 4: fixed32 2
        let mut buf = vec![0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x19];
        buf.extend_from_slice(&1u64.to_le_bytes());
        buf.push(0x25);
        buf.extend_from_slice(&2u32.to_le_bytes());
        let got: Vec<_> = fields(&buf).collect::<Result<_, _>>().expect("fields");
        assert_eq!(
            got,
            vec![
                (1, Field::Varint(150)),
                (2, Field::Bytes(b"hi")),
                (3, Field::Fixed64(1)),
                (4, Field::Fixed32(2))
            ]
        );
        assert!(fields(&[0x12, 0x05, b'a']).any(|f| f.is_err()), "a length past the end");
        assert!(fields(&[0x0b]).any(|f| f.is_err()), "groups are refused");
        assert!(fields(&[0x08, 0xff]).any(|f| f.is_err()), "a varint cut short");
    }

    #[test]
    fn nodes_stop_at_the_bound_on_either_encoding() {
        // A kvlist of 5,000 empty KeyValues: 10 kB of protobuf.
        let list: Vec<u8> = [0x0a, 0x00].repeat(5000);
        let mut any = vec![0x32];
        prost::encoding::encode_varint(list.len() as u64, &mut any);
        any.extend_from_slice(&list);
        let e = Nodes::default().any_value(&any, 0).expect_err("over");
        assert!(e.0.contains("4096"), "{e}");
        let mut small = Nodes::default();
        small.any_value(&any[..0], 0).expect("an empty value");
        assert_eq!(small.count, 1);

        let json = format!("{{\"a\":[{}]}}", vec!["{}"; 5000].join(","));
        assert!(Nodes::default().json(&json).is_err());
        // Scalars count too: a map of 5,000 members.
        let members: Vec<String> = (0..5000).map(|i| format!("\"k{i}\":\"\"")).collect();
        assert!(Nodes::default().json(&format!("{{{}}}", members.join(","))).is_err());
        // Braces inside strings are text, not structure.
        let mut text = Nodes::default();
        text.json(&format!("{{\"m\":\"{}\\\"{}\"}}", "{".repeat(10_000), "[".repeat(10)))
            .expect("a string of braces");
        assert_eq!(text.count, 2, "the object and its member");
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let e = Nodes::default().json(&deep).expect_err("too deep");
        assert!(e.0.contains("deep"), "{e}");
    }

    #[test]
    fn for_each_hands_elements_over_and_stops_at_an_error() {
        let doc: &RawValue = serde_json::from_str(r#"[{"a":1}, 2, "three"]"#).expect("json");
        let mut seen = Vec::new();
        for_each::<WireError>(Some(doc), |e| {
            seen.push(e.get().to_string());
            Ok(())
        })
        .expect("walk");
        assert_eq!(seen, vec![r#"{"a":1}"#, "2", r#""three""#]);
        let mut n = 0;
        let stopped = for_each(Some(doc), |_| {
            n += 1;
            Err(WireError("enough".into()))
        });
        assert_eq!((stopped, n), (Err(WireError("enough".into())), 1));
        let null: &RawValue = serde_json::from_str("null").expect("json");
        for_each::<WireError>(Some(null), |_| panic!("no elements")).expect("null");
        let object: &RawValue = serde_json::from_str("{}").expect("json");
        assert!(for_each::<WireError>(Some(object), |_| Ok(())).is_err());
    }
}
