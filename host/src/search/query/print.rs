//! A tree back into the language: the canonical form, which parses back
//! to the same tree (a query near the bounds may print longer than it was
//! written: quotes, ` OR `).

use std::fmt;

use loggerhub_codec::time::format_rfc3339;

use super::{Expr, Matcher, PatternField, Query, unsortable};

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
            Expr::Not(inner) => match **inner {
                Expr::Match(_) => write!(f, "-{inner}"),
                _ => write!(f, "-({inner})"),
            },
            Expr::And(parts) | Expr::Or(parts) => {
                let or = matches!(self, Expr::Or(_));
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if or { " OR " } else { " " })?;
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
            // A pattern is one unquoted word (the parser sees to it).
            Matcher::Pattern { field, pattern } => match field {
                PatternField::Text => f.write_str(pattern),
                PatternField::Service => write!(f, "service:{pattern}"),
                PatternField::Attribute(key) => write!(f, "attributes.{key}:{pattern}"),
            },
            Matcher::Exists(key) => write!(f, "_exists_:attributes.{key}"),
            Matcher::Number { key, from, to } => {
                let end = |n: &Option<u64>| n.map_or_else(|| "*".to_string(), |n| number(unsortable(n)));
                write!(f, "attributes.{key}:[{} TO {}]", end(from), end(to))
            }
            Matcher::Time { from, to } => {
                let end = |t: &Option<i64>| t.map_or_else(|| "*".to_string(), format_rfc3339);
                write!(f, "timestamp:[{} TO {}]", end(from), end(to))
            }
        }
    }
}

/// `x` as JSON writes it and the parser reads it back exactly: plain
/// digits, or an exponent where they would be many (1e300, 5e-324).
fn number(x: f64) -> String {
    let plain = x.to_string();
    if plain.len() <= 24 { plain } else { format!("{x:e}") }
}

/// A value as it parses back: quoted where it holds what ends or changes
/// a term (text that looks like an operator or a field, too).
fn write_value(f: &mut fmt::Formatter<'_>, v: &str, text: bool) -> fmt::Result {
    let plain = !v.is_empty()
        && !v.contains(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '"' | '*' | '?'))
        // Unquoted, a field's value starting so is a range.
        && !v.starts_with(['>', '<', '[', '{'])
        && !(text && (matches!(v, "AND" | "OR" | "NOT") || v.starts_with('-') || v.contains(':')));
    if plain { f.write_str(v) } else { write!(f, "\"{v}\"") }
}
