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
        "pay*",
        "inv?lid",
        "service:bill*",
        "service:*ing",
        "attributes.region:eu*",
        "_exists_:attributes.region",
        "attributes.region:*",
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
        "refund*",
        "pay?",
        "service:auth*",
        "attributes.region:us*",
        "_exists_:attributes.nope",
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
    // Parentheses that cannot group are text, as before groups existed.
    assert_eq!(parsed("main()"), text("main()"));
    assert_eq!(
        parsed("at Bar.baz(Bar.java:42)"),
        Expr::And(vec![text("at"), text("Bar.baz(Bar.java:42)")])
    );
    assert_eq!(
        parsed(":) foo)bar a b)"),
        Expr::And(vec![text(":)"), text("foo)bar"), text("a"), text("b)")])
    );
    assert_eq!(parsed("(order-42)"), text("order-42"));
}

fn pattern(field: PatternField, p: &str) -> Expr {
    Expr::Match(Matcher::Pattern {
        field,
        pattern: p.into(),
    })
}

#[test]
fn stars_and_question_marks_make_patterns() {
    assert_eq!(parsed("service:payment-*"), pattern(PatternField::Service, "payment-*"));
    assert_eq!(parsed("service:*-api?"), pattern(PatternField::Service, "*-api?"));
    assert_eq!(parsed("Pay*ENT"), pattern(PatternField::Text, "pay*ent"));
    assert_eq!(
        parsed("attributes.user_id:42*"),
        pattern(PatternField::Attribute("user_id".into()), "42*")
    );
    assert_eq!(
        parsed("attributes.user_id:*"),
        Expr::Match(Matcher::Exists("user_id".into()))
    );
    assert_eq!(
        parsed("_exists_:attributes.region"),
        Expr::Match(Matcher::Exists("region".into()))
    );
    // `@key` is short for `attributes.key`.
    assert_eq!(
        parsed("_exists_:@region"),
        Expr::Match(Matcher::Exists("region".into()))
    );
    assert_eq!(
        parsed("@user_id:42*"),
        pattern(PatternField::Attribute("user_id".into()), "42*")
    );
    assert_eq!(
        parsed(r#"@http.status:"500""#),
        Expr::Match(Matcher::Attribute {
            key: "http.status".into(),
            value: "500".into()
        })
    );
    assert!(Query::parse("@:x").expect_err("no key").message.contains("needs a key"));
    // Quoted, `*` and `?` are themselves; with other punctuation, text.
    assert_eq!(parsed(r#"service:"a*""#), service("a*"));
    assert_eq!(parsed(r#""pay*""#), text("pay*"));
    // In an attribute only a prefix is a pattern: other `*` and `?` are
    // themselves, as they were.
    assert_eq!(
        parsed("attributes.url:/orders?id=5"),
        Expr::Match(Matcher::Attribute {
            key: "url".into(),
            value: "/orders?id=5".into()
        })
    );
    assert_eq!(
        parsed("ΟΔΟΣ*"),
        pattern(PatternField::Text, "οδοσ*"),
        "lower case one character at a time"
    );
    let many = (0..=MAX_PATTERNS)
        .map(|i| format!("service:s{i}*"))
        .collect::<Vec<_>>()
        .join(" OR ");
    assert!(Query::parse(&many).expect_err("many").message.contains("patterns"));
    assert!(Query::parse(&format!("ab{}*", "c".repeat(40))).is_err());
    assert_eq!(parsed("/api/orders?id=5"), text("/api/orders?id=5"));
    for (bad, what) in [
        ("*ment", "starts with 2"),
        ("level:err*", "not a pattern"),
        ("a*", "starts with 2"),
        ("attributes.a*:b", "key takes no"),
        (r#"_exists_:attributes.a"b""#, "unquoted"),
        ("service:*a?????", "`?`"),
        ("_exists_:service", "attributes"),
        ("_exists_:attributes.", "needs a key"),
    ] {
        let e = Query::parse(bad).expect_err(bad);
        assert!(e.message.contains(what), "{bad}: {e}");
    }
    assert!(Query::parse(&format!("a{}", "*b".repeat(MAX_PATTERN_STARS + 1))).is_err());
    assert!(Query::parse(&format!("service:{}*", "x".repeat(MAX_PATTERN_CHARS))).is_err());
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
    assert_eq!(
        parsed("NOT(a) AND(b OR c)"),
        Expr::And(vec![not(text("a")), Expr::Or(vec![text("b"), text("c")])])
    );
    assert_eq!(parsed("NOT NOT a"), text("a"));
    assert_eq!(parsed("-(-a)"), text("a"));
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
        ("()", 2),
        ("(a OR)", 6),
        ("NOT", 4),
        (r#"a """#, 3),
        ("a -", 3),
        ("ré ( é", 4),
    ] {
        let e = Query::parse(bad).expect_err(bad);
        assert_eq!(e.at, at, "{bad}: {e}");
    }
    assert!(Query::parse(&"a".repeat(5000)).is_err());
    let nested = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
    assert!(Query::parse(&nested(MAX_DEPTH)).is_ok());
    assert!(
        Query::parse(&nested(MAX_DEPTH + 1))
            .expect_err("deep")
            .message
            .contains("deeper")
    );
    let nots = format!("{}a", "NOT ".repeat(40));
    assert!(Query::parse(&nots).is_err());
    // NOTs cost a scan each, wherever they are: `-` counts as well.
    let excluded = |n: usize| (0..n).map(|i| format!("-w{i}")).collect::<Vec<_>>().join(" OR ");
    assert!(Query::parse(&excluded(MAX_NOTS)).is_ok());
    assert!(
        Query::parse(&excluded(MAX_NOTS + 1))
            .expect_err("nots")
            .message
            .contains("NOTs")
    );
    let many = "a ".repeat(300);
    assert!(Query::parse(&many).expect_err("many").message.contains("terms"));
    assert!(Query::parse(&"a ".repeat(MAX_TERMS)).is_ok());
    // Every term a phrase, in pairs: 256 x 3 + 128 + 1 clauses fit.
    let pairs = (0..128)
        .map(|i| format!("(a{i} OR b{i})"))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(Query::parse(&pairs).is_ok());
    // 256 phrases as a binary tree of ORs: 256 x 3 + 255 clauses.
    fn tree(lo: usize, hi: usize) -> String {
        if hi - lo == 1 {
            format!("w{lo}")
        } else {
            let mid = (lo + hi) / 2;
            format!("({} OR {})", tree(lo, mid), tree(mid, hi))
        }
    }
    assert!(
        Query::parse(&tree(0, 256))
            .expect_err("clauses")
            .message
            .contains("clauses")
    );
    assert!(Query::parse(&tree(0, 128)).is_ok());
}

fn value() -> impl Strategy<Value = String> {
    // What a value may hold: anything but a quote (there is no escape).
    "[a-zA-Z0-9 :.()_/-]{1,12}".prop_filter("has a word", |v| v.chars().any(|c| !c.is_whitespace()))
}

fn matcher() -> impl Strategy<Value = Matcher> {
    prop_oneof![
        "[a-z][a-z0-9][a-z0-9*?]{0,6}"
            .prop_filter("a wildcard, few ?", |p| p.contains(['*', '?'])
                && p.matches('?').count() <= 4)
            .prop_map(|p| Matcher::Pattern {
                field: PatternField::Text,
                pattern: p
            }),
        "[a-z0-9*?_.-]{1,8}"
            .prop_filter("a wildcard, few ?", |p| p.contains(['*', '?'])
                && p.matches('?').count() <= 4)
            .prop_map(|p| Matcher::Pattern {
                field: PatternField::Service,
                pattern: p
            }),
        ("[a-z][a-z0-9_]{0,6}", "[a-z0-9._-]{1,6}").prop_map(|(key, p)| Matcher::Pattern {
            field: PatternField::Attribute(key),
            pattern: p + "*"
        }),
        "[a-z][a-z0-9_.]{0,6}".prop_map(Matcher::Exists),
        (
            prop::option::of(-2_000_000_000_000_000_000..4_000_000_000_000_000_000i64),
            prop::option::of(-2_000_000_000_000_000_000..4_000_000_000_000_000_000i64)
        )
            .prop_map(|(from, to)| Matcher::Time { from, to }),
        value().prop_map(Matcher::Text),
        value()
            .prop_map(|v| Matcher::Service(v.trim().to_string()))
            .prop_filter("non-empty", |m| { !matches!(m, Matcher::Service(s) if s.is_empty()) }),
        prop_oneof![Just(Level::Debug), Just(Level::Error), Just(Level::Warn)].prop_map(Matcher::Level),
        ("[a-z][a-z0-9_.]{0,8}", value()).prop_map(|(key, value)| Matcher::Attribute { key, value }),
        (
            "[a-z][a-z0-9_.]{0,8}",
            prop::option::of(prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO),
            prop::option::of(prop::num::f64::NORMAL | prop::num::f64::ZERO),
        )
            .prop_map(|(key, from, to)| Matcher::Number {
                key,
                from: from.map(sortable),
                to: to.map(sortable),
            }),
    ]
}

fn patterns(e: &Expr) -> usize {
    match e {
        Expr::Match(Matcher::Pattern { .. } | Matcher::Exists(_)) => 1,
        Expr::Match(_) => 0,
        Expr::Not(inner) => patterns(inner),
        Expr::And(parts) | Expr::Or(parts) => parts.iter().map(patterns).sum(),
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    matcher().prop_map(Expr::Match).prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            // The parser folds `NOT NOT x` into `x`: no tree holds one.
            inner.clone().prop_map(|e| match e {
                Expr::Not(x) => *x,
                e => Expr::Not(Box::new(e)),
            }),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

#[test]
fn timestamp_ranges_as_opensearch_reads_them() {
    const NOW: i64 = 1_760_097_600_000_000_000; // 2025-10-10T12:00:00Z
    const MIN: i64 = 60_000_000_000;
    const DAY: i64 = 1_440 * MIN;
    let midnight = NOW - 12 * 60 * MIN;
    let time = |q: &str| match Query::parse_at(q, NOW).map(|q| q.expr) {
        Ok(Some(Expr::Match(Matcher::Time { from, to }))) => (from, to),
        other => panic!("{q}: {other:?}"),
    };
    assert_eq!(time("timestamp:>=now-15m"), (Some(NOW - 15 * MIN), None));
    assert_eq!(time("timestamp:>now-15m"), (Some(NOW - 15 * MIN + 1), None));
    assert_eq!(time("timestamp:<now+1h"), (None, Some(NOW + 60 * MIN - 1)));
    assert_eq!(time("timestamp:<=now"), (None, Some(NOW)));
    // A date is its whole day.
    assert_eq!(time("timestamp:<2025-10-10"), (None, Some(midnight - 1)));
    assert_eq!(time("timestamp:<=2025-10-10"), (None, Some(midnight + DAY - 1)));
    assert_eq!(time("timestamp:>2025-10-10"), (Some(midnight + DAY), None));
    assert_eq!(
        time("timestamp:[2025-10-10 TO 2025-10-11}"),
        (Some(midnight), Some(midnight + DAY - 1))
    );
    assert_eq!(
        time("timestamp:{2025-10-10T00:00:00Z TO *]"),
        (Some(midnight + 1), None)
    );
    assert_eq!(time("timestamp:[* TO now-1w]"), (None, Some(NOW - 7 * DAY)));
    assert_eq!(
        time("timestamp:[2025-10-10T14:00:00+02:00 TO now]"),
        (Some(NOW), Some(NOW))
    );
    assert_eq!(
        Query::parse_at("level:error AND timestamp:>now-1h OR x", NOW)
            .expect("parses")
            .to_string(),
        "level:ERROR timestamp:[2025-10-10T11:00:00.000000001Z TO *] OR x"
    );

    let r = |timestamp: i64| LogRecord {
        id: "01JB8X6J7Z9Q0R1S2T3V4W5X6Y".into(),
        tenant: "acme".into(),
        service: "billing".into(),
        level: Level::Error,
        timestamp,
        received_at: 0,
        message: String::new(),
        full_log: String::new(),
        language: None,
        attributes: vec![],
        raw_path: None,
    };
    let q = Query::parse_at("timestamp:[now-15m TO now]", NOW).expect("parses");
    assert!(q.matches(&r(NOW)) && q.matches(&r(NOW - 15 * MIN)));
    assert!(!q.matches(&r(NOW + 1)) && !q.matches(&r(NOW - 15 * MIN - 1)));

    for (bad, at) in [
        ("timestamp:2025-10-10", 1),
        ("a timestamp:>yesterday", 3),
        ("timestamp:>now-1y", 1),
        ("timestamp:>now-9999999999m", 1),
        ("timestamp:[now now]", 1),
        ("timestamp:[now TO now", 11),
        ("timestamp:[now TO 2025-13-40]", 1),
        ("@timestamp:>now-15m", 1),
    ] {
        let e = Query::parse_at(bad, NOW).expect_err(bad);
        assert_eq!(e.at, at, "{bad}: {e}");
    }
}

proptest! {
    /// Printed, a query parses back to the same tree.
    #[test]
    fn a_query_prints_and_parses_back(e in expr().prop_filter("few patterns", |e| patterns(e) <= MAX_PATTERNS)) {
        let q = Query { expr: Some(e) };
        let printed = q.to_string();
        let again = Query::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(again, q, "printed as {}", printed);
    }

    /// Whatever the input, parsing answers (a query or an error with a
    /// place inside it), never panics.
    #[test]
    fn any_input_parses_or_says_where(input in "[a-z0-9 ()\"\\-:ORANDT.\\[\\]{}<>=*?+@]{0,40}|timestamp:[\\[{<>=]?[a-z0-9 :TZ+*-]{0,30}[\\]}]?") {
        match Query::parse(&input) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.at >= 1 && e.at <= input.chars().count() + 1, "{e}"),
        }
    }
}
