//! The query language as a Tantivy query: text as a phrase in the
//! message or the full log, exact matches as terms, the list filters.

use std::ops::Bound;

use tantivy::Term;
use tantivy::query::{AllQuery, BooleanQuery, Occur, PhraseQuery, Query as TQuery, RangeQuery, RegexQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;

use super::materialized::Materialized;
use super::schema::number_term;
use super::{TenantIndex, corrupt};
use crate::error::BackendError;
use crate::model::LogFilter;
use crate::search::query::{Expr, Matcher, PatternField, Query, glob};

impl TenantIndex {
    fn analyzer(&self) -> Result<TextAnalyzer, BackendError> {
        self.index
            .tokenizers()
            .get("default")
            .ok_or_else(|| corrupt("default tokenizer missing"))
    }

    fn tokens(&self, text: &str) -> Result<Vec<String>, BackendError> {
        let mut analyzer = self.analyzer()?;
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push(t.text.clone());
        }
        Ok(out)
    }

    fn text_query(&self, text: &str) -> Result<Box<dyn TQuery>, BackendError> {
        let tokens = self.tokens(text)?;
        let f = &self.fields;
        let per_field = |field: Field| -> Box<dyn TQuery> {
            let terms: Vec<Term> = tokens.iter().map(|t| Term::from_field_text(field, t)).collect();
            if terms.len() == 1 {
                Box::new(TermQuery::new(terms[0].clone(), IndexRecordOption::Basic))
            } else {
                Box::new(PhraseQuery::new(terms))
            }
        };
        if tokens.is_empty() {
            // Only punctuation: matches nothing, as in every full-text engine.
            return Ok(Box::new(BooleanQuery::new(vec![])));
        }
        Ok(Box::new(BooleanQuery::new(vec![
            (Occur::Should, per_field(f.message)),
            (Occur::Should, per_field(f.full_log)),
        ])))
    }

    fn matcher_query(&self, m: &Matcher) -> Result<Box<dyn TQuery>, BackendError> {
        let f = &self.fields;
        Ok(match m {
            Matcher::Text(t) => self.text_query(t)?,
            Matcher::Service(s) => exact(f.service, s),
            Matcher::Level(l) => exact(f.level, l.as_str()),
            Matcher::Attribute { key, value } => exact(f.attr, &format!("{key}={value}")),
            // Attributes are indexed as `key=value` terms of one field.
            Matcher::Exists(key) => regex(f.attr, &format!("{}=(?s:.*)", literal(key)))?,
            // `[* TO *]`: every record has a time (and a range names its
            // field only through its ends).
            Matcher::Number { key, from, to } => {
                let end = |n: u64| Bound::Included(Term::from_field_text(f.attr, &number_term(key, n)));
                Box::new(RangeQuery::new(end(from.unwrap_or(0)), end(to.unwrap_or(u64::MAX))))
            }
            Matcher::Time { from: None, to: None } => Box::new(AllQuery),
            Matcher::Time { from, to } => {
                let end = |t: &Option<i64>| {
                    t.map_or(Bound::Unbounded, |t| {
                        Bound::Included(Term::from_field_i64(f.timestamp, t))
                    })
                };
                Box::new(RangeQuery::new(end(from), end(to)))
            }
            Matcher::Pattern { field, pattern } => {
                let re = glob::to_regex(pattern);
                match field {
                    PatternField::Service => regex(f.service, &re)?,
                    PatternField::Attribute(key) => regex(f.attr, &format!("{}={re}", literal(key)))?,
                    PatternField::Text => Box::new(BooleanQuery::new(vec![
                        (Occur::Should, regex(f.message, &re)?),
                        (Occur::Should, regex(f.full_log, &re)?),
                    ])),
                }
            }
        })
    }

    /// What a `NOT` takes out: read into a bit set first when it holds
    /// text (`materialized`: Tantivy's phrase scorer cannot be excluded).
    fn excluded(&self, e: &Expr) -> Result<Box<dyn TQuery>, BackendError> {
        let q = self.expr_query(e)?;
        Ok(if holds_text(e) { Box::new(Materialized(q)) } else { q })
    }

    /// The tree as nested boolean queries. Tantivy matches nothing with
    /// only `MustNot` clauses, so a part that excludes alone starts from
    /// every document.
    fn expr_query(&self, e: &Expr) -> Result<Box<dyn TQuery>, BackendError> {
        Ok(match e {
            Expr::Match(m) => self.matcher_query(m)?,
            Expr::Not(inner) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery)),
                (Occur::MustNot, self.excluded(inner)?),
            ])),
            Expr::And(parts) => {
                let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = Vec::with_capacity(parts.len() + 1);
                for p in parts {
                    clauses.push(match p {
                        Expr::Not(inner) => (Occur::MustNot, self.excluded(inner)?),
                        _ => (Occur::Must, self.expr_query(p)?),
                    });
                }
                if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                Box::new(BooleanQuery::new(clauses))
            }
            Expr::Or(parts) => Box::new(BooleanQuery::new(
                parts
                    .iter()
                    .map(|p| Ok((Occur::Should, self.expr_query(p)?)))
                    .collect::<Result<_, BackendError>>()?,
            )),
        })
    }

    pub(super) fn build_query(&self, q: &Query, filter: &LogFilter) -> Result<Box<dyn TQuery>, BackendError> {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = vec![(Occur::Must, Box::new(AllQuery))];
        if let Some(e) = &q.expr {
            clauses.push((Occur::Must, self.expr_query(e)?));
        }
        if let Some(s) = &filter.service {
            clauses.push((Occur::Must, exact(f.service, s)));
        }
        if let Some(l) = filter.level {
            clauses.push((Occur::Must, exact(f.level, l.as_str())));
        }
        if filter.from.is_some() || filter.to.is_some() {
            let lo = filter.from.map_or(Bound::Unbounded, |v| {
                Bound::Included(Term::from_field_i64(f.timestamp, v))
            });
            let hi = filter.to.map_or(Bound::Unbounded, |v| {
                Bound::Excluded(Term::from_field_i64(f.timestamp, v))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }
}

fn holds_text(e: &Expr) -> bool {
    match e {
        Expr::Match(m) => matches!(m, Matcher::Text(_)),
        Expr::Not(inner) => holds_text(inner),
        Expr::And(parts) | Expr::Or(parts) => parts.iter().any(holds_text),
    }
}

fn exact(field: Field, v: &str) -> Box<dyn TQuery> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, v),
        IndexRecordOption::Basic,
    ))
}

/// Terms of `field` that `re` matches whole (an automaton over the term
/// dictionary; the parser bounds the pattern it comes from).
fn regex(field: Field, re: &str) -> Result<Box<dyn TQuery>, BackendError> {
    let q = RegexQuery::from_pattern(re, field).map_err(|e| corrupt(format!("pattern {re:?}: {e}")))?;
    Ok(Box::new(q))
}

fn literal(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        glob::push_literal(&mut out, c);
    }
    out
}
