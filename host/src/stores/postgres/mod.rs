//! The distributed metadata store: PostgreSQL 15 (DESIGN §1). Tenants and
//! API keys live in `public`; each tenant's records in a schema of its own,
//! `tenant_<slug>`, made from `infra/postgres/templates/tenant_schema_template.sql`
//! when the tenant is created. Inserts are one `UNNEST` statement per batch
//! with `ON CONFLICT (id) DO NOTHING`, so a replay changes nothing. Table
//! names are spliced into SQL (`AssertSqlSafe`) only as `tenant_<slug>`, with
//! the slug checked against `^[a-z][a-z0-9_]{1,39}$` first.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Postgres};

use super::accounts::{self, Accounts, Scopes, Statements};
use super::{AccountStore, ApiKey, Saved, SavedSearch, Tenant, TenantState};
use crate::error::{Backend, BackendError};
use crate::model::{self, valid_slug};

mod logs;

/// The shared tables, also run by `infra/postgres/init/01-create-public-tenants.sh`.
const PUBLIC_SCHEMA: &str = include_str!("../../../../infra/postgres/templates/public_schema.sql");
/// One tenant's schema; `{{schema}}` is replaced by the schema name.
const TENANT_TEMPLATE: &str = include_str!("../../../../infra/postgres/templates/tenant_schema_template.sql");

/// Migrations of `public`, applied in order, each once, under an advisory
/// lock so that processes starting together do not race.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, PUBLIC_SCHEMA),
    (2, PLANS),
    (3, STATES_AND_USAGE),
    (4, LOG_COUNTS),
    (5, STORED_USAGE),
    (6, SAVED_SEARCHES),
];
/// Saved searches (issue 24) on databases that predate them: the table as
/// the public schema's template makes it for new ones (a migration's text
/// is fixed once applied, so it does not re-run the template).
const SAVED_SEARCHES: &str = r#"
CREATE TABLE IF NOT EXISTS public.saved_searches (
    tenant      TEXT NOT NULL REFERENCES public.tenants (slug) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    query       TEXT NOT NULL,
    filters     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);
"#;
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

/// PostgreSQL's `statement_timeout` for every session of the pool.
pub const STATEMENT_TIMEOUT: &str = "30s";

pub struct PgStore {
    pool: PgPool,
    accounts: Accounts<Postgres, Vec<String>>,
}

static ACCOUNTS: Statements = accounts::statements!(
    "public.",
    Some("SELECT slug FROM public.tenants WHERE slug = $1 FOR NO KEY UPDATE")
);

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
            accounts: Accounts::new(pool.clone(), pool.clone(), &ACCOUNTS),
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

#[async_trait]
impl AccountStore for PgStore {
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

    async fn put_saved_search(&self, s: &SavedSearch, max: usize) -> Result<Saved, BackendError> {
        self.accounts.put_saved_search(s, max).await
    }

    async fn list_saved_searches(&self, tenant: &str) -> Result<Vec<SavedSearch>, BackendError> {
        self.accounts.list_saved_searches(tenant).await
    }

    async fn get_saved_search(&self, tenant: &str, name: &str) -> Result<Option<SavedSearch>, BackendError> {
        self.accounts.get_saved_search(tenant, name).await
    }

    async fn delete_saved_search(&self, tenant: &str, name: &str) -> Result<bool, BackendError> {
        self.accounts.delete_saved_search(tenant, name).await
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
