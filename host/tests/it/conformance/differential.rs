//! The differential test of the query language (issue 24, point 1): the
//! same records in Tantivy and in OpenSearch, and a few hundred queries
//! drawn at random from the grammar (words, phrases, fields, patterns,
//! `_exists_`, time ranges, `AND`/`OR`/`NOT`, groups). Each must find the
//! same records in both indexes and in the live tail's `Query::matches`.
//! The records hold no full log and words of letters and digits only, so
//! that all three read the same text (docs/QUERY.md says where the
//! analyzers part).

use std::collections::BTreeSet;

use super::{SEC, T0};
use loggerhub::model::{Level, LogFilter, LogRecord};
use loggerhub::search::{IndexRow, Query, SearchIndex};

const N: usize = 60;
const QUERIES: usize = 300;

const WORDS: &[&str] = &[
    "payment", "failed", "login", "session", "uuid", "order", "user", "ok", "timeout", "retry",
];
const PHRASES: &[&str] = &[
    "\"payment failed\"",
    "\"user login\"",
    "\"failed payment\"",
    "\"order 7\"",
    "\"timeout retry\"",
];
const FIELDS: &[&str] = &[
    "service:billing",
    "service:auth",
    "service:web-api",
    "service:bill*",
    "service:*th",
    "service:web-?pi",
    "level:error",
    "level:warn",
    "level:info",
    "level:debug",
    "level:fatal",
    "attributes.region:eu",
    "attributes.region:us",
    "@n:7",
    "@n:1*",
    "@n:*",
    "_exists_:attributes.region",
    "_exists_:@nope",
    "pay*",
    "sess*",
    "ti?eout",
    "timestamp:>=2025-10-09T08:53:30Z",
    "timestamp:<2025-10-09T08:53:35Z",
    "timestamp:[2025-10-09T08:53:25Z TO 2025-10-09T08:53:40Z}",
    "timestamp:{2025-10-09T08:53:38Z TO *]",
    "@ms:>5",
    "@ms:<=2.5",
    "@ms:[1 TO 8}",
    "@ms:{-1 TO 3]",
    "@ms:[* TO *]",
    "@ms:4",
    "@n:>3",
];

fn record(tenant: &str, i: usize) -> LogRecord {
    let w = |k: usize| WORDS[(i * 7 + k * 3) % WORDS.len()];
    LogRecord {
        id: ulid::Ulid::from_parts(1_760_000_000_000 + i as u64, (i as u128) * 7_919).to_string(),
        tenant: tenant.to_string(),
        service: ["billing", "auth", "web-api", "billing-eu"][i % 4].to_string(),
        level: Level::ALL[(i * 5) % 6],
        timestamp: T0 + i as i64 * SEC,
        received_at: T0 + 3600 * SEC,
        message: format!("{} {} {} order {}", w(0), w(1), w(2), i % 9),
        full_log: String::new(),
        language: None,
        attributes: match i % 3 {
            0 => vec![("region".into(), "eu".into()), ("n".into(), (i % 20).to_string())],
            1 => vec![("region".into(), "us".into()), ("ms".into(), ms(i))],
            _ => vec![("n".into(), (i % 20).to_string()), ("ms".into(), ms(i))],
        },
        raw_path: None,
    }
}

/// A number in halves from -1 to 9, or a string that reads as one.
fn ms(i: usize) -> String {
    let text = ((i % 21) as f64 / 2.0 - 1.0).to_string();
    if i.is_multiple_of(5) {
        text
    } else {
        loggerhub_codec::value::number(&text).expect("a number")
    }
}

/// xorshift: the same queries on every run, so a failure names one.
struct Draw(u64);

impl Draw {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn atom(&mut self) -> String {
        match self.next(3) {
            0 => WORDS[self.next(WORDS.len())].to_string(),
            1 => PHRASES[self.next(PHRASES.len())].to_string(),
            _ => FIELDS[self.next(FIELDS.len())].to_string(),
        }
    }

    fn query(&mut self, depth: usize) -> String {
        if depth == 0 || self.next(3) == 0 {
            let atom = self.atom();
            return if self.next(5) == 0 { format!("-{atom}") } else { atom };
        }
        let parts: Vec<String> = (0..2 + self.next(2)).map(|_| self.query(depth - 1)).collect();
        let joined = match self.next(3) {
            0 => parts.join(" "),
            1 => parts.join(" AND "),
            _ => parts.join(" OR "),
        };
        match self.next(4) {
            0 => format!("NOT ({joined})"),
            1 => format!("({joined})"),
            _ => joined,
        }
    }
}

async fn ids(index: &dyn SearchIndex, tenant: &str, q: &Query) -> BTreeSet<String> {
    let page = index
        .search(tenant, q, &LogFilter::default(), None, 1000, true)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    assert!(page.next_cursor.is_none(), "{q}: more than one page");
    assert_eq!(page.total, page.ids.len() as u64, "{q}: total");
    page.ids.into_iter().collect()
}

/// `a` and `b` must hold nothing of `tenant` yet.
pub async fn run(a: &dyn SearchIndex, b: &dyn SearchIndex, tenant: &str) {
    let recs: Vec<LogRecord> = (0..N).map(|i| record(tenant, i)).collect();
    let rows: Vec<IndexRow<'_>> = recs
        .iter()
        .map(|r| IndexRow {
            record: r,
            may_exist: false,
        })
        .collect();
    for index in [a, b] {
        index.provision(tenant).await.expect("provision");
        let rejected = index.index(tenant, &rows).await.expect("index");
        assert!(rejected.is_empty(), "{rejected:?}");
    }
    let mut draw = Draw(0x9e37_79b9_7f4a_7c15);
    let mut found_some = 0;
    for _ in 0..QUERIES {
        let text = draw.query(3);
        let q = match Query::parse(&text) {
            Ok(q) => q,
            // Past a bound (more than 16 patterns): not this test's
            // question.
            Err(e) if e.message.starts_with("more than") => continue,
            Err(e) => panic!("{text}: {e}"),
        };
        let tail: BTreeSet<String> = recs.iter().filter(|r| q.matches(r)).map(|r| r.id.clone()).collect();
        let (in_a, in_b) = (ids(a, tenant, &q).await, ids(b, tenant, &q).await);
        assert_eq!(in_a, tail, "{text} (read as {q}): first index against the tail");
        assert_eq!(in_b, tail, "{text} (read as {q}): second index against the tail");
        if !tail.is_empty() && tail.len() < N {
            found_some += 1;
        }
    }
    // The draw asks real questions: most find some records and not all.
    assert!(found_some > QUERIES / 3, "only {found_some} queries told records apart");
    for index in [a, b] {
        index.drop_tenant(tenant).await.expect("drop");
    }
}
