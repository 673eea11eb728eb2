//! The embedded metadata store: one SQLite database in the data dir, with a
//! `tenant` column on every table (DESIGN §1).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, QueryBuilder, Row, Sqlite};

use super::accounts::{self, Accounts, Scopes, Statements};
use super::sql::{self, id_key};
use super::{ApiKey, MetaRow, MetadataStore, Stored, Tenant, TenantState, Usage, UsageDay};
use crate::error::BackendError;
use crate::model::{self, Cursor, Level, LogFilter, LogRecord, Page, Stats};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tenants (
    slug        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    plan        TEXT NOT NULL DEFAULT 'free',
    state       TEXT NOT NULL DEFAULT 'active',
    state_since INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS api_keys (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL REFERENCES tenants (slug),
    hash        TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE TABLE IF NOT EXISTS logs (
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    id_key      BLOB NOT NULL,
    service     TEXT NOT NULL,
    level       INTEGER NOT NULL,
    timestamp   INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    message     TEXT NOT NULL,
    language    TEXT,
    attributes  TEXT NOT NULL,
    raw_path    TEXT,
    indexed     INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_by_time ON logs (tenant, timestamp DESC, id_key DESC);
CREATE INDEX IF NOT EXISTS logs_by_service ON logs (tenant, service, timestamp DESC, id_key DESC);
-- A level's page and its bounded count read this index alone (PostgreSQL's
-- tenant schema has the same); without it, counting a day's errors
-- looked up every row of the day in the table: 250 ms at 10M logs.
CREATE INDEX IF NOT EXISTS logs_by_level ON logs (tenant, level, timestamp DESC, id_key DESC);
CREATE TABLE IF NOT EXISTS usage (
    tenant          TEXT NOT NULL,
    day             INTEGER NOT NULL,
    logs            INTEGER NOT NULL DEFAULT 0,
    bytes           INTEGER NOT NULL DEFAULT 0,
    plugin_cpu_us   INTEGER NOT NULL DEFAULT 0,
    dead_letters    INTEGER NOT NULL DEFAULT 0,
    stored_logs     INTEGER NOT NULL DEFAULT 0,
    stored_bytes    INTEGER NOT NULL DEFAULT 0,
    metadata_bytes  INTEGER,
    raw_bytes       INTEGER,
    index_bytes     INTEGER,
    PRIMARY KEY (tenant, day)
) WITHOUT ROWID;
-- No per-level index: it cost ~10 % of ingest throughput (docs/PERFORMANCE.md);
-- level filters walk logs_by_time.
-- Counts per minute and per hour (`grain`, ns) by service and level, kept
-- with every insert and delete of `logs`: stats and exact totals read
-- these instead of the rows (stores::sql::spans).
CREATE TABLE IF NOT EXISTS log_counts (
    tenant  TEXT NOT NULL,
    grain   INTEGER NOT NULL,
    bucket  INTEGER NOT NULL,
    service TEXT NOT NULL,
    level   INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (tenant, grain, bucket, service, level)
) WITHOUT ROWID;

"#;

/// Columns tables gained after their first version: table, column, DDL.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    (
        "tenants",
        "plan",
        "ALTER TABLE tenants ADD COLUMN plan TEXT NOT NULL DEFAULT 'free'",
    ),
    (
        "tenants",
        "state",
        "ALTER TABLE tenants ADD COLUMN state TEXT NOT NULL DEFAULT 'active'",
    ),
    (
        "tenants",
        "state_since",
        "ALTER TABLE tenants ADD COLUMN state_since INTEGER NOT NULL DEFAULT 0",
    ),
    (
        "usage",
        "stored_logs",
        "ALTER TABLE usage ADD COLUMN stored_logs INTEGER NOT NULL DEFAULT 0",
    ),
    (
        "usage",
        "stored_bytes",
        "ALTER TABLE usage ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0",
    ),
];

/// Rows per INSERT statement: 12 bound values each, under SQLite's limit of
/// 32766 parameters.
const INSERT_CHUNK: usize = 2000;

pub struct SqliteStore {
    pool: SqlitePool,
    accounts: Accounts<Sqlite, String>,
}

static ACCOUNTS: Statements = accounts::statements!("");

impl SqliteStore {
    pub async fn open(path: &Path) -> Result<SqliteStore, BackendError> {
        // The file's folder is made as the data dir is; the path is given as
        // a path, never re-read as a URL (a `?` or `%` in it stays a name).
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| BackendError::io(crate::error::Backend::Metadata, e))?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed batch survives power loss, since the queue
            // entry is acked right after.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            // 64 MiB of page cache: the three B-trees of `logs` are updated on
            // every insert and thrash the 2 MiB default.
            .pragma("cache_size", "-65536")
            .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        let had_counts: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'log_counts'")
                .fetch_one(&pool)
                .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        if had_counts == 0 {
            // A database from before the rollups: count what it holds, once.
            for g in sql::GRAINS {
                sqlx::query(
                    "INSERT INTO log_counts (tenant, grain, bucket, service, level, n) \
                     SELECT tenant, ?1, timestamp - (((timestamp % ?1) + ?1) % ?1) AS b, service, level, COUNT(*) \
                     FROM logs GROUP BY tenant, b, service, level",
                )
                .bind(g)
                .execute(&pool)
                .await?;
            }
        }
        // A database made before tenants had plans and states (issue 11),
        // or usage its stored counts (issue 22).
        for (table, column, ddl) in ADDED_COLUMNS {
            let has: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?")
                .bind(table)
                .bind(column)
                .fetch_one(&pool)
                .await?;
            if has == 0 {
                sqlx::raw_sql(*ddl).execute(&pool).await?;
            }
        }
        Ok(SqliteStore {
            accounts: Accounts::new(pool.clone(), &ACCOUNTS),
            pool,
        })
    }
}

fn push_filters(qb: &mut QueryBuilder<Sqlite>, tenant: &str, f: &LogFilter) {
    push_span_filters(qb, tenant, f, None, "timestamp");
}

/// Filters of a stats span: over a rollup's grain by bucket, over the logs
/// by timestamp.
fn push_span_filters(qb: &mut QueryBuilder<Sqlite>, tenant: &str, f: &LogFilter, grain: Option<i64>, time: &str) {
    qb.push(" WHERE tenant = ").push_bind(tenant.to_string());
    if let Some(g) = grain {
        qb.push(" AND grain = ").push_bind(g);
    }
    if let Some(s) = &f.service {
        qb.push(" AND service = ").push_bind(s.clone());
    }
    if let Some(l) = f.level {
        qb.push(" AND level = ").push_bind(l as i64);
    }
    if let Some(from) = f.from {
        qb.push(format!(" AND {time} >= ")).push_bind(from);
    }
    if let Some(to) = f.to {
        qb.push(format!(" AND {time} < ")).push_bind(to);
    }
}

/// What the rows an insert (`sign` 1) or a delete (-1) returned change in
/// the rollups.
fn deltas_of(rows: &[sqlx::sqlite::SqliteRow], sign: i64) -> Result<sql::Deltas, BackendError> {
    let logged = rows
        .iter()
        .map(|row| {
            Ok(sql::LoggedRow {
                tenant: row.try_get("tenant")?,
                timestamp: row.try_get("timestamp")?,
                service: row.try_get("service")?,
                level: row.try_get("level")?,
            })
        })
        .collect::<Result<Vec<_>, BackendError>>()?;
    Ok(sql::rollup_deltas(&logged, sign))
}

/// Adds `deltas` to the rollups, in key order.
async fn add_counts(tx: &mut sqlx::SqliteConnection, deltas: &sql::Deltas) -> Result<(), BackendError> {
    let rows: Vec<_> = deltas.iter().collect();
    // 6 bound values a row.
    for chunk in rows.chunks(5000) {
        let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO log_counts (tenant, grain, bucket, service, level, n) ");
        qb.push_values(chunk, |mut b, ((t, g, bucket, s, l), n)| {
            b.push_bind(t.clone())
                .push_bind(*g)
                .push_bind(*bucket)
                .push_bind(s.clone())
                .push_bind(*l)
                .push_bind(**n);
        });
        qb.push(" ON CONFLICT (tenant, grain, bucket, service, level) DO UPDATE SET n = n + excluded.n");
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

fn row_to_record(row: &sqlx::sqlite::SqliteRow) -> Result<LogRecord, BackendError> {
    let level: i64 = row.try_get("level")?;
    let attrs: String = row.try_get("attributes")?;
    Ok(LogRecord {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        service: row.try_get("service")?,
        level: u8::try_from(level).ok().and_then(Level::from_u8).unwrap_or_default(),
        timestamp: row.try_get("timestamp")?,
        received_at: row.try_get("received_at")?,
        message: row.try_get("message")?,
        full_log: String::new(),
        language: row.try_get("language")?,
        attributes: sql::attributes_from_json(&attrs)?,
        raw_path: row.try_get("raw_path")?,
    })
}

const COLUMNS: &str = "tenant, id, service, level, timestamp, received_at, message, language, attributes, raw_path";

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn create_tenant(&self, slug: &str, plan: &str) -> Result<bool, BackendError> {
        let r = sqlx::query("INSERT INTO tenants (slug, created_at, plan) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(slug)
            .bind(model::now_ns())
            .bind(plan)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_state(&self, slug: &str, state: TenantState) -> Result<bool, BackendError> {
        self.accounts.set_state(slug, state).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, BackendError> {
        self.accounts.list_tenants().await
    }

    async fn get_tenant(&self, slug: &str) -> Result<Option<Tenant>, BackendError> {
        self.accounts.get_tenant(slug).await
    }

    async fn set_plan(&self, slug: &str, plan: &str) -> Result<bool, BackendError> {
        self.accounts.set_plan(slug, plan).await
    }

    async fn insert_key(&self, key: &ApiKey) -> Result<(), BackendError> {
        self.accounts.insert_key(key).await
    }

    async fn find_key(&self, hash: &str) -> Result<Option<ApiKey>, BackendError> {
        self.accounts.find_key(hash).await
    }

    async fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, BackendError> {
        self.accounts.list_keys(tenant).await
    }

    async fn revoke_key(&self, tenant: &str, id: &str) -> Result<bool, BackendError> {
        self.accounts.revoke_key(tenant, id).await
    }

    async fn insert_logs(&self, rows: &[MetaRow<'_>]) -> Result<u64, BackendError> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO logs (tenant, id, id_key, service, level, timestamp, received_at, message, language, attributes, raw_path, indexed) ",
            );
            qb.push_values(chunk, |mut b, row| {
                let r = row.record;
                b.push_bind(r.tenant.clone())
                    .push_bind(r.id.clone())
                    .push_bind(id_key(&r.id))
                    .push_bind(r.service.clone())
                    .push_bind(r.level as i64)
                    .push_bind(r.timestamp)
                    .push_bind(r.received_at)
                    .push_bind(model::preview(&r.message).to_string())
                    .push_bind(r.language.clone())
                    .push_bind(sql::attributes_json(&r.attributes))
                    .push_bind(r.raw_path.clone())
                    .push_bind(row.indexed);
            });
            // Only the rows new to the store come back: a replay counts
            // nothing twice.
            qb.push(" ON CONFLICT (tenant, id) DO NOTHING RETURNING tenant, timestamp, service, level");
            let rows = qb.build().fetch_all(&mut *tx).await?;
            inserted += rows.len() as u64;
            add_counts(&mut tx, &deltas_of(&rows, 1)?).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn list_logs(
        &self,
        tenant: &str,
        filter: &LogFilter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, BackendError> {
        // Counted up to the bound: past it the count says "at least".
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM (SELECT 1 FROM logs");
        push_filters(&mut count, tenant, filter);
        count.push(" LIMIT ").push_bind(model::TOTAL_BOUND as i64 + 1).push(")");
        let total: i64 = count.build().fetch_one(&self.pool).await?.try_get(0)?;

        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM logs"));
        push_filters(&mut qb, tenant, filter);
        if let Some(c) = cursor {
            qb.push(" AND (timestamp < ")
                .push_bind(c.timestamp)
                .push(" OR (timestamp = ")
                .push_bind(c.timestamp)
                .push(" AND id_key < ")
                .push_bind(id_key(&c.id))
                .push("))");
        }
        qb.push(" ORDER BY timestamp DESC, id_key DESC LIMIT ")
            .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
        let rows = qb.build().fetch_all(&self.pool).await?;
        let hits = rows.iter().map(row_to_record).collect::<Result<Vec<_>, _>>()?;
        Ok(sql::page(hits, total, limit))
    }

    async fn get_logs(&self, tenant: &str, ids: &[String]) -> Result<Vec<LogRecord>, BackendError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM logs WHERE tenant = "));
            qb.push_bind(tenant.to_string()).push(" AND id IN (");
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            qb.push(")");
            for row in qb.build().fetch_all(&self.pool).await? {
                out.push(row_to_record(&row)?);
            }
        }
        Ok(out)
    }

    async fn stats(&self, tenant: &str, filter: &LogFilter, interval_ns: i64) -> Result<Stats, BackendError> {
        let interval = interval_ns.max(1);
        let mut sum = sql::StatsSum::default();
        for span in sql::spans(filter.from, filter.to, interval) {
            let f = span.filter(filter);
            let [levels, services, buckets] = span.stats_queries("logs", "log_counts", "level", interval);
            let query = |(head, tail): &(String, String)| {
                let mut qb = QueryBuilder::<Sqlite>::new(head.clone());
                push_span_filters(&mut qb, tenant, &f, span.grain, span.time_column());
                qb.push(tail.clone());
                qb
            };
            let levels = query(&levels).build_query_as().fetch_all(&self.pool).await?;
            let services = query(&services).build_query_as().fetch_all(&self.pool).await?;
            let buckets = query(&buckets).build_query_as().fetch_all(&self.pool).await?;
            sum.add(levels, services, buckets);
        }
        Ok(sum.finish())
    }

    async fn delete_logs_before(&self, tenant: &str, before: i64, max: usize) -> Result<u64, BackendError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "DELETE FROM logs WHERE tenant = ?1 AND id IN \
             (SELECT id FROM logs WHERE tenant = ?1 AND timestamp < ?2 ORDER BY timestamp LIMIT ?3) \
             RETURNING tenant, timestamp, service, level",
        )
        .bind(tenant)
        .bind(before)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        let deltas = deltas_of(&rows, -1)?;
        add_counts(&mut tx, &deltas).await?;
        // Buckets emptied go, so that the rollups shrink with the logs.
        for (t, g, b, s, l) in deltas.keys() {
            sqlx::query(
                "DELETE FROM log_counts WHERE tenant = ? AND grain = ? AND bucket = ? AND service = ? AND level = ? AND n <= 0",
            )
            .bind(t)
            .bind(g)
            .bind(b)
            .bind(s)
            .bind(l)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    async fn purge_tenant(&self, tenant: &str, max: usize) -> Result<bool, BackendError> {
        let r = sqlx::query(
            "DELETE FROM logs WHERE tenant = ?1 AND id IN (SELECT id FROM logs WHERE tenant = ?1 LIMIT ?2)",
        )
        .bind(tenant)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        if r.rows_affected() > 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM log_counts WHERE tenant = ?")
            .bind(tenant)
            .execute(&self.pool)
            .await?;
        self.accounts.drop_tenant(tenant).await?;
        Ok(true)
    }

    async fn stored_bytes(&self, tenant: &str) -> Result<u64, BackendError> {
        // SQLite cannot say what one tenant's rows take: the columns' bytes
        // plus what each row costs in the table and its two indexes.
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(length(id) + length(service) + length(message) + length(attributes) \
             + COALESCE(length(raw_path), 0) + COALESCE(length(language), 0) + ?2), 0) FROM logs WHERE tenant = ?1",
        )
        .bind(tenant)
        .bind(ROW_OVERHEAD_BYTES)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn add_usage(&self, rows: &[(String, i64, Usage)]) -> Result<(), BackendError> {
        self.accounts.add_usage(rows).await
    }

    async fn set_stored(&self, tenant: &str, day: i64, stored: Stored) -> Result<(), BackendError> {
        self.accounts.set_stored(tenant, day, stored).await
    }

    async fn usage(&self, tenant: &str, from_day: i64) -> Result<Vec<UsageDay>, BackendError> {
        self.accounts.usage(tenant, from_day).await
    }

    async fn ping(&self) -> Result<(), BackendError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Bytes a row costs beyond its text columns: the fixed-width columns and
/// the two index entries, (tenant, timestamp, id_key) and (tenant, service,
/// timestamp, id_key), with their page overhead (measured on a database of
/// 100k rows: about 120 bytes).
const ROW_OVERHEAD_BYTES: i64 = 120;

/// Scopes are kept comma-separated.
impl Scopes<Sqlite> for String {
    fn from_scopes(scopes: &[String]) -> Self {
        scopes.join(",")
    }

    fn into_scopes(self) -> Vec<String> {
        self.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
