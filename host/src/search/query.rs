//! The query syntax shared by every index backend (DESIGN §4): terms are
//! ANDed, `"quoted phrases"`, `-term` excludes, `service:billing`,
//! `level:error`, `attributes.<key>:<value>`.

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub negated: bool,
    pub matcher: Matcher,
}

/// A parsed query: every clause must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query: {0}")]
pub struct QueryError(pub String);

/// Longest query accepted; a search box never needs more.
const MAX_QUERY_CHARS: usize = 4096;

impl Query {
    pub fn parse(input: &str) -> Result<Query, QueryError> {
        if input.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError(format!("longer than {MAX_QUERY_CHARS} characters")));
        }
        let mut clauses = Vec::new();
        let mut chars = input.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            let negated = first == '-';
            if negated {
                chars.next();
            }
            // A token runs to the next whitespace outside quotes.
            let mut token = String::new();
            let mut quoted_from = None;
            let mut in_quotes = false;
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() && !in_quotes {
                    break;
                }
                chars.next();
                if c == '"' {
                    if !in_quotes {
                        quoted_from = Some(token.len());
                    }
                    in_quotes = !in_quotes;
                    continue;
                }
                token.push(c);
            }
            if in_quotes {
                return Err(QueryError("unterminated quote".into()));
            }
            if token.is_empty() {
                if negated && quoted_from.is_none() {
                    return Err(QueryError("`-` must be followed by a term".into()));
                }
                continue;
            }
            let field_part = quoted_from.map_or(token.as_str(), |q| &token[..q]);
            let matcher = match field_part.split_once(':') {
                Some((field, _)) if is_field(field) => {
                    let value = &token[field.len() + 1..];
                    field_matcher(field, value)?
                }
                _ => Matcher::Text(token),
            };
            clauses.push(Clause { negated, matcher });
        }
        Ok(Query { clauses })
    }

    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Whether `r` holds, read as the indexes read it: text as words
    /// (letters and digits, any case), a phrase as consecutive words,
    /// fields exactly. For records already in hand (the live tail); the
    /// metadata store's copy holds the message's first 500 characters,
    /// and that is what text matches against.
    pub fn matches(&self, r: &LogRecord) -> bool {
        let mut words: Option<Vec<String>> = None;
        self.clauses.iter().all(|c| {
            let hit = match &c.matcher {
                Matcher::Service(s) => r.service == *s,
                Matcher::Level(l) => r.level == *l,
                Matcher::Attribute { key, value } => r.attributes.iter().any(|(k, v)| k == key && v == value),
                Matcher::Text(t) => {
                    let words = words.get_or_insert_with(|| words_of(&r.message).collect());
                    let phrase: Vec<String> = words_of(t).collect();
                    !phrase.is_empty() && words.windows(phrase.len()).any(|w| w == phrase.as_slice())
                }
            };
            hit != c.negated
        })
    }
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

fn field_matcher(field: &str, value: &str) -> Result<Matcher, QueryError> {
    if value.is_empty() {
        return Err(QueryError(format!("`{field}:` needs a value")));
    }
    Ok(match field {
        "service" => Matcher::Service(value.to_string()),
        "level" => Matcher::Level(Level::parse(value).ok_or_else(|| QueryError(format!("unknown level {value:?}")))?),
        _ => {
            let key = &field["attributes.".len()..];
            if key.is_empty() {
                return Err(QueryError("`attributes.` needs a key".into()));
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

    fn text(s: &str, negated: bool) -> Clause {
        Clause {
            negated,
            matcher: Matcher::Text(s.into()),
        }
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
            "service:billing level:error",
            r#"attributes.region:"eu west""#,
            "-timeout",
            "-level:info",
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
        ] {
            assert!(!m(no), "{no}");
        }
    }

    #[test]
    fn full_syntax() {
        let q = Query::parse(
            r#"payment "invalid UUID" -timeout service:billing level:ERROR attributes.region:"eu west" -level:debug"#,
        )
        .expect("parses");
        assert_eq!(
            q.clauses,
            vec![
                text("payment", false),
                text("invalid UUID", false),
                text("timeout", true),
                Clause {
                    negated: false,
                    matcher: Matcher::Service("billing".into())
                },
                Clause {
                    negated: false,
                    matcher: Matcher::Level(Level::Error)
                },
                Clause {
                    negated: false,
                    matcher: Matcher::Attribute {
                        key: "region".into(),
                        value: "eu west".into()
                    }
                },
                Clause {
                    negated: true,
                    matcher: Matcher::Level(Level::Debug)
                },
            ]
        );
    }

    #[test]
    fn urls_and_unknown_prefixes_are_text() {
        let q = Query::parse("http://x.io/a foo:bar").expect("parses");
        assert_eq!(q.clauses, vec![text("http://x.io/a", false), text("foo:bar", false)]);
        assert!(Query::parse("   ").expect("parses").is_empty());
    }

    #[test]
    fn errors() {
        for bad in [r#""open"#, "level:loud", "service:", "-", "attributes.:x"] {
            assert!(Query::parse(bad).is_err(), "{bad}");
        }
        assert!(Query::parse(&"a".repeat(5000)).is_err());
    }
}
