//! The `MetadataStore` conformance suite: every implementation must pass it
//! unchanged (host/tests/stores.rs runs it on SQLite and on PostgreSQL).

use super::{SEC, T0, newest_first};
use loggerhub::model::{Cursor, Level, LevelCounts, LogFilter, LogRecord};
use loggerhub::stores::{AccountStore, ApiKey, MetaRow, MetadataStore, Saved, SavedSearch, Stored, TenantState, Usage};

/// Two fresh tenant slugs, unique per run so a suite can share a server.
pub fn fresh_tenants() -> (String, String) {
    let tag = format!("{:08x}", rand_tag());
    (format!("ca_{tag}"), format!("cb_{tag}"))
}

fn rand_tag() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

fn record(tenant: &str, i: usize) -> LogRecord {
    LogRecord {
        id: ulid::Ulid::from_parts(1_760_000_000_000 + i as u64, (i as u128) * 7919).to_string(),
        tenant: tenant.to_string(),
        service: ["billing", "auth", "web"][i % 3].to_string(),
        level: Level::ALL[i % 6],
        // Pairs share a timestamp, so ties are broken by id.
        timestamp: T0 + (i as i64 / 2) * SEC,
        received_at: T0 + 3600 * SEC,
        message: if i == 3 {
            "é".repeat(700)
        } else {
            format!("message {i}")
        },
        full_log: format!("full log {i}"),
        language: i.is_multiple_of(2).then(|| "rust".to_string()),
        attributes: vec![("region".into(), "eu".into()), ("n".into(), i.to_string())],
        raw_path: Some(format!("logs/{tenant}/batch.ndjson#{}", i + 1)),
    }
}

async fn all_pages(store: &dyn MetadataStore, tenant: &str, filter: &LogFilter, limit: usize) -> (u64, Vec<String>) {
    let mut cursor: Option<Cursor> = None;
    let mut ids = Vec::new();
    let mut total = None;
    loop {
        let page = store
            .list_logs(tenant, filter, cursor.as_ref(), limit)
            .await
            .expect("list_logs");
        assert!(page.hits.len() <= limit);
        assert_eq!(
            *total.get_or_insert(page.total),
            page.total,
            "total changed between pages"
        );
        ids.extend(page.hits.into_iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    (total.unwrap_or(0), ids)
}

pub async fn run<S: AccountStore + MetadataStore>(store: &S, a: &str, b: &str) {
    // Tenants.
    assert!(store.create_tenant(a, "free").await.expect("create a"));
    assert!(
        !store.create_tenant(a, "pro").await.expect("create a again"),
        "second create reports new"
    );
    assert!(store.create_tenant(b, "pro").await.expect("create b"));
    let plans = || async {
        let tenants = store.list_tenants().await.expect("list tenants");
        let plan = |slug: &str| tenants.iter().find(|t| t.slug == slug).map(|t| t.plan.clone());
        (plan(a), plan(b))
    };
    // Creating again changes nothing, the plan included.
    assert_eq!(plans().await, (Some("free".into()), Some("pro".into())));
    // A plan change touches the one tenant; an unknown tenant is no change.
    assert!(store.set_plan(a, "enterprise").await.expect("set plan"));
    assert_eq!(plans().await, (Some("enterprise".into()), Some("pro".into())));
    assert!(!store.set_plan("nosuchtenant", "pro").await.expect("set plan"));

    // Keys: stored by hash, listed per tenant, revoked once.
    let key = ApiKey {
        id: format!("k_{a}"),
        tenant: a.to_string(),
        hash: format!("{:0>64}", a),
        scopes: vec!["ingest".into(), "search".into()],
        created_at: T0,
        revoked: false,
    };
    store.insert_key(&key).await.expect("insert key");
    assert_eq!(store.find_key(&key.hash).await.expect("find"), Some(key.clone()));
    assert_eq!(store.find_key("nope").await.expect("find none"), None);
    assert_eq!(store.list_keys(a).await.expect("keys").len(), 1);
    assert!(store.list_keys(b).await.expect("keys of b").is_empty());
    assert!(
        !store.revoke_key(b, &key.id).await.expect("revoke as b"),
        "revoked another tenant's key"
    );
    assert!(store.revoke_key(a, &key.id).await.expect("revoke"));
    assert!(!store.revoke_key(a, &key.id).await.expect("revoke twice"));

    // Saved searches: kept by name, replaced in place, bounded, per tenant.
    let saved = |tenant: &str, name: &str, query: &str, at: i64| SavedSearch {
        tenant: tenant.into(),
        name: name.into(),
        query: query.into(),
        filters: r#"{"level":"error"}"#.into(),
        created_at: at,
        updated_at: at,
    };
    assert_eq!(
        store
            .put_saved_search(&saved(a, "errors", "level:error", 1), 2)
            .await
            .expect("save"),
        Saved::Created
    );
    assert_eq!(
        store
            .put_saved_search(&saved(a, "billing", "service:billing", 2), 2)
            .await
            .expect("save"),
        Saved::Created
    );
    assert_eq!(
        store
            .put_saved_search(&saved(a, "third", "x", 3), 2)
            .await
            .expect("save"),
        Saved::Full
    );
    assert_eq!(
        store
            .put_saved_search(&saved(a, "errors", "level:fatal", 4), 2)
            .await
            .expect("save"),
        Saved::Replaced
    );
    assert_eq!(
        store
            .put_saved_search(&saved(b, "errors", "b's own", 5), 2)
            .await
            .expect("save b"),
        Saved::Created
    );
    let listed = store.list_saved_searches(a).await.expect("list");
    assert_eq!(
        listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["billing", "errors"]
    );
    let errors = store.get_saved_search(a, "errors").await.expect("get").expect("there");
    assert_eq!(
        (errors.query.as_str(), errors.created_at, errors.updated_at),
        ("level:fatal", 1, 4)
    );
    assert_eq!(errors.filters, r#"{"level":"error"}"#);
    assert_eq!(
        store.get_saved_search(b, "billing").await.expect("get"),
        None,
        "another tenant's"
    );
    assert!(
        !store.delete_saved_search(b, "billing").await.expect("delete as b"),
        "deleted another tenant's"
    );
    assert!(store.delete_saved_search(a, "billing").await.expect("delete"));
    assert!(!store.delete_saved_search(a, "billing").await.expect("delete twice"));
    assert_eq!(store.list_saved_searches(b).await.expect("list b")[0].query, "b's own");
    assert!(
        store
            .find_key(&key.hash)
            .await
            .expect("find revoked")
            .is_some_and(|k| k.revoked)
    );

    // Inserts are idempotent by id.
    let recs_a: Vec<LogRecord> = (0..25).map(|i| record(a, i)).collect();
    let recs_b: Vec<LogRecord> = (0..5).map(|i| record(b, 100 + i)).collect();
    let rows = |v: &[LogRecord]| -> Vec<LogRecord> { v.to_vec() };
    let a_rows = rows(&recs_a);
    let meta: Vec<MetaRow<'_>> = a_rows
        .iter()
        .map(|r| MetaRow {
            record: r,
            indexed: true,
            may_exist: false,
        })
        .collect();
    assert_eq!(store.insert_logs(&meta).await.expect("insert"), 25);
    assert_eq!(
        store.insert_logs(&meta[..10]).await.expect("replay"),
        0,
        "a replay inserted rows"
    );
    let b_meta: Vec<MetaRow<'_>> = recs_b
        .iter()
        .map(|r| MetaRow {
            record: r,
            indexed: false,
            may_exist: false,
        })
        .collect();
    assert_eq!(store.insert_logs(&b_meta).await.expect("insert b"), 5);

    // Order, pagination, exact totals.
    let none = LogFilter::default();
    let (total, ids) = all_pages(store, a, &none, 7).await;
    assert_eq!(total, 25);
    assert_eq!(
        ids,
        newest_first(recs_a.clone()),
        "pages are not newest first by (timestamp, id)"
    );

    // Fields round-trip; the message is cut to 500 characters.
    let page = store.list_logs(a, &none, None, 1000).await.expect("list");
    let got = page.hits.iter().find(|r| r.id == recs_a[3].id).expect("record 3");
    assert_eq!(got.message.chars().count(), 500);
    let got = page.hits.iter().find(|r| r.id == recs_a[4].id).expect("record 4");
    let want = &recs_a[4];
    assert_eq!(
        (&got.tenant, &got.service, got.level, got.timestamp, got.received_at),
        (
            &want.tenant,
            &want.service,
            want.level,
            want.timestamp,
            want.received_at
        )
    );
    assert_eq!(
        (&got.message, &got.language, &got.raw_path),
        (&want.message, &want.language, &want.raw_path)
    );
    let mut attrs = got.attributes.clone();
    attrs.sort();
    assert_eq!(
        attrs,
        vec![
            ("n".to_string(), "4".to_string()),
            ("region".to_string(), "eu".to_string())
        ]
    );

    // Filters.
    let cases = [
        LogFilter {
            service: Some("auth".into()),
            ..LogFilter::default()
        },
        LogFilter {
            level: Some(Level::Error),
            ..LogFilter::default()
        },
        LogFilter {
            from: Some(T0 + 3 * SEC),
            to: Some(T0 + 8 * SEC),
            ..LogFilter::default()
        },
        LogFilter {
            service: Some("web".into()),
            from: Some(T0 + 2 * SEC),
            ..LogFilter::default()
        },
    ];
    for f in &cases {
        let want: Vec<LogRecord> = recs_a
            .iter()
            .filter(|r| f.service.as_ref().is_none_or(|s| *s == r.service))
            .filter(|r| f.level.is_none_or(|l| l == r.level))
            .filter(|r| f.from.is_none_or(|t| r.timestamp >= t))
            .filter(|r| f.to.is_none_or(|t| r.timestamp < t))
            .cloned()
            .collect();
        let (total, ids) = all_pages(store, a, f, 3).await;
        assert_eq!(total as usize, want.len(), "{f:?}");
        assert_eq!(ids, newest_first(want), "{f:?}");
    }

    // Tenant isolation.
    let (total_b, ids_b) = all_pages(store, b, &none, 100).await;
    assert_eq!(total_b, 5);
    assert!(ids_b.iter().all(|id| recs_b.iter().any(|r| &r.id == id)));
    let asked: Vec<String> = vec![
        recs_a[0].id.clone(),
        recs_b[0].id.clone(),
        "01ZZZZZZZZZZZZZZZZZZZZZZZZ".into(),
    ];
    let got = store.get_logs(a, &asked).await.expect("get_logs");
    assert_eq!(got.len(), 1, "get_logs crossed tenants or invented records");
    assert_eq!(got[0].id, recs_a[0].id);

    // Stats.
    let stats = store.stats(a, &none, 10 * SEC).await.expect("stats");
    assert_eq!(stats.total, 25);
    let errors = stats.by_level.iter().find(|(l, _)| *l == Level::Error).map(|(_, n)| *n);
    assert_eq!(
        errors,
        Some(recs_a.iter().filter(|r| r.level == Level::Error).count() as u64)
    );
    assert_eq!(stats.by_service.iter().map(|(_, n)| n).sum::<u64>(), 25);
    assert_eq!(stats.by_service[0].1, 9, "services are not ordered by count");
    // Timestamps T0 .. T0+12s in 10 s buckets (T0 is a multiple of 10 s).
    let totals: Vec<(i64, u64)> = stats.histogram.iter().map(|(b, c)| (*b, c.total())).collect();
    assert_eq!(totals, vec![(T0, 20), (T0 + 10 * SEC, 5)]);
    let errors_in_buckets: u64 = stats.histogram.iter().map(|(_, c)| c.0[Level::Error as usize]).sum();
    assert_eq!(
        Some(errors_in_buckets),
        errors,
        "the histogram's levels add up to the level counts"
    );
    let filtered = store
        .stats(
            a,
            &LogFilter {
                service: Some("billing".into()),
                ..LogFilter::default()
            },
            10 * SEC,
        )
        .await
        .expect("stats filtered");
    assert_eq!(filtered.total, 9);

    lifecycle(store, a, b, &recs_a).await;
    store.ping().await.expect("ping");
}

/// States, retention, usage and a tenant's purge, each confined to its
/// tenant. Runs last: it deletes `a`.
async fn lifecycle<S: AccountStore + MetadataStore>(store: &S, a: &str, b: &str, recs_a: &[LogRecord]) {
    let state = |slug: &str| {
        let slug = slug.to_string();
        async move {
            store
                .get_tenant(&slug)
                .await
                .expect("get")
                .map(|t| (t.state, t.state_since > 0))
        }
    };
    assert_eq!(state(a).await, Some((TenantState::Active, false)));
    assert!(store.set_state(a, TenantState::Suspended).await.expect("suspend"));
    assert_eq!(state(a).await, Some((TenantState::Suspended, true)));
    assert_eq!(state(b).await, Some((TenantState::Active, false)));
    assert!(
        !store
            .set_state("nosuchtenant", TenantState::Active)
            .await
            .expect("no tenant")
    );

    // Retention: oldest first, bounded, one tenant.
    let b_before = store.stats(b, &LogFilter::default(), SEC).await.expect("stats b").total;
    let cutoff = T0 + 5 * SEC; // records 0..=9 are older
    assert_eq!(store.delete_logs_before(a, cutoff, 4).await.expect("delete"), 4);
    assert_eq!(store.delete_logs_before(a, cutoff, 100).await.expect("delete"), 6);
    assert_eq!(store.delete_logs_before(a, cutoff, 100).await.expect("delete"), 0);
    let left = store.stats(a, &LogFilter::default(), SEC).await.expect("stats");
    assert_eq!(
        left.total,
        recs_a.iter().filter(|r| r.timestamp >= cutoff).count() as u64
    );
    assert_eq!(
        store.stats(b, &LogFilter::default(), SEC).await.expect("stats b").total,
        b_before
    );
    assert_eq!(
        store
            .delete_logs_before("nosuchtenant", cutoff, 10)
            .await
            .expect("no tenant"),
        0
    );
    assert!(store.stored_bytes(a).await.expect("stored") > 0);

    // Usage adds up per (tenant, day); the stored figure is the last one.
    let used = |logs, bytes| Usage {
        logs,
        bytes,
        plugin_cpu_us: 7,
        dead_letters: 1,
        stored_logs: logs * 2,
        stored_bytes: bytes * 3,
    };
    store
        .add_usage(&[
            (a.to_string(), 20_000, used(10, 100)),
            (b.to_string(), 20_000, used(1, 1)),
        ])
        .await
        .expect("usage");
    store
        .add_usage(&[(a.to_string(), 20_000, used(5, 50))])
        .await
        .expect("usage");
    store
        .add_usage(&[(a.to_string(), 20_001, used(1, 2))])
        .await
        .expect("usage");
    let stored = Stored {
        metadata: 1,
        raw: 2,
        index: 3,
    };
    store
        .set_stored(a, 20_001, Stored { metadata: 9, ..stored })
        .await
        .expect("stored");
    store.set_stored(a, 20_001, stored).await.expect("stored");
    let days = store.usage(a, 20_000).await.expect("usage");
    assert_eq!(days.len(), 2);
    assert_eq!((days[0].day, days[0].used.logs, days[0].used.bytes), (20_000, 15, 150));
    assert_eq!((days[0].used.plugin_cpu_us, days[0].used.dead_letters), (14, 2));
    assert_eq!((days[0].used.stored_logs, days[0].used.stored_bytes), (30, 450));
    assert_eq!((days[1].used.logs, days[1].stored), (1, Some(stored)));
    assert_eq!(store.usage(a, 20_001).await.expect("usage").len(), 1);
    assert_eq!(store.usage(b, 0).await.expect("usage")[0].used.logs, 1);

    // Purge: records, keys, usage and the tenant itself; b keeps all.
    assert!(store.set_state(a, TenantState::Deleting).await.expect("deleting"));
    while !store.purge_tenant(a, 3).await.expect("purge") {}
    assert_eq!(store.get_tenant(a).await.expect("get"), None);
    assert!(store.list_keys(a).await.expect("keys").is_empty());
    assert!(store.list_saved_searches(a).await.expect("saved").is_empty());
    assert_eq!(store.list_saved_searches(b).await.expect("saved of b").len(), 1);
    assert!(store.usage(a, 0).await.expect("usage").is_empty());
    assert!(store.get_tenant(b).await.expect("get").is_some());
    assert_eq!(
        store.stats(b, &LogFilter::default(), SEC).await.expect("stats b").total,
        b_before
    );
    assert_eq!(store.usage(b, 0).await.expect("usage").len(), 1);
    // The slug is free again, and empty.
    assert!(store.create_tenant(a, "free").await.expect("create again"));
    assert_eq!(
        store.stats(a, &LogFilter::default(), SEC).await.expect("stats").total,
        0
    );
}

/// Counts (stats and exact totals) come from rollups kept at write time:
/// they must equal counting the rows, for any range and interval, after a
/// replay of the same rows and after retention deletes; a page's total
/// stops at the bound and says so.
pub async fn counts<S: AccountStore + MetadataStore>(store: &S, tenant: &str) {
    assert!(store.create_tenant(tenant, "free").await.expect("create"));
    const MIN: i64 = 60 * SEC;
    const HOUR: i64 = 60 * MIN;
    // Spread over a day and a half, on and off bucket edges.
    let base = T0 - T0.rem_euclid(86_400 * SEC);
    let recs: Vec<LogRecord> = (0..3000)
        .map(|i| {
            let mut r = record(tenant, i);
            r.timestamp = base + (i as i64 * 37 * SEC) % (36 * HOUR) + (i as i64 % 7) * 1_000;
            r.service = ["billing", "auth", "web", "db"][i % 4].to_string();
            r
        })
        .collect();
    assert_eq!(insert_all(store, &recs[..2000]).await, 2000);
    // A replay overlapping what is stored counts nothing twice.
    assert_eq!(insert_all(store, &recs[1500..]).await, 1000);
    assert_eq!(insert_all(store, &recs).await, 0);

    let naive = |rs: &[LogRecord], f: &LogFilter, interval: i64| {
        let mut s = loggerhub::model::Stats::default();
        let mut levels = std::collections::BTreeMap::new();
        let mut services = std::collections::BTreeMap::<String, u64>::new();
        let mut buckets = std::collections::BTreeMap::new();
        for r in rs.iter().filter(|r| {
            f.service.as_ref().is_none_or(|s| r.service == *s)
                && f.level.is_none_or(|l| r.level == l)
                && f.from.is_none_or(|t| r.timestamp >= t)
                && f.to.is_none_or(|t| r.timestamp < t)
        }) {
            s.total += 1;
            *levels.entry(r.level as u8).or_insert(0u64) += 1;
            *services.entry(r.service.clone()).or_default() += 1;
            buckets
                .entry(r.timestamp - r.timestamp.rem_euclid(interval))
                .or_insert_with(LevelCounts::default)
                .0[r.level as usize] += 1;
        }
        s.by_level = levels
            .into_iter()
            .filter_map(|(l, n)| Level::from_u8(l).map(|l| (l, n)))
            .collect();
        let mut by_service: Vec<(String, u64)> = services.into_iter().collect();
        by_service.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        s.by_service = by_service;
        s.histogram = buckets.into_iter().collect();
        s
    };
    let check = |rs: Vec<LogRecord>, when: &'static str| async move {
        let filters = [
            LogFilter::default(),
            LogFilter {
                from: Some(base + 90 * MIN + 17 * SEC + 3),
                to: Some(base + 30 * HOUR + 59 * SEC),
                ..LogFilter::default()
            },
            LogFilter {
                service: Some("web".into()),
                level: Some(Level::Error),
                from: Some(base + 3 * HOUR),
                ..LogFilter::default()
            },
            LogFilter {
                from: Some(base + 10 * MIN + 1),
                to: Some(base + 10 * MIN + 40 * SEC),
                ..LogFilter::default()
            },
        ];
        for f in &filters {
            for interval in [30 * SEC, MIN, 5 * MIN, HOUR, 3 * HOUR, 24 * HOUR] {
                let got = store.stats(tenant, f, interval).await.expect("stats");
                let mut want = naive(&rs, f, interval);
                want.by_level.sort();
                let mut got_levels = got.by_level.clone();
                got_levels.sort();
                assert_eq!(
                    (got.total, got_levels, &got.by_service, &got.histogram),
                    (want.total, want.by_level, &want.by_service, &want.histogram),
                    "{when}: stats of {f:?} by {interval} ns"
                );
            }
        }
    };
    check(recs.clone(), "after a replay").await;

    // Retention deletes take their counts with them, a cut mid-minute.
    let cut = base + 7 * HOUR + 30 * SEC + 500;
    let mut deleted = 0;
    loop {
        let n = store.delete_logs_before(tenant, cut, 400).await.expect("delete");
        if n == 0 {
            break;
        }
        deleted += n;
    }
    let left: Vec<LogRecord> = recs.iter().filter(|r| r.timestamp >= cut).cloned().collect();
    assert_eq!(deleted as usize, recs.len() - left.len());
    check(left.clone(), "after retention").await;

    // Past the bound, a page's total says "at least"; the rollups still
    // count exactly.
    let many: Vec<LogRecord> = (0..loggerhub::model::TOTAL_BOUND as usize + 50)
        .map(|i| {
            let mut r = record(tenant, 10_000 + i);
            r.timestamp = base + 40 * HOUR + i as i64;
            r
        })
        .collect();
    insert_all(store, &many).await;
    let page = store
        .list_logs(tenant, &LogFilter::default(), None, 10)
        .await
        .expect("list");
    assert_eq!((page.total, page.total_exact), (loggerhub::model::TOTAL_BOUND, false));
    let few = LogFilter {
        service: Some("db".into()),
        to: Some(base + 40 * HOUR),
        ..LogFilter::default()
    };
    let page = store.list_logs(tenant, &few, None, 10).await.expect("list");
    let exact = left.iter().filter(|r| r.service == "db").count() as u64;
    assert_eq!((page.total, page.total_exact), (exact, true));
    let all = store.stats(tenant, &LogFilter::default(), HOUR).await.expect("stats");
    assert_eq!(all.total, (left.len() + many.len()) as u64);
}

async fn insert_all(store: &dyn MetadataStore, rs: &[LogRecord]) -> u64 {
    let rows: Vec<MetaRow<'_>> = rs
        .iter()
        .map(|r| MetaRow {
            record: r,
            indexed: true,
            may_exist: false,
        })
        .collect();
    store.insert_logs(&rows).await.expect("insert")
}
