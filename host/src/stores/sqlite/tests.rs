//! The SQLite store's own tests (the conformance suite is in tests/it).

use super::*;

/// A stats span's edge reads the time index (the plan SQLite makes
/// without it scans every row of the tenant): each of its three
/// queries, as the store builds them.
#[tokio::test]
async fn a_stats_edge_reads_the_time_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("meta.db")).await.expect("open");
    let hour = crate::stores::sql::HOUR_NS;
    for (span, indexed) in [
        (
            sql::Span {
                grain: None,
                from: Some(hour + 5),
                to: Some(hour + 60_000_000_000),
            },
            true,
        ),
        (
            sql::Span {
                grain: None,
                from: Some(0),
                to: Some(30 * hour),
            },
            false,
        ),
        (
            sql::Span {
                grain: None,
                from: None,
                to: Some(hour),
            },
            false,
        ),
    ] {
        let table = logs::raw_table(&span);
        assert_eq!(table.contains("INDEXED BY"), indexed, "{span:?}");
        if !indexed {
            continue;
        }
        for (head, tail) in span.stats_queries(table, "log_counts", "level", hour) {
            let q =
                format!("EXPLAIN QUERY PLAN {head} WHERE tenant = 'acme' AND timestamp >= 0 AND timestamp < 9{tail}");
            let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(q.clone()))
                .fetch_all(&store.pool)
                .await
                .expect("plan");
            assert!(
                plan.iter().any(|(_, _, _, d)| d.contains("logs_by_time")),
                "{q}: {plan:?}"
            );
        }
    }
}

/// A database made before tenants had plans gains the column on open,
/// with every tenant on the default plan; opening again changes nothing.
#[tokio::test]
async fn a_database_from_before_plans_gains_the_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.db");
    let opts = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let old = SqlitePool::connect_with(opts).await.expect("old db");
    sqlx::raw_sql(
        "CREATE TABLE tenants (slug TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
         INSERT INTO tenants VALUES ('acme', 1);",
    )
    .execute(&old)
    .await
    .expect("old schema");
    old.close().await;

    let store = SqliteStore::open(&path).await.expect("open");
    let tenants = store.list_tenants().await.expect("list");
    assert_eq!(
        tenants,
        vec![Tenant {
            slug: "acme".into(),
            created_at: 1,
            plan: "free".into(),
            state: TenantState::Active,
            state_since: 0,
        }]
    );
    assert!(store.set_plan("acme", "pro").await.expect("set plan"));
    drop(store);
    let store = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(store.list_tenants().await.expect("list")[0].plan, "pro");
}

fn record(tenant: &str, i: u64) -> crate::model::LogRecord {
    crate::model::LogRecord {
        id: ulid::Ulid::from_parts(1_700_000_000_000 + i, 7).to_string(),
        tenant: tenant.into(),
        service: "web".into(),
        level: crate::model::Level::Info,
        timestamp: 1_700_000_000_000_000_000 + i as i64,
        received_at: 1_700_000_000_000_000_000,
        message: format!("record {i}"),
        full_log: String::new(),
        language: None,
        attributes: Vec::new(),
        raw_path: None,
    }
}

fn meta<'a>(
    rs: impl IntoIterator<Item = &'a crate::model::LogRecord>,
    may_exist: bool,
) -> Vec<crate::stores::MetaRow<'a>> {
    rs.into_iter()
        .map(|record| crate::stores::MetaRow {
            record,
            indexed: true,
            may_exist,
        })
        .collect()
}

/// An id twice in one call, two tenants in one call, and a redelivery
/// (`may_exist`) that is half new: each new row counted once, in its
/// own tenant.
#[tokio::test]
async fn every_new_row_counts_once_whatever_a_call_holds() {
    use crate::model::LogFilter;
    use crate::stores::MetadataStore;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("meta.db")).await.expect("open");
    let acme: Vec<_> = (0..12).map(|i| record("acme", i)).collect();
    let other: Vec<_> = (100..103).map(|i| record("other", i)).collect();
    let call = meta(acme[..10].iter().chain(&acme[5..10]).chain(&other), false);
    assert_eq!(store.insert_logs(&call).await.expect("insert"), 13);
    assert_eq!(store.insert_logs(&meta(&acme, true)).await.expect("replay"), 2);
    for (tenant, n) in [("acme", 12), ("other", 3)] {
        let stats = store
            .stats(tenant, &LogFilter::default(), 60_000_000_000)
            .await
            .expect("stats");
        let page = store
            .list_logs(tenant, &LogFilter::default(), None, 100)
            .await
            .expect("list");
        assert_eq!((stats.total, page.hits.len()), (n, n as usize), "{tenant}");
    }
}

/// The bundled SQLite is built with the options `.cargo/config.toml`
/// gives it: a build from outside the workspace would lose them
/// silently (and a third of the metadata writer's speed).
#[tokio::test]
async fn sqlite_is_built_with_the_workspace_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("meta.db")).await.expect("open");
    let options: Vec<String> = sqlx::query_scalar("SELECT compile_options FROM pragma_compile_options")
        .fetch_all(&store.pool)
        .await
        .expect("options");
    for want in ["DEFAULT_MEMSTATUS=0", "STMTJRNL_SPILL=67108864"] {
        assert!(options.iter().any(|o| o == want), "{want} not in {options:?}");
    }
    assert!(store.rowid, "a new database's logs table has rowids");
}

/// A database whose `logs` was made `WITHOUT ROWID` (before 2026-12-07)
/// keeps its layout and works as a new one: inserts, a replay that
/// overlaps them, counts and pages.
#[tokio::test]
async fn a_database_with_the_old_log_table_keeps_working() {
    use crate::model::{LogFilter, LogRecord};
    use crate::stores::MetadataStore;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.db");
    let opts = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let old = SqlitePool::connect_with(opts).await.expect("old db");
    sqlx::raw_sql(
        "CREATE TABLE logs (tenant TEXT NOT NULL, id TEXT NOT NULL, id_key BLOB NOT NULL, \
         service TEXT NOT NULL, level INTEGER NOT NULL, timestamp INTEGER NOT NULL, \
         received_at INTEGER NOT NULL, message TEXT NOT NULL, language TEXT, attributes TEXT NOT NULL, \
         raw_path TEXT, indexed INTEGER NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;",
    )
    .execute(&old)
    .await
    .expect("old schema");
    old.close().await;

    let store = SqliteStore::open(&path).await.expect("open");
    assert!(!store.rowid);
    let records: Vec<LogRecord> = (0..3000).map(|i| record("acme", i)).collect();
    assert_eq!(
        store.insert_logs(&meta(&records[..2000], false)).await.expect("insert"),
        2000
    );
    assert_eq!(
        store.insert_logs(&meta(&records[1500..], false)).await.expect("replay"),
        1000
    );
    let page = store
        .list_logs("acme", &LogFilter::default(), None, 5)
        .await
        .expect("list");
    assert_eq!((page.total, page.hits[0].message.as_str()), (3000, "record 2999"));
    let stats = store
        .stats("acme", &LogFilter::default(), 60_000_000_000)
        .await
        .expect("stats");
    assert_eq!(stats.total, 3000);
    let cut = records[1000].timestamp;
    assert_eq!(
        store.delete_logs_before("acme", cut, 5000).await.expect("retention"),
        1000
    );
    let stats = store
        .stats("acme", &LogFilter::default(), 60_000_000_000)
        .await
        .expect("stats");
    assert_eq!(stats.total, 2000);
    let layout: String = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'logs'")
        .fetch_one(&store.pool)
        .await
        .expect("layout");
    assert!(layout.contains("WITHOUT ROWID"), "{layout}");
}
