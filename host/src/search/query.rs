//! The query language shared by every index backend (docs/QUERY.md):
//! terms (words or `"quoted phrases"`) and `field:value` matches, combined
//! with `AND` (also two terms side by side), `OR`, `NOT` (or a leading `-`)
//! and parentheses; `NOT` binds tighter than `AND`, `AND` than `OR`, as in
//! Lucene's `query_string`. The fields: `service:`, `level:` and
//! `attributes.<key>:`.
//!
//! **Invariant:** a query is parsed here once, into an [`Expr`], and every
//! backend translates that tree; no backend reads the query string.

use std::fmt;

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
}

/// A query as a tree: `And` and `Or` hold two or more parts, never one.
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
const MAX_QUERY_CHARS: usize = 4096;

/// Most terms in a query: each becomes a clause (two, for text) in the
/// index's query, and OpenSearch refuses more than 1,024 clauses.
const MAX_TERMS: usize = 256;

/// Deepest nesting of parentheses and `NOT`s: the parser and every
/// backend's translation recurse once per level.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    /// A term: `-` in front (excluded), the text before any quote (where a
    /// field name is), the whole text without its quotes.
    Term {
        minus: bool,
        unquoted: String,
        text: String,
    },
}

fn err(message: impl Into<String>, at: usize) -> QueryError {
    QueryError {
        message: message.into(),
        at,
    }
}

/// The tokens of `input` with the character (1-based) each starts at.
fn tokens(input: &str) -> Result<Vec<(Token, usize)>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let at = i + 1;
        if c == '(' || c == ')' {
            out.push((if c == '(' { Token::Open } else { Token::Close }, at));
            i += 1;
            continue;
        }
        let minus = c == '-';
        if minus {
            i += 1;
            if i < chars.len() && chars[i] == '(' {
                // `-(…)` is `NOT (…)`.
                out.push((Token::Not, at));
                continue;
            }
        }
        // A term runs to whitespace or `)` outside quotes.
        let (mut text, mut unquoted) = (String::new(), None::<String>);
        let mut quote_at = None;
        while i < chars.len() {
            let c = chars[i];
            if quote_at.is_none() && (c.is_whitespace() || c == ')') {
                break;
            }
            i += 1;
            if c == '"' {
                if quote_at.is_some() {
                    quote_at = None;
                } else {
                    unquoted.get_or_insert_with(|| text.clone());
                    quote_at = Some(i);
                }
                continue;
            }
            text.push(c);
        }
        if let Some(q) = quote_at {
            return Err(err("a quote is not closed", q));
        }
        let quoted = unquoted.is_some();
        let unquoted = unquoted.unwrap_or_else(|| text.clone());
        let token = match (minus, quoted, text.as_str()) {
            (false, false, "AND") => Token::And,
            (false, false, "OR") => Token::Or,
            (false, false, "NOT") => Token::Not,
            (true, false, "") => return Err(err("`-` must be followed by a term", at)),
            (_, true, "") => continue,
            _ => Token::Term { minus, unquoted, text },
        };
        out.push((token, at));
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    next: usize,
    end: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.next).map_or(self.end, |(_, at)| *at)
    }

    fn or(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut parts = vec![self.and(depth)?];
        while self.peek() == Some(&Token::Or) {
            self.next += 1;
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut parts = vec![self.unary(depth)?];
        loop {
            match self.peek() {
                None | Some(Token::Or) | Some(Token::Close) => break,
                Some(Token::And) => {
                    self.next += 1;
                }
                _ => {}
            }
            parts.push(self.unary(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, QueryError> {
        if depth >= MAX_DEPTH {
            return Err(err(format!("nested deeper than {MAX_DEPTH} levels"), self.at()));
        }
        let at = self.at();
        let Some((token, _)) = self.tokens.get(self.next).cloned() else {
            return Err(err("a term is missing here", at));
        };
        self.next += 1;
        match token {
            Token::Not => Ok(Expr::Not(Box::new(self.unary(depth + 1)?))),
            Token::Open => {
                let inner = self.or(depth + 1)?;
                if self.peek() != Some(&Token::Close) {
                    return Err(err("`(` is not closed", at));
                }
                self.next += 1;
                Ok(inner)
            }
            Token::Close => Err(err("`)` closes nothing", at)),
            Token::And | Token::Or => Err(err("a term is missing before this operator", at)),
            Token::Term { minus, unquoted, text } => {
                self.terms += 1;
                if self.terms > MAX_TERMS {
                    return Err(err(format!("more than {MAX_TERMS} terms"), at));
                }
                let matcher = match unquoted.split_once(':') {
                    Some((field, _)) if is_field(field) => field_matcher(field, &text[field.len() + 1..], at)?,
                    _ => Matcher::Text(text),
                };
                let m = Expr::Match(matcher);
                Ok(if minus { Expr::Not(Box::new(m)) } else { m })
            }
        }
    }
}

impl Query {
    pub fn parse(input: &str) -> Result<Query, QueryError> {
        let len = input.chars().count();
        if len > MAX_QUERY_CHARS {
            return Err(err(
                format!("longer than {MAX_QUERY_CHARS} characters"),
                MAX_QUERY_CHARS + 1,
            ));
        }
        let mut p = Parser {
            tokens: tokens(input)?,
            next: 0,
            end: len + 1,
            terms: 0,
        };
        if p.tokens.is_empty() {
            return Ok(Query::default());
        }
        let expr = p.or(0)?;
        if p.next < p.tokens.len() {
            return Err(err("`)` closes nothing", p.at()));
        }
        Ok(Query { expr: Some(expr) })
    }

    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }

    /// Whether `r` holds, read as the indexes read it: text as words
    /// (letters and digits, any case), a phrase as consecutive words,
    /// fields exactly. For records already in hand (the live tail); the
    /// metadata store's copy holds the message's first 500 characters,
    /// and that is what text matches against.
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
            Matcher::Attribute { key, value } => r.attributes.iter().any(|(k, v)| k == key && v == value),
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

/// The query in the language, in a form that parses back to the same tree.
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            Some(e) => write!(f, "{e}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |f: &mut fmt::Formatter<'_>, e: &Expr, bare: bool| {
            if bare { write!(f, "{e}") } else { write!(f, "({e})") }
        };
        match self {
            Expr::Match(m) => write!(f, "{m}"),
            Expr::Not(inner) => {
                f.write_str("NOT ")?;
                part(f, inner, matches!(**inner, Expr::Match(_) | Expr::Not(_)))
            }
            Expr::And(parts) | Expr::Or(parts) => {
                let or = matches!(self, Expr::Or(_));
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if or { " OR " } else { " AND " })?;
                    }
                    // A part of the same kind, or an OR inside an AND, needs
                    // its parentheses to parse back as it was.
                    let bare = match p {
                        Expr::Match(_) | Expr::Not(_) => true,
                        Expr::And(_) => or,
                        Expr::Or(_) => false,
                    };
                    part(f, p, bare)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Text(t) => write_value(f, t, true),
            Matcher::Service(s) => {
                f.write_str("service:")?;
                write_value(f, s, false)
            }
            Matcher::Level(l) => write!(f, "level:{}", l.as_str()),
            Matcher::Attribute { key, value } => {
                write!(f, "attributes.{key}:")?;
                write_value(f, value, false)
            }
        }
    }
}

/// A value as it parses back: quoted where it holds what ends or changes
/// a term (text that looks like an operator or a field, too).
fn write_value(f: &mut fmt::Formatter<'_>, v: &str, text: bool) -> fmt::Result {
    let plain = !v.is_empty()
        && !v.contains(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '"'))
        && !(text && (matches!(v, "AND" | "OR" | "NOT") || v.starts_with('-') || v.contains(':')));
    if plain { f.write_str(v) } else { write!(f, "\"{v}\"") }
}

/// Lower-cased runs of letters and digits, as the indexes' tokenizers cut.
fn words_of(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn is_field(f: &str) -> bool {
    matches!(f, "service" | "level") || f.starts_with("attributes.")
}

fn field_matcher(field: &str, value: &str, at: usize) -> Result<Matcher, QueryError> {
    if value.is_empty() {
        return Err(err(format!("`{field}:` needs a value"), at));
    }
    Ok(match field {
        "service" => Matcher::Service(value.to_string()),
        "level" => Matcher::Level(Level::parse(value).ok_or_else(|| err(format!("unknown level {value:?}"), at))?),
        _ => {
            let key = &field["attributes.".len()..];
            if key.is_empty() {
                return Err(err("`attributes.` needs a key", at));
            }
            Matcher::Attribute {
                key: key.to_string(),
                value: value.to_string(),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(s: &str) -> Expr {
        Expr::Match(Matcher::Text(s.into()))
    }

    fn not(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }

    fn service(s: &str) -> Expr {
        Expr::Match(Matcher::Service(s.into()))
    }

    fn parsed(q: &str) -> Expr {
        Query::parse(q).expect("parses").expr.expect("not empty")
    }

    #[test]
    fn records_match_as_the_indexes_read_them() {
        let r = LogRecord {
            id: "01JB8X6J7Z9Q0R1S2T3V4W5X6Y".into(),
            tenant: "acme".into(),
            service: "billing".into(),
            level: Level::Error,
            timestamp: 0,
            received_at: 0,
            message: "Payment failed: invalid UUID (order-42)".into(),
            full_log: String::new(),
            language: None,
            attributes: vec![("region".into(), "eu west".into())],
            raw_path: None,
        };
        let m = |q: &str| Query::parse(q).expect("parses").matches(&r);
        for yes in [
            "",
            "payment",
            "PAYMENT uuid",
            r#""invalid uuid""#,
            "order 42",
            "(order-42)",
            "service:billing level:error",
            r#"attributes.region:"eu west""#,
            "-timeout",
            "-level:info",
            "service:payments OR service:billing",
            "level:error AND (service:payments OR service:billing)",
            "refund OR uuid",
            "NOT refund",
            "-(refund OR timeout)",
            "NOT (level:error AND refund)",
        ] {
            assert!(m(yes), "{yes}");
        }
        for no in [
            "refund",
            r#""uuid invalid""#,
            "pay",
            "service:bill",
            "level:warn",
            "attributes.region:eu",
            "-payment",
            "payment -uuid",
            "service:payments OR level:warn",
            "level:error AND (service:payments OR refund)",
            "NOT payment OR refund",
            "-(payment OR timeout)",
            // `and` is a word, not the operator.
            "payment and failed",
        ] {
            assert!(!m(no), "{no}");
        }
    }

    #[test]
    fn the_syntax_that_came_before_reads_as_it_did() {
        assert_eq!(
            parsed(
                r#"payment "invalid UUID" -timeout service:billing level:ERROR attributes.region:"eu west" -level:debug"#
            ),
            Expr::And(vec![
                text("payment"),
                text("invalid UUID"),
                not(text("timeout")),
                service("billing"),
                Expr::Match(Matcher::Level(Level::Error)),
                Expr::Match(Matcher::Attribute {
                    key: "region".into(),
                    value: "eu west".into()
                }),
                not(Expr::Match(Matcher::Level(Level::Debug))),
            ])
        );
        assert_eq!(
            parsed("http://x.io/a foo:bar"),
            Expr::And(vec![text("http://x.io/a"), text("foo:bar")])
        );
        assert!(Query::parse("   ").expect("parses").is_empty());
        assert!(Query::parse(r#""""#).expect("parses").is_empty());
    }

    #[test]
    fn not_binds_tighter_than_and_and_and_than_or() {
        assert_eq!(
            parsed("a OR b c"),
            Expr::Or(vec![text("a"), Expr::And(vec![text("b"), text("c")])])
        );
        assert_eq!(
            parsed("a b OR c"),
            Expr::Or(vec![Expr::And(vec![text("a"), text("b")]), text("c")])
        );
        assert_eq!(parsed("NOT a b"), Expr::And(vec![not(text("a")), text("b")]));
        assert_eq!(
            parsed("(a OR b) AND c"),
            Expr::And(vec![Expr::Or(vec![text("a"), text("b")]), text("c")])
        );
        assert_eq!(
            parsed("service:web AND -(a OR NOT b)"),
            Expr::And(vec![service("web"), not(Expr::Or(vec![text("a"), not(text("b"))]))])
        );
        // Lower case is text, as in Lucene.
        assert_eq!(parsed("a or b"), Expr::And(vec![text("a"), text("or"), text("b")]));
        assert_eq!(parsed(r#""OR" a"#), Expr::And(vec![text("OR"), text("a")]));
    }

    #[test]
    fn errors_say_where() {
        for (bad, at) in [
            (r#"a "open"#, 3),
            ("level:loud", 1),
            ("a service:", 3),
            ("-", 1),
            ("attributes.:x", 1),
            ("a AND", 6),
            ("a OR", 5),
            ("OR a", 1),
            ("a AND OR b", 7),
            ("(a OR b", 1),
            ("a b)", 4),
            (")", 1),
            ("()", 2),
            ("NOT", 4),
        ] {
            let e = Query::parse(bad).expect_err(bad);
            assert_eq!(e.at, at, "{bad}: {e}");
        }
        assert!(Query::parse(&"a".repeat(5000)).is_err());
        let deep = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(Query::parse(&deep).expect_err("deep").message.contains("deeper"));
        let nots = format!("{}a", "NOT ".repeat(40));
        assert!(Query::parse(&nots).is_err());
        let many = "a ".repeat(300);
        assert!(Query::parse(&many).expect_err("many").message.contains("terms"));
        assert!(Query::parse(&"a ".repeat(256)).is_ok());
    }

    fn value() -> impl Strategy<Value = String> {
        // What a value may hold: anything but a quote (there is no escape).
        "[a-zA-Z0-9 :.()_/-]{1,12}".prop_filter("has a word", |v| v.chars().any(|c| !c.is_whitespace()))
    }

    fn matcher() -> impl Strategy<Value = Matcher> {
        prop_oneof![
            value().prop_map(Matcher::Text),
            value()
                .prop_map(|v| Matcher::Service(v.trim().to_string()))
                .prop_filter("non-empty", |m| { !matches!(m, Matcher::Service(s) if s.is_empty()) }),
            prop_oneof![Just(Level::Debug), Just(Level::Error), Just(Level::Warn)].prop_map(Matcher::Level),
            ("[a-z][a-z0-9_.]{0,8}", value()).prop_map(|(key, value)| Matcher::Attribute { key, value }),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        matcher().prop_map(Expr::Match).prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
            ]
        })
    }

    proptest! {
        /// Printed, a query parses back to the same tree.
        #[test]
        fn a_query_prints_and_parses_back(e in expr()) {
            let q = Query { expr: Some(e) };
            let printed = q.to_string();
            let again = Query::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
            prop_assert_eq!(again, q, "printed as {}", printed);
        }

        /// Whatever the input, parsing answers (a query or an error with a
        /// place inside it), never panics.
        #[test]
        fn any_input_parses_or_says_where(input in "[a-z ()\"\\-:ORANDT.]{0,40}") {
            match Query::parse(&input) {
                Ok(_) => {}
                Err(e) => prop_assert!(e.at >= 1 && e.at <= input.chars().count() + 1, "{e}"),
            }
        }
    }
}
