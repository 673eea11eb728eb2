//! Attribute values keep their JSON type: `{"duration_ms": 123}` is a
//! number in every store and index, `{"id": "123"}` a string.
//!
//! In a record an attribute's value is a string. A string value is its
//! text; a number or a boolean is a NUL followed by its JSON literal
//! (`"\u{0}123"`, `"\0true"`). No string value may hold a NUL (no store keeps
//! one, `limits` refuses it), so the mark cannot be read into text, and a
//! batch keeps its layout: a plugin built before types sees the mark on a
//! value it reads and passes it through when it only carries it.
//! [`AttrValue`] reads a value; [`RecordOf::attr`](crate::RecordOf::attr)
//! gives a value's text without its mark.

/// What starts a typed value.
pub const MARK: char = '\0';

/// Longest number literal kept as a number: every f64 and i64 is written
/// in fewer bytes, and a longer one says nothing more.
pub const MAX_NUMBER_BYTES: usize = 64;

/// An attribute's value, read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    Str(&'a str),
    /// A JSON number, as written (`500`, `1.5`, `-2e3`).
    Number(&'a str),
    Bool(bool),
}

impl<'a> AttrValue<'a> {
    /// Reads a value as a record holds it. A mark before anything but a
    /// number or a boolean (which `limits` refuses in a record) reads as
    /// text.
    pub fn of(v: &'a str) -> AttrValue<'a> {
        let Some(literal) = v.strip_prefix(MARK) else {
            return AttrValue::Str(v);
        };
        match literal {
            "true" => AttrValue::Bool(true),
            "false" => AttrValue::Bool(false),
            n if is_number(n) => AttrValue::Number(n),
            _ => AttrValue::Str(v),
        }
    }

    /// What an exact match compares: the string, or the literal.
    pub fn text(self) -> &'a str {
        match self {
            AttrValue::Str(s) | AttrValue::Number(s) => s,
            AttrValue::Bool(true) => "true",
            AttrValue::Bool(false) => "false",
        }
    }

    /// A number's value; `None` for anything else.
    pub fn as_f64(self) -> Option<f64> {
        match self {
            AttrValue::Number(n) => n.parse().ok(),
            _ => None,
        }
    }
}

/// The value a record holds for the JSON number `literal`, or `None` when
/// it is not one (or is too long, or overflows an f64). Zero is `0`
/// however written (`-0`, `0.0`): PostgreSQL keeps no -0, and a range
/// reads -0 as 0.
pub fn number(literal: &str) -> Option<String> {
    if !is_number(literal) {
        return None;
    }
    Some(if literal.parse::<f64>().is_ok_and(|x| x == 0.0) {
        format!("{MARK}0")
    } else {
        format!("{MARK}{literal}")
    })
}

/// The value a record holds for a number: an integer's digits, else the
/// shortest literal that reads back as `n` (with an exponent where plain
/// digits would be many: `1e300`, `1.5e-7`). The host writes every number
/// again as JSON writes it (`model::json::settle_attr`).
pub fn number_of(n: f64) -> Option<String> {
    n.is_finite().then(|| {
        if n.fract() == 0.0 && n.abs() < 1e15 {
            format!("{MARK}{}", n as i64)
        } else {
            format!("{MARK}{n:?}")
        }
    })
}

/// The value a record holds for a boolean.
pub fn boolean(b: bool) -> &'static str {
    if b { "\0true" } else { "\0false" }
}

/// Whether `s` is a JSON number (RFC 8259's grammar) within
/// [`MAX_NUMBER_BYTES`] and an f64's range.
pub fn is_number(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > MAX_NUMBER_BYTES {
        return false;
    }
    let mut i = usize::from(b[0] == b'-');
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len() && s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Takes the mark off a value that is marked but is neither a number nor
/// a boolean: a plugin that rewrote a number's text (a redactor masking
/// its digits) made a string of it. The host settles a plugin's output
/// before it checks it.
pub fn settle(v: &mut String) {
    if v.starts_with(MARK) && matches!(AttrValue::of(v), AttrValue::Str(_)) {
        v.remove(0);
    }
}

/// What is wrong with a value a record holds, if anything: a NUL that is
/// not the mark of a number or a boolean.
pub fn problem(v: &str) -> Option<&'static str> {
    let rest = v.strip_prefix(MARK).unwrap_or(v);
    if rest.as_bytes().contains(&0) {
        return Some("holds a NUL character");
    }
    if rest.len() < v.len() && matches!(AttrValue::of(v), AttrValue::Str(_)) {
        return Some("is marked as a number or boolean (a leading NUL) but is neither");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes() {
        assert_eq!(AttrValue::of("123"), AttrValue::Str("123"));
        assert_eq!(
            AttrValue::of(&number("123").expect("a number")),
            AttrValue::Number("123")
        );
        assert_eq!(AttrValue::of(boolean(true)), AttrValue::Bool(true));
        assert_eq!(AttrValue::of(boolean(false)).text(), "false");
        assert_eq!(AttrValue::of("\0-1.5e3").as_f64(), Some(-1500.0));
        assert_eq!(AttrValue::of("1.5").as_f64(), None, "a string is not a number");
        assert_eq!(number_of(500.0).as_deref(), Some("\u{0}500"));
        assert_eq!(number_of(0.25).as_deref(), Some("\u{0}0.25"));
        assert_eq!(number_of(f64::NAN), None);
        for zero in ["-0", "0.0", "-0.0e5", "0"] {
            assert_eq!(number(zero).as_deref(), Some("\u{0}0"), "{zero}");
        }
        assert_eq!(number_of(-0.0).as_deref(), Some("\u{0}0"));
        for n in [1e300, -1.5e-300, 1e15, 0.1] {
            let v = number_of(n).expect("finite");
            assert_eq!(AttrValue::of(&v).as_f64(), Some(n), "{v:?}");
        }
    }

    #[test]
    fn the_json_number_grammar() {
        for ok in ["0", "-0", "7", "123", "-1.5", "1e3", "1E-3", "2.5e+10", "0.001"] {
            assert!(is_number(ok), "{ok}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x10", "NaN", "inf", "1 ", " 1", "1e999", "1_000",
        ] {
            assert!(!is_number(bad), "{bad}");
        }
        assert!(!is_number(&"9".repeat(MAX_NUMBER_BYTES + 1)));
    }

    #[test]
    fn a_rewritten_number_settles_as_a_string() {
        let mut v = "\0[REDACTED]".to_string();
        settle(&mut v);
        assert_eq!(v, "[REDACTED]");
        let mut n = "\u{0}500".to_string();
        settle(&mut n);
        assert_eq!(n, "\u{0}500");
        let mut nul = "a\0".to_string();
        settle(&mut nul);
        assert!(problem(&nul).is_some(), "a NUL inside stays refused");
    }

    #[test]
    fn a_nul_is_only_a_mark() {
        assert_eq!(problem("plain"), None);
        assert_eq!(problem("\u{0}42"), None);
        assert_eq!(problem("\0true"), None);
        assert!(problem("a\0b").is_some());
        assert!(problem("\0abc").is_some());
        assert!(problem("\0\0").is_some());
        assert!(problem("\u{0}1\0").is_some());
    }
}
