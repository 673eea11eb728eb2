//! The distributed metadata store: PostgreSQL 15 (DESIGN §1). Tenants and
//! API keys live in `public`; each tenant's records in a schema of its own,
//! `tenant_<slug>`, made from `infra/postgres/templates/tenant_schema_template.sql`
//! when the tenant is created. Inserts are one `UNNEST` statement per batch
//! with `ON CONFLICT (id) DO NOTHING`, so a replay changes nothing. Table
//! names are spliced into SQL (`AssertSqlSafe`) only as `tenant_<slug>`, with
//! the slug checked against `^[a-z][a-z0-9_]{1,39}$` first.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Postgres, QueryBuilder, Row};

use super::accounts::{self, Accounts, Scopes, Statements};
use super::sql::{self, id_key};
use super::{ApiKey, MetaRow, MetadataStore, Stored, Tenant, TenantState, Usage, UsageDay};
use crate::error::{Backend, BackendError};
use crate::model::{self, Cursor, Level, LogFilter, LogRecord, Page, Stats, valid_slug};

/// The shared tables, also run by `infra/postgres/init/01-create-public-tenants.sh`.
const PUBLIC_SCHEMA: &str = include_str!("../../../infra/postgres/templates/public_schema.sql");
/// One tenant's schema; `{{schema}}` is replaced by the schema name.
const TENANT_TEMPLATE: &str = include_str!("../../../infra/postgres/templates/tenant_schema_template.sql");

/// Migrations of `public`, applied in order, each once, under an advisory
/// lock so that processes starting together do not race.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, PUBLIC_SCHEMA),
    (2, PLANS),
    (3, STATES_AND_USAGE),
    (4, LOG_COUNTS),
    (5, STORED_USAGE),
];
/// Tenant schemas gained their count rollups (issue 13): made and filled
/// from the logs once for the schemas that predate them; the template
/// makes them for new ones.
const LOG_COUNTS: &str = r#"
DO $$
DECLARE s text;
BEGIN
  FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\_%' LOOP
    IF to_regclass(s || '.logs') IS NOT NULL AND to_regclass(s || '.log_counts') IS NULL THEN
      EXECUTE format('CREATE TABLE %I.log_counts (grain BIGINT NOT NULL, bucket BIGINT NOT NULL, '
        'service TEXT NOT NULL, level SMALLINT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (grain, bucket, service, level))', s);
      EXECUTE format('INSERT INTO %I.log_counts SELECT g, timestamp - (((timestamp %% g) + g) %% g) AS b, service, level, COUNT(*) '
        'FROM %I.logs, (VALUES (3600000000000::bigint), (60000000000::bigint)) AS grains(g) GROUP BY g, b, service, level', s, s);
    END IF;
  END LOOP;
END $$;
"#;
/// Tenants gained a plan (issue 11); public_schema.sql has the same line,
/// so a fresh database and an upgraded one end up alike.
const PLANS: &str = "ALTER TABLE public.tenants ADD COLUMN IF NOT EXISTS plan TEXT NOT NULL DEFAULT 'free';";
/// Tenants gained a state, and usage its table (issue 11): the same lines
/// as in public_schema.sql.
const STATES_AND_USAGE: &str = PUBLIC_SCHEMA;
/// Usage counts what the pipeline stored apart from what ingest accepted
/// (issue 22): the same lines as in public_schema.sql.
const STORED_USAGE: &str = "ALTER TABLE public.usage ADD COLUMN IF NOT EXISTS stored_logs BIGINT NOT NULL DEFAULT 0; \
     ALTER TABLE public.usage ADD COLUMN IF NOT EXISTS stored_bytes BIGINT NOT NULL DEFAULT 0;";
/// Any constant both sides agree on: the key of the migration lock.
const MIGRATION_LOCK: i64 = 0x4c48_4d49_4752;

const COLUMNS: &str =
    "id, service, level, timestamp, received_at, message, language, attributes::text AS attributes, raw_path";

/// PostgreSQL's `statement_timeout` for every session of the pool.
pub const STATEMENT_TIMEOUT: &str = "30s";

pub struct PgStore {
    pool: PgPool,
    accounts: Accounts<Postgres, Vec<String>>,
}

static ACCOUNTS: Statements = accounts::statements!("public.");

impl PgStore {
    /// Connects to `url` (`postgres://…`) and brings `public` up to date.
    pub async fn open(url: &str) -> Result<PgStore, BackendError> {
        let opts: PgConnectOptions = url
            .parse::<PgConnectOptions>()
            .map_err(|e| BackendError::rejected(Backend::Metadata, format!("DATABASE_URL: {e}")))?
            .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(30))
            // No statement may hold a connection (and the tenant's reads)
            // without bound: a runaway one is cancelled, its caller gets a
            // 503, and the pool's eight connections stay free for others.
            .options([("statement_timeout", STATEMENT_TIMEOUT)]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // A server that is down shows in seconds: /ready and the read
            // paths answer 503 rather than hang.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(opts)
            .await?;
        migrate(&pool).await?;
        Ok(PgStore {
            accounts: Accounts::new(pool.clone(), &ACCOUNTS),
            pool,
        })
    }

    /// A server setting as this store's sessions see it: how an operator
    /// (or a test) checks that the pool's own settings, such as
    /// [`STATEMENT_TIMEOUT`], took.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, BackendError> {
        Ok(sqlx::query_scalar("SELECT current_setting($1, true)")
            .bind(name)
            .fetch_one(&self.pool)
            .await?)
    }
}

async fn migrate(pool: &PgPool) -> Result<(), BackendError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = async {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS public.loggerhub_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        for (version, sql) in MIGRATIONS {
            let done: Option<i32> = sqlx::query_scalar("SELECT version FROM public.loggerhub_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *conn)
                .await?;
            if done.is_none() {
                sqlx::raw_sql(*sql).execute(&mut *conn).await?;
                sqlx::query("INSERT INTO public.loggerhub_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(version)
                    .bind(model::now_ns())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok::<_, BackendError>(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    result
}

/// The schema of `tenant`. Slugs are checked again here because the name is
/// spliced into SQL: only `[a-z][a-z0-9_]` ever gets through.
fn schema(tenant: &str) -> Result<String, BackendError> {
    if valid_slug(tenant) {
        Ok(format!("tenant_{tenant}"))
    } else {
        Err(BackendError::rejected(
            Backend::Metadata,
            format!("not a tenant slug: {tenant:?}"),
        ))
    }
}

/// Replaces the database `name` on the server of `url` (any database of
/// it) with an empty one, and returns its URL: a benchmark's own
/// database, made again for each load. `name` is spliced into SQL, so it
/// must be a slug.
pub async fn recreate_database(url: &str, name: &str) -> Result<String, BackendError> {
    if !valid_slug(name) {
        return Err(BackendError::rejected(
            Backend::Metadata,
            format!("not a database name: {name:?}"),
        ));
    }
    let target = database_url(url, name)?;
    let pool = PgPool::connect(url).await?;
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(AssertSqlSafe(sql)).execute(&pool).await?;
    }
    pool.close().await;
    Ok(target)
}

/// The URL of the database `name` on the server of `url`.
pub fn database_url(url: &str, name: &str) -> Result<String, BackendError> {
    url.split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .map(|(base, _)| format!("{base}/{name}"))
        .ok_or_else(|| BackendError::rejected(Backend::Metadata, "expected postgres://user@host:port/db"))
}

/// The tenant schema's DDL, from the template.
pub fn tenant_schema_sql(tenant: &str) -> Result<String, BackendError> {
    Ok(TENANT_TEMPLATE.replace("{{schema}}", &schema(tenant)?))
}

fn push_filters(qb: &mut QueryBuilder<Postgres>, f: &LogFilter) {
    push_span_filters(qb, f, None, "timestamp");
}

/// Filters of a stats span: over a rollup's grain by bucket, over the logs
/// by timestamp.
fn push_span_filters(qb: &mut QueryBuilder<Postgres>, f: &LogFilter, grain: Option<i64>, time: &str) {
    qb.push(" WHERE TRUE");
    if let Some(g) = grain {
        qb.push(" AND grain = ").push_bind(g);
    }
    if let Some(s) = &f.service {
        qb.push(" AND service = ").push_bind(s.clone());
    }
    if let Some(l) = f.level {
        qb.push(" AND level = ").push_bind(l as i16);
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
fn deltas_of(tenant: &str, rows: &[PgRow], sign: i64) -> Result<sql::Deltas, BackendError> {
    let logged = rows
        .iter()
        .map(|row| {
            let level: i16 = row.try_get("level")?;
            Ok(sql::LoggedRow {
                tenant: tenant.to_string(),
                timestamp: row.try_get("timestamp")?,
                service: row.try_get("service")?,
                level: i64::from(level),
            })
        })
        .collect::<Result<Vec<_>, BackendError>>()?;
    Ok(sql::rollup_deltas(&logged, sign))
}

/// Adds `deltas` to the tenant's rollups in one statement, in key order;
/// buckets emptied go, so that the rollups shrink with the logs.
async fn add_counts(tx: &mut sqlx::PgConnection, tenant: &str, deltas: &sql::Deltas) -> Result<(), BackendError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let table = format!("{}.log_counts", schema(tenant)?);
    let col = |f: &dyn Fn(&sql::CountKey, i64) -> i64| deltas.iter().map(|(k, n)| f(k, *n)).collect::<Vec<i64>>();
    let services: Vec<&str> = deltas.keys().map(|k| k.3.as_str()).collect();
    let levels: Vec<i16> = deltas.keys().map(|k| i16::try_from(k.4).unwrap_or_default()).collect();
    let sql = format!(
        "INSERT INTO {table} (grain, bucket, service, level, n) \
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::int2[], $5::int8[]) \
         ON CONFLICT (grain, bucket, service, level) DO UPDATE SET n = {table}.n + EXCLUDED.n"
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(col(&|k, _| k.1))
        .bind(col(&|k, _| k.2))
        .bind(&services)
        .bind(&levels)
        .bind(col(&|_, n| n))
        .execute(&mut *tx)
        .await?;
    if deltas.values().any(|n| *n < 0) {
        let sql = format!(
            "DELETE FROM {table} WHERE n <= 0 AND (grain, bucket, service, level) IN \
             (SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::int2[]))"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(col(&|k, _| k.1))
            .bind(col(&|k, _| k.2))
            .bind(&services)
            .bind(&levels)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

fn row_to_record(tenant: &str, row: &PgRow) -> Result<LogRecord, BackendError> {
    let level: i16 = row.try_get("level")?;
    let attrs: String = row.try_get("attributes")?;
    Ok(LogRecord {
        id: row.try_get("id")?,
        tenant: tenant.to_string(),
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

#[async_trait]
impl MetadataStore for PgStore {
    async fn create_tenant(&self, slug: &str, plan: &str) -> Result<bool, BackendError> {
        let ddl = tenant_schema_sql(slug)?;
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO public.tenants (slug, created_at, plan) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(slug)
        .bind(model::now_ns())
        .bind(plan)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        // Always run: the template is idempotent, and this repairs a schema
        // dropped by hand.
        // The only spliced name is a checked slug (`schema`).
        sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(created)
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
        let mut tenants: Vec<&str> = rows.iter().map(|r| r.record.tenant.as_str()).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for tenant in tenants {
            let mine: Vec<&MetaRow<'_>> = rows.iter().filter(|r| r.record.tenant == tenant).collect();
            let col = |f: &dyn Fn(&LogRecord) -> String| mine.iter().map(|r| f(r.record)).collect::<Vec<_>>();
            // One statement per tenant and batch: 11 arrays, whatever the
            // batch size (no parameter limit, one plan).
            let sql = format!(
                "INSERT INTO {}.logs (id, id_key, service, level, timestamp, received_at, message, language, attributes, raw_path, indexed) \
                 SELECT id, id_key, service, level, timestamp, received_at, message, language, attributes::jsonb, raw_path, indexed \
                 FROM UNNEST($1::text[], $2::bytea[], $3::text[], $4::int2[], $5::int8[], $6::int8[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bool[]) \
                 AS t(id, id_key, service, level, timestamp, received_at, message, language, attributes, raw_path, indexed) \
                 ON CONFLICT (id) DO NOTHING RETURNING timestamp, service, level",
                schema(tenant)?
            );
            // Only the rows new to the store come back: a replay counts
            // nothing twice.
            let new_rows = sqlx::query(AssertSqlSafe(sql))
                .bind(col(&|r| r.id.clone()))
                .bind(mine.iter().map(|r| id_key(&r.record.id)).collect::<Vec<_>>())
                .bind(col(&|r| r.service.clone()))
                .bind(mine.iter().map(|r| r.record.level as i16).collect::<Vec<_>>())
                .bind(mine.iter().map(|r| r.record.timestamp).collect::<Vec<_>>())
                .bind(mine.iter().map(|r| r.record.received_at).collect::<Vec<_>>())
                .bind(col(&|r| model::preview(&r.message).to_string()))
                .bind(mine.iter().map(|r| r.record.language.clone()).collect::<Vec<_>>())
                .bind(col(&|r| sql::attributes_json(&r.attributes)))
                .bind(mine.iter().map(|r| r.record.raw_path.clone()).collect::<Vec<_>>())
                .bind(mine.iter().map(|r| r.indexed).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await?;
            inserted += new_rows.len() as u64;
            let deltas = deltas_of(tenant, &new_rows, 1)?;
            add_counts(&mut tx, tenant, &deltas).await?;
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
        let table = format!("{}.logs", schema(tenant)?);
        // Counted up to the bound: past it the count says "at least".
        let mut count = QueryBuilder::<Postgres>::new(format!("SELECT COUNT(*) FROM (SELECT 1 FROM {table}"));
        push_filters(&mut count, filter);
        count
            .push(" LIMIT ")
            .push_bind(model::TOTAL_BOUND as i64 + 1)
            .push(") AS bounded");
        let total: i64 = count.build().fetch_one(&self.pool).await?.try_get(0)?;

        let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM {table}"));
        push_filters(&mut qb, filter);
        if let Some(c) = cursor {
            qb.push(" AND (timestamp, id_key) < (")
                .push_bind(c.timestamp)
                .push(", ")
                .push_bind(id_key(&c.id))
                .push(")");
        }
        qb.push(" ORDER BY timestamp DESC, id_key DESC LIMIT ")
            .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
        let rows = qb.build().fetch_all(&self.pool).await?;
        let hits = rows
            .iter()
            .map(|r| row_to_record(tenant, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sql::page(hits, total, limit))
    }

    async fn get_logs(&self, tenant: &str, ids: &[String]) -> Result<Vec<LogRecord>, BackendError> {
        let sql = format!("SELECT {COLUMNS} FROM {}.logs WHERE id = ANY($1)", schema(tenant)?);
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(ids).fetch_all(&self.pool).await?;
        rows.iter().map(|r| row_to_record(tenant, r)).collect()
    }

    async fn stats(&self, tenant: &str, filter: &LogFilter, interval_ns: i64) -> Result<Stats, BackendError> {
        let schema = schema(tenant)?;
        let interval = interval_ns.max(1);
        let mut sum = sql::StatsSum::default();
        for span in sql::spans(filter.from, filter.to, interval) {
            let f = span.filter(filter);
            let [levels, services, buckets] = span.stats_queries(
                &format!("{schema}.logs"),
                &format!("{schema}.log_counts"),
                "level::int8",
                interval,
            );
            let query = |(head, tail): &(String, String)| {
                let mut qb = QueryBuilder::<Postgres>::new(head.clone());
                push_span_filters(&mut qb, &f, span.grain, span.time_column());
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
        let sql = format!(
            "DELETE FROM {s}.logs WHERE id IN (SELECT id FROM {s}.logs WHERE timestamp < $1 ORDER BY timestamp LIMIT $2) \
             RETURNING timestamp, service, level",
            s = schema(tenant)?
        );
        let deleted = async {
            let mut tx = self.pool.begin().await?;
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(before)
                .bind(i64::try_from(max).unwrap_or(i64::MAX))
                .fetch_all(&mut *tx)
                .await?;
            let deltas = deltas_of(tenant, &rows, -1)?;
            add_counts(&mut tx, tenant, &deltas).await?;
            tx.commit().await?;
            Ok::<_, BackendError>(rows.len() as u64)
        };
        match deleted.await {
            Ok(n) => Ok(n),
            // No schema: nothing to delete.
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    async fn purge_tenant(&self, tenant: &str, _max: usize) -> Result<bool, BackendError> {
        // The tenant's records are its schema: dropping it is one catalogue
        // change, however many rows it holds.
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", schema(tenant)?);
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&self.pool).await?;
        self.accounts.drop_tenant(tenant).await?;
        Ok(true)
    }

    async fn stored_bytes(&self, tenant: &str) -> Result<u64, BackendError> {
        let n: Option<i64> = sqlx::query_scalar("SELECT pg_total_relation_size(to_regclass($1))")
            .bind(format!("{}.logs", schema(tenant)?))
            .fetch_one(&self.pool)
            .await?;
        Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
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

/// Scopes are a text array.
impl Scopes<Postgres> for Vec<String> {
    fn from_scopes(scopes: &[String]) -> Self {
        scopes.to_vec()
    }

    fn into_scopes(self) -> Vec<String> {
        self
    }
}
