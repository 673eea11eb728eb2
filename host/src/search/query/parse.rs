//! The query string into an [`Expr`]: tokens, then a recursive descent
//! (`or` over `and` over `unary`), every bound checked on the way.

use super::{
    Expr, MAX_CLAUSES, MAX_DEPTH, MAX_NOTS, MAX_PATTERN_CHARS, MAX_PATTERN_QUESTIONS, MAX_PATTERN_STARS, MAX_PATTERNS,
    MAX_QUERY_CHARS, MAX_TERMS, MAX_TEXT_PATTERN_BYTES, Matcher, PatternField, Query, QueryError, TEXT_PATTERN_PREFIX,
    range,
};
use crate::model::Level;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    /// A term: `-` in front (excluded), the text before any quote (where a
    /// field name is), the whole text without its quotes, and whether a `*`
    /// or `?` stood outside quotes (a pattern).
    Term {
        minus: bool,
        unquoted: String,
        text: String,
        wild: bool,
    },
}

fn err(message: impl Into<String>, at: usize) -> QueryError {
    QueryError {
        message: message.into(),
        at,
    }
}

fn operator(text: &str) -> Option<Token> {
    match text {
        "AND" => Some(Token::And),
        "OR" => Some(Token::Or),
        "NOT" => Some(Token::Not),
        _ => None,
    }
}

/// The tokens of `input` with the character (1-based) each starts at.
///
/// Parentheses group only where they can: `(` at the start of a term, `)`
/// while a group is open and the term has no `(` of its own. Elsewhere
/// they are text, as they were before groups existed (`main()`,
/// `Bar.baz(Bar.java:42)`, `:)`).
fn tokens(chars: &[char]) -> Result<Vec<(Token, usize)>, QueryError> {
    let mut out = Vec::new();
    let mut open = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let at = i + 1;
        if c == '(' || (c == ')' && open > 0) {
            if c == '(' {
                open += 1;
                out.push((Token::Open, at));
            } else {
                open -= 1;
                out.push((Token::Close, at));
            }
            i += 1;
            continue;
        }
        let minus = c == '-';
        if minus {
            i += 1;
            if chars.get(i) == Some(&'(') {
                // `-(…)` is `NOT (…)`.
                out.push((Token::Not, at));
                continue;
            }
        }
        let (mut text, mut unquoted) = (String::new(), None::<String>);
        let (mut quote_at, mut own, mut wild) = (None, 0usize, false);
        while i < chars.len() {
            let c = chars[i];
            if quote_at.is_none() {
                if c.is_whitespace() || (c == ')' && own == 0 && open > 0) {
                    break;
                }
                // `timestamp:[from TO to]` (or an attribute's range) reads
                // to its closing bracket, spaces and all.
                if matches!(c, '[' | '{')
                    && unquoted.is_none()
                    && text
                        .strip_suffix(':')
                        .is_some_and(|f| f == "timestamp" || is_attribute(f))
                {
                    let Some(len) = chars[i..].iter().position(|c| matches!(c, ']' | '}')) else {
                        return Err(err("a range is not closed with `]` or `}`", i + 1));
                    };
                    text.extend(&chars[i..=i + len]);
                    i += len + 1;
                    continue;
                }
                // `NOT(`, `AND(`, `OR(`: the operator, then a group.
                if c == '(' && !minus && unquoted.is_none() && operator(&text).is_some() {
                    break;
                }
                match c {
                    '(' => own += 1,
                    ')' => own = own.saturating_sub(1),
                    '*' | '?' => wild = true,
                    _ => {}
                }
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
        if text.is_empty() {
            return Err(err(
                if quoted {
                    "an empty phrase matches nothing"
                } else {
                    "`-` must be followed by a term"
                },
                at,
            ));
        }
        let token = match operator(&text) {
            Some(op) if !minus && !quoted => op,
            _ => Token::Term {
                minus,
                unquoted: unquoted.unwrap_or_else(|| text.clone()),
                text,
                wild,
            },
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
    patterns: usize,
    nots: usize,
    groups: usize,
    /// What `now` means in times (unix ns).
    now: i64,
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
                Some(Token::And) => self.next += 1,
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

    fn not(&mut self, inner: Expr, at: usize) -> Result<Expr, QueryError> {
        self.nots += 1;
        if self.nots > MAX_NOTS {
            return Err(err(format!("more than {MAX_NOTS} NOTs"), at));
        }
        // `NOT NOT x` is `x`.
        Ok(match inner {
            Expr::Not(x) => *x,
            x => Expr::Not(Box::new(x)),
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let at = self.at();
        if depth > MAX_DEPTH {
            return Err(err(format!("nested deeper than {MAX_DEPTH} levels"), at));
        }
        let Some((token, _)) = self.tokens.get(self.next).cloned() else {
            return Err(err("a term is missing here", at));
        };
        self.next += 1;
        match token {
            Token::Not => {
                let inner = self.unary(depth + 1)?;
                self.not(inner, at)
            }
            Token::Open => {
                self.groups += 1;
                let inner = self.or(depth + 1)?;
                if self.peek() != Some(&Token::Close) {
                    return Err(err("`(` is not closed", at));
                }
                self.groups -= 1;
                self.next += 1;
                Ok(inner)
            }
            Token::Close if self.groups > 0 => Err(err("a term is missing here", at)),
            Token::Close => Err(err("`)` closes nothing", at)),
            Token::And | Token::Or => Err(err("a term is missing before this operator", at)),
            Token::Term {
                minus,
                unquoted,
                text,
                wild,
            } => {
                self.terms += 1;
                if self.terms > MAX_TERMS {
                    return Err(err(format!("more than {MAX_TERMS} terms"), at));
                }
                // A pattern is one unquoted word: quotes make `*` and `?`
                // literal, and a pattern cannot say which are which.
                let wild = wild && unquoted == text;
                let matcher = match unquoted.split_once(':') {
                    Some(("_exists_", _)) if unquoted != text => {
                        return Err(err("`_exists_:` takes an unquoted key", at));
                    }
                    Some(("_exists_", field)) => exists(field, at)?,
                    Some(("timestamp", _)) => range::time_range(&text["timestamp:".len()..], self.now, at)?,
                    // Kibana's name for it, which would otherwise be an
                    // attribute that no record has.
                    Some(("@timestamp", _)) => return Err(err("the record's time is `timestamp:`", at)),
                    // An unquoted `>`, `<`, `[` or `{` starts a range of
                    // numbers; quoted, it is the value.
                    Some((field, value)) if is_attribute(field) && unquoted == text && range::is_range(value) => {
                        range::number_range(attribute_key(field, at)?, value, at)?
                    }
                    Some((field, _)) if is_field(field) => field_matcher(field, &text[field.len() + 1..], wild, at)?,
                    _ if wild && is_word_pattern(&text) => text_pattern(&text, at)?,
                    _ => Matcher::Text(text),
                };
                if matches!(matcher, Matcher::Pattern { .. } | Matcher::Exists(_)) {
                    self.patterns += 1;
                    if self.patterns > MAX_PATTERNS {
                        return Err(err(format!("more than {MAX_PATTERNS} patterns"), at));
                    }
                }
                let m = Expr::Match(matcher);
                if minus { self.not(m, at) } else { Ok(m) }
            }
        }
    }
}

/// Clauses `e` makes in an index's query tree (see [`MAX_CLAUSES`]).
fn clauses(e: &Expr) -> usize {
    match e {
        // A range of numbers is a nested query of a key and a range.
        Expr::Match(Matcher::Text(_) | Matcher::Number { .. }) => 3,
        Expr::Match(Matcher::Pattern {
            field: PatternField::Text,
            ..
        }) => 3,
        Expr::Match(_) => 1,
        Expr::Not(inner) => 2 + clauses(inner),
        Expr::And(parts) | Expr::Or(parts) => 1 + parts.iter().map(clauses).sum::<usize>(),
    }
}

pub(super) fn parse(input: &str, now: i64) -> Result<Query, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    if chars.len() > MAX_QUERY_CHARS {
        return Err(err(
            format!("longer than {MAX_QUERY_CHARS} characters"),
            MAX_QUERY_CHARS + 1,
        ));
    }
    let mut p = Parser {
        tokens: tokens(&chars)?,
        next: 0,
        end: chars.len() + 1,
        terms: 0,
        patterns: 0,
        nots: 0,
        groups: 0,
        now,
    };
    if p.tokens.is_empty() {
        return Ok(Query::default());
    }
    let expr = p.or(0)?;
    if p.next < p.tokens.len() {
        return Err(err("`)` closes nothing", p.at()));
    }
    if clauses(&expr) > MAX_CLAUSES {
        return Err(err(format!("the query would make more than {MAX_CLAUSES} clauses"), 1));
    }
    Ok(Query { expr: Some(expr) })
}

fn is_field(f: &str) -> bool {
    matches!(f, "service" | "level") || is_attribute(f)
}

/// `attributes.<key>`, or its short form `@<key>` (as Datadog writes
/// facets).
fn is_attribute(f: &str) -> bool {
    f.starts_with("attributes.") || f.starts_with('@')
}

fn attribute_key(field: &str, at: usize) -> Result<&str, QueryError> {
    match field.strip_prefix("attributes.").or_else(|| field.strip_prefix('@')) {
        Some(key) if key.contains(['*', '?']) => Err(err("an attribute's key takes no `*` or `?`", at)),
        Some(key) if !key.is_empty() => Ok(key),
        _ => Err(err("`attributes.` (or `@`) needs a key", at)),
    }
}

fn exists(field: &str, at: usize) -> Result<Matcher, QueryError> {
    if !is_attribute(field) {
        return Err(err("`_exists_:` takes `attributes.<key>` or `@<key>`", at));
    }
    Ok(Matcher::Exists(attribute_key(field, at)?.to_string()))
}

/// A word of letters and digits with `*` or `?` in it: a pattern over the
/// text's words. Anything with other characters (`/api/orders?id=5`) is
/// text, as it was before patterns.
fn is_word_pattern(text: &str) -> bool {
    text.chars().all(|c| c.is_alphanumeric() || c == '*' || c == '?') && text.chars().any(char::is_alphanumeric)
}

fn pattern_bounds(pattern: &str, at: usize) -> Result<(), QueryError> {
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(err(
            format!("a pattern is longer than {MAX_PATTERN_CHARS} characters"),
            at,
        ));
    }
    if pattern.chars().filter(|c| *c == '*').count() > MAX_PATTERN_STARS {
        return Err(err(format!("a pattern holds more than {MAX_PATTERN_STARS} `*`"), at));
    }
    if pattern.chars().filter(|c| *c == '?').count() > MAX_PATTERN_QUESTIONS {
        return Err(err(
            format!("a pattern holds more than {MAX_PATTERN_QUESTIONS} `?`"),
            at,
        ));
    }
    if pattern.contains('\\') {
        return Err(err("a pattern cannot hold `\\`", at));
    }
    Ok(())
}

fn text_pattern(text: &str, at: usize) -> Result<Matcher, QueryError> {
    // A leading wildcard would read every word of the tenant's index.
    if text
        .chars()
        .take(TEXT_PATTERN_PREFIX)
        .filter(|c| c.is_alphanumeric())
        .count()
        < TEXT_PATTERN_PREFIX
    {
        return Err(err(
            format!("a pattern in the text starts with {TEXT_PATTERN_PREFIX} letters or digits"),
            at,
        ));
    }
    if text.len() > MAX_TEXT_PATTERN_BYTES {
        return Err(err(
            format!(
                "a pattern in the text is at most {MAX_TEXT_PATTERN_BYTES} bytes (the indexes keep no longer word)"
            ),
            at,
        ));
    }
    pattern_bounds(text, at)?;
    // One character at a time, as the indexes' lower-casing does (a
    // final sigma stays a sigma).
    Ok(Matcher::Pattern {
        field: PatternField::Text,
        pattern: text.chars().flat_map(char::to_lowercase).collect(),
    })
}

fn field_matcher(field: &str, value: &str, wild: bool, at: usize) -> Result<Matcher, QueryError> {
    if value.is_empty() {
        return Err(err(format!("`{field}:` needs a value"), at));
    }
    if wild {
        pattern_bounds(value, at)?;
        return Ok(match field {
            "service" => Matcher::Pattern {
                field: PatternField::Service,
                pattern: value.to_string(),
            },
            "level" => return Err(err("`level:` takes a level, not a pattern", at)),
            _ => {
                let key = attribute_key(field, at)?.to_string();
                if value == "*" {
                    return Ok(Matcher::Exists(key));
                }
                // Only a prefix, what OpenSearch's `flat_object` answers:
                // any other `*` or `?` is itself, as before patterns
                // (`attributes.url:/orders?id=5`).
                let prefix = value.strip_suffix('*').filter(|p| !p.contains(['*', '?']));
                if prefix.is_none() {
                    return Ok(Matcher::Attribute {
                        key,
                        value: value.to_string(),
                    });
                }
                Matcher::Pattern {
                    field: PatternField::Attribute(key),
                    pattern: value.to_string(),
                }
            }
        });
    }
    Ok(match field {
        "service" => Matcher::Service(value.to_string()),
        "level" => Matcher::Level(Level::parse(value).ok_or_else(|| err(format!("unknown level {value:?}"), at))?),
        _ => Matcher::Attribute {
            key: attribute_key(field, at)?.to_string(),
            value: value.to_string(),
        },
    })
}
