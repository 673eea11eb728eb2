//! The query language shared by every index backend (docs/QUERY.md):
//! terms (words or `"quoted phrases"`) and `field:value` matches, combined
//! with `AND` (also two terms side by side), `OR`, `NOT` (or a leading `-`)
//! and parentheses; `NOT` binds tighter than `AND`, `AND` than `OR`, as in
//! Lucene's `query_string`. The fields: `service:`, `level:` and
//! `attributes.<key>:`; `*` and `?` in a value make it a pattern, and
//! `_exists_:attributes.<key>` asks for records that have the attribute;
//! `timestamp:` and an attribute take a range (`range`): an attribute's
//! is of numbers.
//!
//! **Invariant:** a query is parsed here once, into an [`Expr`] within the
//! bounds below, and every backend translates that tree; no backend reads
//! the query string. `parse` reads the string, `print` writes a tree back.

pub mod glob;
mod parse;
mod print;
mod range;

pub use range::{sortable, unsortable};
#[cfg(test)]
mod tests;

use loggerhub_codec::AttrValue;

use crate::model::{Level, LogRecord};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Free text (one word or a phrase) in the message or the full log.
    Text(String),
    Service(String),
    Level(Level),
    Attribute {
        key: String,
        value: String,
    },
    /// `*` (any run of characters) and `?` (one character) in a service
    /// name, at the end of an attribute's value (a prefix), or in one word
    /// of the text (lower case, as the indexes keep words).
    Pattern {
        field: PatternField,
        pattern: String,
    },
    /// The record has the attribute (`_exists_:attributes.<key>`).
    Exists(String),
    /// The record's attribute `key` is a number within `from..=to`
    /// ([`sortable`] keys; `None` is open): `attributes.ms:>500`,
    /// `@status:[500 TO 599]`. A string that reads as a number is not one.
    Number {
        key: String,
        from: Option<u64>,
        to: Option<u64>,
    },
    /// The record's time is within `from..=to` (unix ns; `None` is open):
    /// `timestamp:>now-15m`, `timestamp:[2025-10-10 TO 2025-10-11}`.
    Time {
        from: Option<i64>,
        to: Option<i64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternField {
    Text,
    Service,
    Attribute(String),
}

/// A query as a tree: `And` and `Or` hold two or more parts, never one;
/// a `Not` never holds a `Not`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Match(Matcher),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A parsed query; no expression matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub expr: Option<Expr>,
}

/// What is wrong with a query, and where (1-based, in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query: {message} (at character {at})")]
pub struct QueryError {
    pub message: String,
    pub at: usize,
}

/// Longest query accepted; a search box never needs more.
pub const MAX_QUERY_CHARS: usize = 4096;

/// Most terms in a query.
pub const MAX_TERMS: usize = 256;

/// Most `NOT`s (and `-`s) in a query: a `NOT` that is not one of an
/// `AND`'s parts reads every record of the tenant to take its matches out.
pub const MAX_NOTS: usize = 32;

/// Most clauses the query makes in an index's query tree (a phrase or a
/// range of numbers three, an exact match one, a `NOT` two, an `AND` or
/// `OR` one more than its parts): OpenSearch refuses more than 1,024 in
/// one search, and the list filters add a few.
pub const MAX_CLAUSES: usize = 1_000;

/// Deepest nesting of parentheses and `NOT`s: the parser and every
/// backend's translation recurse once per level.
pub const MAX_DEPTH: usize = 32;

/// Longest pattern, most `*`s and `?`s in one, and most patterns in a
/// query: a pattern becomes an automaton over the index's words (and a
/// match over each tailed record). Its states grow with the `?`s after a
/// `*` (2^n: Tantivy's automaton refuses past 1,000 states) and its walk
/// with the words it may match.
pub const MAX_PATTERN_CHARS: usize = 128;
pub const MAX_PATTERN_STARS: usize = 8;
pub const MAX_PATTERN_QUESTIONS: usize = 4;
pub const MAX_PATTERNS: usize = 16;

/// Longest pattern in the text, and the letters or digits it must start
/// with: Tantivy keeps no word of 40 bytes or more, and a short start
/// walks a large part of the tenant's words.
pub const MAX_TEXT_PATTERN_BYTES: usize = 39;
pub const TEXT_PATTERN_PREFIX: usize = 2;

impl Query {
    pub fn parse(input: &str) -> Result<Query, QueryError> {
        parse::parse(input, loggerhub_codec::line::now_ns())
    }

    /// [`Query::parse`], with `now` (unix ns) for `now` in times.
    pub fn parse_at(input: &str, now: i64) -> Result<Query, QueryError> {
        parse::parse(input, now)
    }

    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }

    /// Whether `r` holds, read as the indexes read it: text as words
    /// (letters and digits, any case), a phrase as consecutive words,
    /// fields exactly. For records already in hand (the live tail); the
    /// metadata store's copy holds the message's first 500 characters and
    /// no full log, and that is what text matches against.
    pub fn matches(&self, r: &LogRecord) -> bool {
        let mut words: Option<Vec<String>> = None;
        self.expr.as_ref().is_none_or(|e| holds(e, r, &mut words))
    }
}

fn holds(e: &Expr, r: &LogRecord, words: &mut Option<Vec<String>>) -> bool {
    match e {
        Expr::Match(m) => match m {
            Matcher::Service(s) => r.service == *s,
            Matcher::Level(l) => r.level == *l,
            Matcher::Attribute { key, value } => r.attributes.iter().any(|(k, v)| k == key && text(v) == value),
            Matcher::Number { key, from, to } => r.attributes.iter().any(|(k, v)| {
                k == key
                    && AttrValue::of(v)
                        .as_f64()
                        .map(sortable)
                        .is_some_and(|n| from.is_none_or(|f| n >= f) && to.is_none_or(|t| n <= t))
            }),
            Matcher::Exists(key) => r.attributes.iter().any(|(k, _)| k == key),
            Matcher::Time { from, to } => from.is_none_or(|f| r.timestamp >= f) && to.is_none_or(|t| r.timestamp <= t),
            Matcher::Pattern { field, pattern } => match field {
                PatternField::Service => glob::matches(pattern, &r.service),
                PatternField::Attribute(key) => r
                    .attributes
                    .iter()
                    .any(|(k, v)| k == key && glob::matches(pattern, text(v))),
                PatternField::Text => {
                    let words = words.get_or_insert_with(|| words_of(&r.message).collect());
                    words.iter().any(|w| glob::matches(pattern, w))
                }
            },
            Matcher::Text(t) => {
                let words = words.get_or_insert_with(|| words_of(&r.message).collect());
                let phrase: Vec<String> = words_of(t).collect();
                !phrase.is_empty() && words.windows(phrase.len()).any(|w| w == phrase.as_slice())
            }
        },
        Expr::Not(inner) => !holds(inner, r, words),
        Expr::And(parts) => parts.iter().all(|p| holds(p, r, words)),
        Expr::Or(parts) => parts.iter().any(|p| holds(p, r, words)),
    }
}

/// An attribute's value as exact matches and patterns read it: a number's
/// or a boolean's literal.
fn text(v: &str) -> &str {
    AttrValue::of(v).text()
}

/// Lower-cased runs of letters and digits, as the indexes' tokenizers cut.
fn words_of(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}
