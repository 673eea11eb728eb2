//! The embedded metadata store: one SQLite database in the data dir, with a
//! `tenant` column on every table (DESIGN §1).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite};

use super::accounts::{self, Accounts, Scopes, Statements};
use super::sql;
use super::{AccountStore, ApiKey, Saved, SavedSearch, Tenant, TenantState};
use crate::error::BackendError;
use crate::model;

mod logs;

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
    UNIQUE (tenant, id)
);
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
-- Searches a tenant keeps under a name: the query and its filters (JSON).
CREATE TABLE IF NOT EXISTS saved_searches (
    tenant      TEXT NOT NULL REFERENCES tenants (slug),
    name        TEXT NOT NULL,
    query       TEXT NOT NULL,
    filters     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
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

pub struct SqliteStore {
    /// Readers.
    pool: SqlitePool,
    /// The one connection every change goes through. A SQLite connection
    /// drops its whole page cache when it finds that another connection
    /// wrote: with writes spread over the pool, each turn's insert began
    /// with cold B-trees and read their pages back from the file (and
    /// its commit cost as much as its inserts). One writer connection
    /// keeps them warm.
    write: SqlitePool,
    accounts: Accounts<Sqlite, String>,
    /// One writer at a time in this process (log rows, usage, accounts),
    /// queued here without a deadline: the write pool's own queue gives up
    /// after its acquire timeout (30 s), which a backlog of turns waiting
    /// on the one connection can pass. (Other processes on the same file
    /// meet SQLite's busy timeout.)
    writer: tokio::sync::Mutex<()>,
    /// `logs` is a rowid table (databases made since 2026-12-07); older
    /// ones keep theirs `WITHOUT ROWID`, and their deletes go by id.
    rowid: bool,
}

static ACCOUNTS: Statements = accounts::statements!("", None);

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
        // Kept open for good: a new connection starts with a cold cache.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        let had_counts: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'log_counts'")
                .fetch_one(&pool)
                .await?;
        sqlx::raw_sql(SCHEMA).execute(&write).await?;
        if had_counts == 0 {
            // A database from before the rollups: count what it holds, once.
            for g in sql::GRAINS {
                sqlx::query(
                    "INSERT INTO log_counts (tenant, grain, bucket, service, level, n) \
                     SELECT tenant, ?1, timestamp - (((timestamp % ?1) + ?1) % ?1) AS b, service, level, COUNT(*) \
                     FROM logs GROUP BY tenant, b, service, level",
                )
                .bind(g)
                .execute(&write)
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
                sqlx::raw_sql(*ddl).execute(&write).await?;
            }
        }
        let layout: String = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'logs'")
            .fetch_one(&write)
            .await?;
        Ok(SqliteStore {
            rowid: !layout.to_ascii_uppercase().contains("WITHOUT ROWID"),
            accounts: Accounts::new(pool.clone(), write.clone(), &ACCOUNTS),
            pool,
            write,
            writer: tokio::sync::Mutex::new(()),
        })
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_tenant(&self, slug: &str, plan: &str) -> Result<bool, BackendError> {
        let _one_writer = self.writer.lock().await;
        let r = sqlx::query("INSERT INTO tenants (slug, created_at, plan) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(slug)
            .bind(model::now_ns())
            .bind(plan)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_state(&self, slug: &str, state: TenantState) -> Result<bool, BackendError> {
        let _one_writer = self.writer.lock().await;
        self.accounts.set_state(slug, state).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, BackendError> {
        self.accounts.list_tenants().await
    }

    async fn get_tenant(&self, slug: &str) -> Result<Option<Tenant>, BackendError> {
        self.accounts.get_tenant(slug).await
    }

    async fn set_plan(&self, slug: &str, plan: &str) -> Result<bool, BackendError> {
        let _one_writer = self.writer.lock().await;
        self.accounts.set_plan(slug, plan).await
    }

    async fn insert_key(&self, key: &ApiKey) -> Result<(), BackendError> {
        let _one_writer = self.writer.lock().await;
        self.accounts.insert_key(key).await
    }

    async fn find_key(&self, hash: &str) -> Result<Option<ApiKey>, BackendError> {
        self.accounts.find_key(hash).await
    }

    async fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, BackendError> {
        self.accounts.list_keys(tenant).await
    }

    async fn revoke_key(&self, tenant: &str, id: &str) -> Result<bool, BackendError> {
        let _one_writer = self.writer.lock().await;
        self.accounts.revoke_key(tenant, id).await
    }

    async fn put_saved_search(&self, s: &SavedSearch, max: usize) -> Result<Saved, BackendError> {
        let _one_writer = self.writer.lock().await;
        self.accounts.put_saved_search(s, max).await
    }

    async fn list_saved_searches(&self, tenant: &str) -> Result<Vec<SavedSearch>, BackendError> {
        self.accounts.list_saved_searches(tenant).await
    }

    async fn get_saved_search(&self, tenant: &str, name: &str) -> Result<Option<SavedSearch>, BackendError> {
        self.accounts.get_saved_search(tenant, name).await
    }

    async fn delete_saved_search(&self, tenant: &str, name: &str) -> Result<bool, BackendError> {
        let _one_writer = self.writer.lock().await;
        self.accounts.delete_saved_search(tenant, name).await
    }
}

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
mod tests;
