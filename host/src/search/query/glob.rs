//! `*` and `?` patterns: matching a value (the live tail), and the
//! same pattern as a regular expression for Tantivy's automaton.

/// Whether `pattern` (`*` any run, `?` one character) matches all of
/// `value`. Greedy with one backtrack point, so at most
/// `value × pattern` steps; patterns are bounded by the parser.
pub fn matches(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || (p[i] != '*' && p[i] == v[j])) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// The pattern as a regular expression that matches whole terms (what
/// Tantivy's `RegexQuery` takes): its other characters escaped.
pub fn to_regex(pattern: &str) -> String {
    let mut out = String::from("(?s)");
    for c in pattern.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c => push_literal(&mut out, c),
        }
    }
    out
}

/// `c` as a literal in a regular expression.
pub fn push_literal(out: &mut String, c: char) {
    if matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' | '#' | '&' | '-' | '~'
    ) {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_values() {
        for (p, v) in [
            ("pay*", "payment"),
            ("*ment", "payment"),
            ("p?y*t", "payment"),
            ("*", ""),
            ("a*b*c", "aXbYc"),
            ("a*a*a*b", "aaaaaab"),
            ("4?", "42"),
        ] {
            assert!(matches(p, v), "{p} {v}");
        }
        for (p, v) in [
            ("pay*", "repay"),
            ("?", ""),
            ("a*b", "aXbc"),
            ("4?", "4"),
            ("a*a*a*b", "aaaaaaa"),
        ] {
            assert!(!matches(p, v), "{p} {v}");
        }
    }

    #[test]
    fn regexes_escape_what_is_not_a_wildcard() {
        assert_eq!(to_regex("a.b*c?"), r"(?s)a\.b.*c.");
        assert_eq!(to_regex("x-(1)"), r"(?s)x\-\(1\)");
    }
}
