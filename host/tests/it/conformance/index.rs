//! The `SearchIndex` conformance suite: every implementation must pass it
//! unchanged (host/tests/stores.rs runs it on Tantivy and on OpenSearch).
//! Expected answers are computed from the records by the predicates beside
//! each query, so a query and its meaning are read together.

use super::{SEC, T0, newest_first};
use loggerhub::model::{Cursor, Level, LevelCounts, LogFilter, LogRecord};
use loggerhub::search::{IndexRow, Query, SearchIndex, SeriesBucket, Terms, TermsField};

const N: usize = 40;

fn record(tenant: &str, i: usize) -> LogRecord {
    LogRecord {
        id: ulid::Ulid::from_parts(1_760_000_000_000 + i as u64, (i as u128) * 104_729).to_string(),
        tenant: tenant.to_string(),
        service: ["billing", "auth", "web"][i % 3].to_string(),
        level: Level::ALL[i % 6],
        // Triples share a timestamp, so ties are broken by id.
        timestamp: T0 + (i as i64 / 3) * SEC,
        received_at: T0 + 3600 * SEC,
        message: if i.is_multiple_of(4) {
            format!("payment failed for order {i}")
        } else {
            format!("user login ok session {i}")
        },
        full_log: if i.is_multiple_of(5) {
            format!("Traceback: invalid UUID in request {i}")
        } else {
            String::new()
        },
        language: i.is_multiple_of(2).then(|| "rust".to_string()),
        attributes: vec![
            ("region".into(), if i < N / 2 { "eu west" } else { "us" }.into()),
            // A string that reads as a number: never in a range.
            ("n".into(), i.to_string()),
            // A number in most records (negative, fractional, huge), a
            // string in every seventh: one key, two types, nothing refused.
            ("ms".into(), ms(i)),
        ],
        raw_path: Some(format!("logs/{tenant}/batch.ndjson#{}", i + 1)),
    }
}

fn ms(i: usize) -> String {
    match i {
        _ if i.is_multiple_of(7) => "slow".into(),
        3 => loggerhub_codec::value::number("1e300").expect("a number"),
        _ => loggerhub_codec::value::number(&(((i * 37) % 101) as f64 / 4.0 - 5.0).to_string()).expect("a number"),
    }
}

/// A record's attribute `key` if it holds a number.
fn num(r: &LogRecord, key: &str) -> Option<f64> {
    let v = &r.attributes.iter().find(|(k, _)| k == key)?.1;
    loggerhub_codec::AttrValue::of(v).as_f64()
}

async fn all_pages(
    index: &dyn SearchIndex,
    tenant: &str,
    q: &str,
    filter: &LogFilter,
    limit: usize,
) -> (u64, Vec<String>) {
    let query = Query::parse(q).expect("query parses");
    let mut cursor: Option<Cursor> = None;
    let mut ids = Vec::new();
    let mut total = None;
    loop {
        let page = index
            .search(tenant, &query, filter, cursor.as_ref(), limit, true)
            .await
            .expect("search");
        assert!(page.ids.len() <= limit, "{q}: page over the limit");
        assert_eq!(*total.get_or_insert(page.total), page.total, "{q}: total changed");
        ids.extend(page.ids);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        // Past every record the suites index, pages repeat.
        assert!(ids.len() <= 1000, "{q}: pagination does not end");
    }
    (total.unwrap_or(0), ids)
}

/// Rows of records never indexed before.
fn new_rows(recs: &[LogRecord]) -> Vec<IndexRow<'_>> {
    recs.iter()
        .map(|r| IndexRow {
            record: r,
            may_exist: false,
        })
        .collect()
}

fn sorted_attrs(mut r: LogRecord) -> LogRecord {
    r.attributes.sort();
    r
}

pub async fn run(index: &dyn SearchIndex, a: &str, b: &str) {
    index.ping().await.expect("ping");
    index.provision(a).await.expect("provision a");
    index.provision(a).await.expect("provision is idempotent");
    index.provision(b).await.expect("provision b");

    let recs: Vec<LogRecord> = (0..N).map(|i| record(a, i)).collect();
    let rows = new_rows(&recs);
    // Two calls, so that a batch lands in an index that already holds one.
    let rejected = index.index(a, &rows[..N / 2]).await.expect("index");
    assert!(rejected.is_empty(), "valid records rejected: {rejected:?}");
    index.index(a, &rows[N / 2..]).await.expect("index");
    let other = record(b, 0);
    index
        .index(
            b,
            &[IndexRow {
                record: &other,
                may_exist: false,
            }],
        )
        .await
        .expect("index b");

    // Everything, newest first by (timestamp, id), over pages of every size.
    let everything = newest_first(recs.iter().cloned());
    for limit in [1, 7, N, N + 5] {
        let (total, ids) = all_pages(index, a, "", &LogFilter::default(), limit).await;
        assert_eq!(total, N as u64);
        assert_eq!(ids, everything, "limit {limit}");
    }

    // The query syntax and the filters, each against its meaning.
    type Pred = fn(&LogRecord) -> bool;
    let none = LogFilter::default();
    let cases: Vec<(&str, LogFilter, Pred)> = vec![
        ("payment", none.clone(), |r| r.message.contains("payment")),
        ("PAYMENT", none.clone(), |r| r.message.contains("payment")),
        (r#""payment failed""#, none.clone(), |r| {
            r.message.contains("payment failed")
        }),
        (r#""failed payment""#, none.clone(), |_| false),
        // A phrase that matches nothing, excluded: Tantivy's phrase scorer
        // cannot be excluded as it is (search/tantivy/materialized.rs).
        (r#"-"failed payment""#, none.clone(), |_| true),
        (r#"login -"failed payment" -"payment failed""#, none.clone(), |r| {
            r.message.contains("login")
        }),
        ("uuid", none.clone(), |r| r.full_log.contains("UUID")),
        ("payment uuid", none.clone(), |r| {
            r.message.contains("payment") && r.full_log.contains("UUID")
        }),
        ("-payment", none.clone(), |r| !r.message.contains("payment")),
        ("login -uuid", none.clone(), |r| {
            r.message.contains("login") && !r.full_log.contains("UUID")
        }),
        ("service:auth", none.clone(), |r| r.service == "auth"),
        ("-service:auth", none.clone(), |r| r.service != "auth"),
        ("level:error", none.clone(), |r| r.level == Level::Error),
        ("level:WARN service:web", none.clone(), |r| {
            r.level == Level::Warn && r.service == "web"
        }),
        (r#"attributes.region:"eu west""#, none.clone(), |r| {
            r.attributes.iter().any(|(k, v)| k == "region" && v == "eu west")
        }),
        ("attributes.n:7", none.clone(), |r| {
            r.attributes.iter().any(|(k, v)| k == "n" && v == "7")
        }),
        ("attributes.region:eu", none.clone(), |_| false),
        ("nothingmatchesthis", none.clone(), |_| false),
        // AND, OR, NOT and parentheses (docs/QUERY.md).
        ("service:auth OR service:web", none.clone(), |r| {
            r.service == "auth" || r.service == "web"
        }),
        ("payment OR uuid", none.clone(), |r| {
            r.message.contains("payment") || r.full_log.contains("UUID")
        }),
        ("level:error OR level:fatal OR service:billing", none.clone(), |r| {
            matches!(r.level, Level::Error | Level::Fatal) || r.service == "billing"
        }),
        ("(service:auth OR service:web) AND -payment", none.clone(), |r| {
            (r.service == "auth" || r.service == "web") && !r.message.contains("payment")
        }),
        ("service:auth OR service:web payment", none.clone(), |r| {
            r.service == "auth" || (r.service == "web" && r.message.contains("payment"))
        }),
        ("NOT service:auth", none.clone(), |r| r.service != "auth"),
        ("-(service:auth OR level:error)", none.clone(), |r| {
            r.service != "auth" && r.level != Level::Error
        }),
        ("NOT payment OR uuid", none.clone(), |r| {
            !r.message.contains("payment") || r.full_log.contains("UUID")
        }),
        ("payment AND NOT (uuid OR service:billing)", none.clone(), |r| {
            r.message.contains("payment") && !r.full_log.contains("UUID") && r.service != "billing"
        }),
        (r#"attributes.region:"eu west" OR attributes.n:39"#, none.clone(), |r| {
            r.attributes
                .iter()
                .any(|(k, v)| (k == "region" && v == "eu west") || (k == "n" && v == "39"))
        }),
        // Patterns and `_exists_`.
        ("service:bill*", none.clone(), |r| r.service == "billing"),
        ("service:*th OR service:?eb", none.clone(), |r| r.service != "billing"),
        ("pay*", none.clone(), |r| r.message.contains("payment")),
        ("PAY*ENT", none.clone(), |r| r.message.contains("payment")),
        ("sess* -service:web", none.clone(), |r| {
            r.message.contains("session") && r.service != "web"
        }),
        ("uu?d", none.clone(), |r| r.full_log.contains("UUID")),
        ("attributes.n:1*", none.clone(), |r| {
            r.attributes.iter().any(|(k, v)| k == "n" && v.starts_with('1'))
        }),
        ("attributes.region:eu*", none.clone(), |r| {
            r.attributes.iter().any(|(k, v)| k == "region" && v == "eu west")
        }),
        ("_exists_:attributes.region", none.clone(), |_| true),
        (r#"@region:"eu west" -@n:3*"#, none.clone(), |r| {
            r.attributes.iter().any(|(k, v)| k == "region" && v == "eu west")
                && !r.attributes.iter().any(|(k, v)| k == "n" && v.starts_with('3'))
        }),
        ("attributes.n:*", none.clone(), |_| true),
        // Ranges of numbers: only values that are numbers are in one.
        ("@ms:>10", none.clone(), |r| num(r, "ms").is_some_and(|x| x > 10.0)),
        ("attributes.ms:[0 TO 5]", none.clone(), |r| {
            num(r, "ms").is_some_and(|x| (0.0..=5.0).contains(&x))
        }),
        ("@ms:{0 TO 5}", none.clone(), |r| {
            num(r, "ms").is_some_and(|x| x > 0.0 && x < 5.0)
        }),
        ("@ms:<=-2.5", none.clone(), |r| num(r, "ms").is_some_and(|x| x <= -2.5)),
        ("@ms:[1e10 TO *]", none.clone(), |r| {
            num(r, "ms").is_some_and(|x| x >= 1e10)
        }),
        ("@ms:[* TO *]", none.clone(), |r| num(r, "ms").is_some()),
        ("@ms:>10 OR @ms:<-4", none.clone(), |r| {
            num(r, "ms").is_some_and(|x| !(-4.0..=10.0).contains(&x))
        }),
        ("service:web -@ms:>0", none.clone(), |r| {
            r.service == "web" && !num(r, "ms").is_some_and(|x| x > 0.0)
        }),
        ("@n:>5", none.clone(), |_| false),
        ("@nope:<1", none.clone(), |_| false),
        // An exact match reads a number's text.
        ("@ms:slow", none.clone(), |r| {
            r.attributes.iter().any(|(k, v)| k == "ms" && v == "slow")
        }),
        ("@ms:-4.75", none.clone(), |r| num(r, "ms") == Some(-4.75)),
        // Time ranges (T0 is 2025-10-09T08:53:20Z; records come three
        // to a second).
        ("timestamp:>=2025-10-09T08:53:23Z", none.clone(), |r| {
            r.timestamp >= T0 + 3 * SEC
        }),
        ("timestamp:>2025-10-09T08:53:23Z level:error", none.clone(), |r| {
            r.timestamp > T0 + 3 * SEC && r.level == Level::Error
        }),
        (
            "timestamp:[2025-10-09T08:53:22Z TO 2025-10-09T08:53:25Z}",
            none.clone(),
            |r| r.timestamp >= T0 + 2 * SEC && r.timestamp < T0 + 5 * SEC,
        ),
        (
            "timestamp:{* TO 2025-10-09T08:53:21Z] OR service:web",
            none.clone(),
            |r| r.timestamp <= T0 + SEC || r.service == "web",
        ),
        (
            "timestamp:<=2025-10-08 OR NOT timestamp:<2025-10-10",
            none.clone(),
            |_| false,
        ),
        (
            "timestamp:[2025-10-09 TO 2025-10-09] -timestamp:<now-1w",
            none.clone(),
            |_| false,
        ),
        ("timestamp:[* TO *] service:auth", none.clone(), |r| r.service == "auth"),
        // A date is its whole day: `]` and `<=` end at its last instant.
        ("timestamp:[* TO 2025-10-09] service:web", none.clone(), |r| {
            r.service == "web"
        }),
        ("timestamp:<=2025-10-09 -timestamp:<2025-10-09", none.clone(), |_| true),
        ("_exists_:attributes.nope", none.clone(), |_| false),
        ("NOT _exists_:attributes.nope service:web", none.clone(), |r| {
            r.service == "web"
        }),
        (
            "service:auth OR service:web",
            LogFilter {
                level: Some(Level::Info),
                ..Default::default()
            },
            |r| (r.service == "auth" || r.service == "web") && r.level == Level::Info,
        ),
        (
            "",
            LogFilter {
                service: Some("billing".into()),
                ..Default::default()
            },
            |r| r.service == "billing",
        ),
        (
            "payment",
            LogFilter {
                level: Some(Level::Trace),
                ..Default::default()
            },
            |r| r.message.contains("payment") && r.level == Level::Trace,
        ),
        (
            "",
            LogFilter {
                from: Some(T0 + 3 * SEC),
                to: Some(T0 + 9 * SEC),
                ..Default::default()
            },
            |r| r.timestamp >= T0 + 3 * SEC && r.timestamp < T0 + 9 * SEC,
        ),
    ];
    for (q, filter, pred) in &cases {
        let want = newest_first(recs.iter().filter(|r| pred(r)).cloned());
        let (total, ids) = all_pages(index, a, q, filter, 4).await;
        assert_eq!(ids, want, "query {q:?} {filter:?}");
        assert_eq!(total, want.len() as u64, "total of {q:?}");
    }

    // Counting by a field (`POST /v1/aggregate`): the most common values
    // of the matches, ties by value, the rest as `other`.
    let counted: Vec<(&str, &str, usize, Pred)> = vec![
        ("", "service", 2, |_| true),
        ("payment", "level", 10, |r| r.message.contains("payment")),
        ("", "attributes.region", 1, |_| true),
        ("service:web", "@n", 3, |r| r.service == "web"),
        ("-service:web", "@n", 1000, |r| r.service != "web"),
        ("level:error OR uuid", "@nope", 5, |r| {
            r.level == Level::Error || r.full_log.contains("UUID")
        }),
        ("nothingmatchesthis", "service", 5, |_| false),
        ("payment", "attributes", 5, |r| r.message.contains("payment")),
        ("service:web", "attributes", 1, |r| r.service == "web"),
    ];
    for (q, by, size, pred) in counted {
        let field = TermsField::parse(by).expect("field");
        let got = index
            .terms(a, &Query::parse(q).expect("parses"), &none, &field, size, None)
            .await
            .expect("terms");
        assert_eq!(got, expected_terms(&recs, pred, &field, size), "{q:?} by {by}");
    }
    // And per time bucket (5 s; three records a second).
    let series: Vec<(&str, &str, usize, Pred)> = vec![
        ("", "service", 2, |_| true),
        ("-payment", "@region", 1, |r| !r.message.contains("payment")),
        ("level:error OR level:warn", "@n", 3, |r| {
            matches!(r.level, Level::Error | Level::Warn)
        }),
        ("service:auth", "@nope", 2, |r| r.service == "auth"),
    ];
    for (q, by, size, pred) in series {
        let field = TermsField::parse(by).expect("field");
        let got = index
            .terms(a, &Query::parse(q).expect("parses"), &none, &field, size, Some(5 * SEC))
            .await
            .expect("terms");
        let want = expected_terms(&recs, pred, &field, size);
        assert_eq!((&got.buckets, got.other), (&want.buckets, want.other), "{q:?} by {by}");
        assert_eq!(
            got.series,
            expected_series(&recs, pred, &field, &want, 5 * SEC),
            "{q:?} by {by}"
        );
    }

    // Statistics of a number attribute: of all the matches, per value of
    // a field, per time bucket.
    type Group<'a> = Option<(&'a str, usize)>;
    let numbered: Vec<(&str, Group<'_>, Option<i64>, Pred)> = vec![
        ("", None, None, |_| true),
        ("-@ms:>100", None, None, |r| !num(r, "ms").is_some_and(|x| x > 100.0)),
        ("payment OR level:error", Some(("service", 2)), None, |r| {
            r.message.contains("payment") || r.level == Level::Error
        }),
        ("", Some(("@region", 5)), None, |_| true),
        ("level:error OR level:warn OR level:info", None, Some(5 * SEC), |r| {
            matches!(r.level, Level::Error | Level::Warn | Level::Info)
        }),
        ("nothingmatchesthis", None, Some(5 * SEC), |_| false),
    ];
    for (q, group, interval, pred) in numbered {
        let field = group.map(|(by, size)| (TermsField::parse(by).expect("field"), size));
        let got = index
            .numbers(
                a,
                &Query::parse(q).expect("parses"),
                &none,
                "ms",
                field.as_ref().map(|(f, n)| (f, *n)),
                interval,
            )
            .await
            .expect("numbers");
        let kept: Vec<&LogRecord> = recs.iter().filter(|r| pred(r)).collect();
        let what = format!("{q:?} by {group:?} every {interval:?}");
        assert_eq!(got.total, kept.len() as u64, "{what}");
        check_summary(&got.all, &kept, &what);
        match &field {
            Some((f, size)) => {
                let want = expected_terms(&recs, pred, f, *size);
                let terms = got.terms.as_ref().expect("the field's counts");
                assert_eq!(
                    (&terms.buckets, terms.other, terms.missing),
                    (&want.buckets, want.other, want.missing),
                    "{what}"
                );
                assert_eq!(got.per_value.len(), want.buckets.len(), "{what}");
                for ((value, _), s) in want.buckets.iter().zip(&got.per_value) {
                    let of: Vec<&LogRecord> = kept
                        .iter()
                        .copied()
                        .filter(|r| field_value(r, f) == Some(value.as_str()))
                        .collect();
                    check_summary(s, &of, &format!("{what}, {value}"));
                }
            }
            None => assert!(got.terms.is_none() && got.per_value.is_empty(), "{what}"),
        }
        if let Some(interval) = interval {
            let mut starts: Vec<i64> = kept
                .iter()
                .map(|r| r.timestamp - r.timestamp.rem_euclid(interval))
                .collect();
            starts.dedup();
            starts.sort();
            starts.dedup();
            let got_starts: Vec<i64> = got.series.iter().map(|(b, _, _)| *b).collect();
            assert_eq!(got_starts, starts, "{what}");
            for (b, n, s) in &got.series {
                let of: Vec<&LogRecord> = kept
                    .iter()
                    .copied()
                    .filter(|r| r.timestamp - r.timestamp.rem_euclid(interval) == *b)
                    .collect();
                assert_eq!(*n, of.len() as u64, "{what} at {b}");
                check_summary(s, &of, &format!("{what} at {b}"));
            }
        } else {
            assert!(got.series.is_empty(), "{what}");
        }
    }

    // Detail by id: the whole record, as indexed.
    for r in [&recs[0], &recs[5], &recs[N - 1]] {
        let got = index.get(a, &r.id).await.expect("get").expect("found");
        assert_eq!(sorted_attrs(got), sorted_attrs(r.clone()));
    }
    assert_eq!(index.get(a, "01ARZ3NDEKTSV4RRFFQ69G5FAV").await.expect("get"), None);

    // Tenant isolation, both ways.
    let (total, ids) = all_pages(index, b, "", &none, 10).await;
    assert_eq!((total, ids), (1, vec![other.id.clone()]));
    assert_eq!(index.get(b, &recs[1].id).await.expect("get"), None);
    assert_eq!(all_pages(index, b, "login", &none, 10).await.0, 0);

    // Replay: the same ids again (a retried batch, maybe with what a
    // newer plugin made of them) replace, never duplicate.
    let mut again: Vec<LogRecord> = recs[..10].to_vec();
    for r in &mut again {
        r.message = format!("replayed {}", r.id);
    }
    let rows: Vec<IndexRow<'_>> = again
        .iter()
        .map(|r| IndexRow {
            record: r,
            may_exist: true,
        })
        .collect();
    index.index(a, &rows).await.expect("replay");
    let (total, ids) = all_pages(index, a, "", &none, 100).await;
    assert_eq!((total, ids), (N as u64, everything));
    assert_eq!(all_pages(index, a, "replayed", &none, 100).await.0, 10);
    let got = index.get(a, &again[3].id).await.expect("get").expect("found");
    assert_eq!(got.message, again[3].message);

    // A tenant that never indexed anything has nothing, and no error.
    let (empty, _) = super::metadata::fresh_tenants();
    assert_eq!(all_pages(index, &empty, "payment", &none, 10).await, (0, vec![]));
    assert_eq!(index.get(&empty, &recs[0].id).await.expect("get"), None);

    // Retention: the oldest first, bounded, one tenant; then a drop.
    assert!(index.stored_bytes(a).await.expect("stored") > 0);
    let cutoff = T0 + 4 * SEC; // records 0..12 are older
    let older = recs.iter().filter(|r| r.timestamp < cutoff).count() as u64;
    let b_before = all_pages(index, b, "", &none, 100).await.0;
    assert_eq!(index.delete_before(a, cutoff, 5).await.expect("delete"), 5);
    let deleted = index.delete_before(a, cutoff, 100).await.expect("delete");
    assert_eq!(deleted, older - 5);
    assert_eq!(index.delete_before(a, cutoff, 100).await.expect("delete"), 0);
    let (total, ids) = all_pages(index, a, "", &none, 100).await;
    assert_eq!(total, N as u64 - older);
    let kept = newest_first(recs.iter().filter(|r| r.timestamp >= cutoff).cloned());
    assert_eq!(ids, kept, "retention deleted the wrong records");
    assert_eq!(all_pages(index, b, "", &none, 100).await.0, b_before);
    assert_eq!(index.delete_before(&empty, cutoff, 10).await.expect("empty"), 0);
    index.drop_tenant(a).await.expect("drop");
    index.drop_tenant(a).await.expect("drop is idempotent");
    assert_eq!(all_pages(index, a, "", &none, 100).await.0, 0);
    assert_eq!(all_pages(index, b, "", &none, 100).await.0, b_before);
}

/// A record's value of a field counted by.
fn field_value<'r>(r: &'r LogRecord, f: &TermsField) -> Option<&'r str> {
    match f {
        TermsField::Service => Some(&r.service),
        TermsField::Level => Some(r.level.as_str()),
        TermsField::Attribute(key) => r
            .attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| loggerhub_codec::AttrValue::of(v).text()),
        TermsField::AttributeKeys => None,
    }
}

/// `got` against the numbers `ms` of `recs`: count, min and max exactly,
/// the sum to rounding, each percentile within one rank of where it falls
/// (an interpolation, or OpenSearch's t-digest estimate).
fn check_summary(got: &loggerhub::search::Summary, recs: &[&LogRecord], what: &str) {
    let mut v: Vec<f64> = recs.iter().filter_map(|r| num(r, "ms")).collect();
    v.sort_by(f64::total_cmp);
    assert_eq!(got.count, v.len() as u64, "count of {what}");
    assert_eq!(
        (got.min, got.max),
        (v.first().copied(), v.last().copied()),
        "min, max of {what}"
    );
    let sum: f64 = v.iter().sum();
    assert!(
        (got.sum - sum).abs() <= sum.abs() * 1e-9 + 1e-9,
        "sum of {what}: {} against {sum}",
        got.sum
    );
    for (p, value) in loggerhub::search::numbers::PERCENTS.iter().zip(got.percentiles) {
        if v.is_empty() {
            assert_eq!(value, None, "p{p} of {what}");
            continue;
        }
        let x = value.unwrap_or_else(|| panic!("p{p} of {what}"));
        let rank = p / 100.0 * (v.len() - 1) as f64;
        let lo = v[(rank.floor() as usize).saturating_sub(1)];
        let hi = v[(rank.ceil() as usize + 1).min(v.len() - 1)];
        assert!(lo <= x && x <= hi, "p{p} of {what}: {x} not in [{lo}, {hi}] ({v:?})");
    }
}

/// What counting `recs` that `pred` keeps by `field` must answer.
fn expected_terms(recs: &[LogRecord], pred: fn(&LogRecord) -> bool, field: &TermsField, size: usize) -> Terms {
    let mut counts: std::collections::HashMap<String, u64> = Default::default();
    let (mut total, mut missing) = (0, 0);
    for r in recs.iter().filter(|r| pred(r)) {
        total += 1;
        let value = match field {
            TermsField::Service => Some(r.service.clone()),
            TermsField::Level => Some(r.level.as_str().to_string()),
            TermsField::Attribute(key) => r.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
            TermsField::AttributeKeys => {
                for (k, _) in &r.attributes {
                    *counts.entry(k.clone()).or_default() += 1;
                }
                if r.attributes.is_empty() {
                    missing += 1;
                }
                continue;
            }
        };
        match value {
            Some(v) => *counts.entry(v).or_default() += 1,
            None => missing += 1,
        }
    }
    Terms::top(total, counts.into_iter().collect(), size, missing)
}

/// What a series of `recs` that `pred` keeps must answer, per bucket of
/// `interval`, for the values `top` kept.
fn expected_series(
    recs: &[LogRecord],
    pred: fn(&LogRecord) -> bool,
    field: &TermsField,
    top: &Terms,
    interval: i64,
) -> Vec<SeriesBucket> {
    let mut buckets: std::collections::BTreeMap<i64, SeriesBucket> = Default::default();
    for r in recs.iter().filter(|r| pred(r)) {
        let start = r.timestamp - r.timestamp.rem_euclid(interval);
        let b = buckets.entry(start).or_insert_with(|| SeriesBucket {
            start,
            counts: vec![0; top.buckets.len()],
            ..SeriesBucket::default()
        });
        b.total += 1;
        let value = match field {
            TermsField::Service => Some(r.service.clone()),
            TermsField::Level => Some(r.level.as_str().to_string()),
            TermsField::Attribute(key) => r.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
            TermsField::AttributeKeys => None,
        };
        match value.and_then(|v| top.buckets.iter().position(|(t, _)| *t == v)) {
            Some(i) => b.counts[i] += 1,
            None if matches!(field, TermsField::Attribute(k) if !r.attributes.iter().any(|(a, _)| a == k)) => {
                b.missing += 1
            }
            None => b.other += 1,
        }
    }
    buckets.into_values().collect()
}

/// A query, its filters, and which records it must find.
type Case = (&'static str, LogFilter, fn(&LogRecord) -> bool);

/// Records spread over ten days with uneven gaps, so that a search reads
/// many time slices: pages still come newest first by (timestamp, id),
/// without a gap or a repeat, and the totals hold, bounded or exact.
pub async fn spread(index: &dyn SearchIndex, tenant: &str) {
    index.provision(tenant).await.expect("provision");
    const HOUR: i64 = 3600 * SEC;
    let recs: Vec<LogRecord> = (0..300)
        .map(|i| {
            let mut r = record(tenant, i);
            // Quadratic gaps: dense at first, hours and then days apart.
            r.timestamp = T0 + (i as i64 * i as i64 * HOUR) / 370 + (i as i64 % 3) * SEC;
            r
        })
        .collect();
    let rows = new_rows(&recs);
    assert!(index.index(tenant, &rows).await.expect("index").is_empty());
    let cases: [Case; 4] = [
        ("", LogFilter::default(), |_| true),
        ("payment", LogFilter::default(), |r| r.message.starts_with("payment")),
        ("level:error", LogFilter::default(), |r| r.level == Level::Error),
        (
            "",
            LogFilter {
                from: Some(T0 + 5 * HOUR + 1),
                to: Some(T0 + 100 * HOUR),
                ..LogFilter::default()
            },
            |r| r.timestamp > T0 + 5 * HOUR && r.timestamp < T0 + 100 * HOUR,
        ),
    ];
    for (q, filter, want) in cases {
        let expected = newest_first(recs.iter().filter(|r| want(r)).cloned());
        for limit in [1, 7, 100] {
            let (total, ids) = all_pages(index, tenant, q, &filter, limit).await;
            assert_eq!(ids, expected, "{q:?} {filter:?} by {limit}");
            assert_eq!(total, expected.len() as u64, "{q:?} {filter:?}");
        }
        let query = Query::parse(q).expect("query parses");
        let bounded = index
            .search(tenant, &query, &filter, None, 5, false)
            .await
            .expect("search");
        assert_eq!(
            (bounded.total, bounded.total_is_lower_bound),
            (expected.len() as u64, false),
            "{q:?}: under the bound, the bounded count is exact"
        );
        // The search's histogram: its matches per bucket and level.
        for interval in [HOUR, 24 * HOUR, 7 * 24 * HOUR] {
            let mut want_buckets: std::collections::BTreeMap<i64, LevelCounts> = Default::default();
            for r in recs.iter().filter(|r| want(r)) {
                want_buckets
                    .entry(r.timestamp - r.timestamp.rem_euclid(interval))
                    .or_default()
                    .0[r.level as usize] += 1;
            }
            let got = index
                .histogram(tenant, &query, &filter, interval)
                .await
                .expect("histogram");
            assert_eq!(
                got,
                want_buckets.into_iter().collect::<Vec<_>>(),
                "{q:?} {filter:?}: histogram by {interval} ns"
            );
        }
    }
    let only_errors = LogFilter {
        level: Some(Level::Error),
        ..LogFilter::default()
    };
    let query = Query::parse("payment").expect("query parses");
    let got = index
        .histogram(tenant, &query, &only_errors, 24 * HOUR)
        .await
        .expect("histogram");
    let errors = recs
        .iter()
        .filter(|r| r.level == Level::Error && r.message.starts_with("payment"))
        .count() as u64;
    assert_eq!(got.iter().map(|(_, c)| c.total()).sum::<u64>(), errors);
    assert!(
        got.iter().all(|(_, c)| c.total() == c.0[Level::Error as usize]),
        "only the level asked"
    );
    let nothing = index
        .histogram("nosuchtenant", &query, &LogFilter::default(), HOUR)
        .await
        .expect("histogram of a tenant with no index");
    assert!(nothing.is_empty());
}
