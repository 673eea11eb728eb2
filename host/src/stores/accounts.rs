//! Tenants and API keys, the same code on both SQL stores: the statements
//! use `$n` parameters (SQLite takes them too) and differ only in the
//! tables' names (`tenants` or `public.tenants`) and in how scopes are
//! kept (a comma-separated text on SQLite, a text array on PostgreSQL:
//! `Scopes`). Creating a tenant stays with each store (PostgreSQL also
//! makes the tenant's schema).

use std::marker::PhantomData;

use sqlx::{Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::{ApiKey, Saved, SavedSearch, Stored, Tenant, TenantState, Usage, UsageDay};
use crate::error::BackendError;
use crate::model;

/// How a database keeps a key's scopes.
pub(super) trait Scopes<DB: Database>:
    for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send + Unpin + 'static
{
    fn from_scopes(scopes: &[String]) -> Self;
    fn into_scopes(self) -> Vec<String>;
}

/// The statements, for one database's table names.
pub(super) struct Statements {
    pub list_tenants: &'static str,
    pub get_tenant: &'static str,
    pub set_plan: &'static str,
    pub set_state: &'static str,
    pub drop_tenant: [&'static str; 4],
    pub add_usage: &'static str,
    pub set_stored: &'static str,
    pub usage: &'static str,
    pub insert_key: &'static str,
    pub find_key: &'static str,
    pub list_keys: &'static str,
    pub revoke_key: &'static str,
    /// Holds the tenant's row until the transaction ends, so that two
    /// saves of new names cannot both pass the bound (PostgreSQL; SQLite
    /// has one writer).
    pub lock_tenant: Option<&'static str>,
    pub count_saved: &'static str,
    pub saved_exists: &'static str,
    pub put_saved: &'static str,
    pub list_saved: &'static str,
    pub get_saved: &'static str,
    pub delete_saved: &'static str,
}

pub(super) struct Accounts<DB: Database, S> {
    read: Pool<DB>,
    /// Where every change goes: SQLite's single writer connection, whose
    /// page cache stays warm only while no other connection writes.
    write: Pool<DB>,
    sql: &'static Statements,
    scopes: PhantomData<S>,
}

type KeyRow<S> = (String, String, String, S, i64, Option<i64>);
type SavedRow = (String, String, String, String, i64, i64);
type TenantRow = (String, i64, String, String, i64);
type UsageRow = (i64, i64, i64, i64, i64, i64, i64, Option<i64>, Option<i64>, Option<i64>);

fn to_tenant((slug, created_at, plan, state, state_since): TenantRow) -> Tenant {
    Tenant {
        slug,
        created_at,
        plan,
        state: TenantState::parse(&state),
        state_since,
    }
}

/// Counters are u64 in the host and BIGINT in both databases.
fn to_saved((tenant, name, query, filters, created_at, updated_at): SavedRow) -> SavedSearch {
    SavedSearch {
        tenant,
        name,
        query,
        filters,
        created_at,
        updated_at,
    }
}

fn db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn host(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl<DB, S> Accounts<DB, S>
where
    DB: Database,
    S: Scopes<DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> TenantRow: FromRow<'r, DB::Row>,
    for<'r> UsageRow: FromRow<'r, DB::Row>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> KeyRow<S>: FromRow<'r, DB::Row>,
    for<'r> SavedRow: FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    pub fn new(read: Pool<DB>, write: Pool<DB>, sql: &'static Statements) -> Self {
        Accounts {
            read,
            write,
            sql,
            scopes: PhantomData,
        }
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, BackendError> {
        let rows: Vec<TenantRow> = sqlx::query_as(self.sql.list_tenants).fetch_all(&self.read).await?;
        Ok(rows.into_iter().map(to_tenant).collect())
    }

    pub async fn get_tenant(&self, slug: &str) -> Result<Option<Tenant>, BackendError> {
        let row: Option<TenantRow> = sqlx::query_as(self.sql.get_tenant)
            .bind(slug)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(to_tenant))
    }

    /// Moves a tenant to `plan`; false if there is no such tenant.
    pub async fn set_plan(&self, slug: &str, plan: &str) -> Result<bool, BackendError> {
        let updated: Option<(String,)> = sqlx::query_as(self.sql.set_plan)
            .bind(plan)
            .bind(slug)
            .fetch_optional(&self.write)
            .await?;
        Ok(updated.is_some())
    }

    /// Moves a tenant to `state`; false if there is no such tenant.
    pub async fn set_state(&self, slug: &str, state: TenantState) -> Result<bool, BackendError> {
        let updated: Option<(String,)> = sqlx::query_as(self.sql.set_state)
            .bind(state.as_str())
            .bind(model::now_ns())
            .bind(slug)
            .fetch_optional(&self.write)
            .await?;
        Ok(updated.is_some())
    }

    /// Removes the tenant's keys, usage and row (its records are gone
    /// already), in one transaction.
    pub async fn drop_tenant(&self, slug: &str) -> Result<(), BackendError>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    {
        let mut tx = self.write.begin().await?;
        for sql in self.sql.drop_tenant {
            sqlx::query(sql).bind(slug).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_usage(&self, rows: &[(String, i64, Usage)]) -> Result<(), BackendError>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    {
        let mut tx = self.write.begin().await?;
        for (tenant, day, u) in rows {
            sqlx::query(self.sql.add_usage)
                .bind(tenant.as_str())
                .bind(*day)
                .bind(db(u.logs))
                .bind(db(u.bytes))
                .bind(db(u.plugin_cpu_us))
                .bind(db(u.dead_letters))
                .bind(db(u.stored_logs))
                .bind(db(u.stored_bytes))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_stored(&self, tenant: &str, day: i64, stored: Stored) -> Result<(), BackendError> {
        sqlx::query(self.sql.set_stored)
            .bind(tenant)
            .bind(day)
            .bind(Some(db(stored.metadata)))
            .bind(Some(db(stored.raw)))
            .bind(Some(db(stored.index)))
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn usage(&self, tenant: &str, from_day: i64) -> Result<Vec<UsageDay>, BackendError> {
        let rows: Vec<UsageRow> = sqlx::query_as(self.sql.usage)
            .bind(tenant)
            .bind(from_day)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(day, logs, bytes, cpu, dead, stored_logs, stored_bytes, m, r, i)| UsageDay {
                    day,
                    used: Usage {
                        logs: host(logs),
                        bytes: host(bytes),
                        plugin_cpu_us: host(cpu),
                        dead_letters: host(dead),
                        stored_logs: host(stored_logs),
                        stored_bytes: host(stored_bytes),
                    },
                    stored: match (m, r, i) {
                        (Some(m), Some(r), Some(i)) => Some(Stored {
                            metadata: host(m),
                            raw: host(r),
                            index: host(i),
                        }),
                        _ => None,
                    },
                },
            )
            .collect())
    }

    pub async fn insert_key(&self, key: &ApiKey) -> Result<(), BackendError> {
        sqlx::query(self.sql.insert_key)
            .bind(key.id.as_str())
            .bind(key.tenant.as_str())
            .bind(key.hash.as_str())
            .bind(S::from_scopes(&key.scopes))
            .bind(key.created_at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn find_key(&self, hash: &str) -> Result<Option<ApiKey>, BackendError> {
        let row: Option<KeyRow<S>> = sqlx::query_as(self.sql.find_key)
            .bind(hash)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(Self::to_key))
    }

    pub async fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, BackendError> {
        let rows: Vec<KeyRow<S>> = sqlx::query_as(self.sql.list_keys)
            .bind(tenant)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(Self::to_key).collect())
    }

    /// Revokes a key of `tenant`; false if there is no such key (or it was
    /// revoked already).
    pub async fn revoke_key(&self, tenant: &str, id: &str) -> Result<bool, BackendError> {
        let revoked: Option<(String,)> = sqlx::query_as(self.sql.revoke_key)
            .bind(model::now_ns())
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        Ok(revoked.is_some())
    }

    pub async fn put_saved_search(&self, s: &SavedSearch, max: usize) -> Result<Saved, BackendError>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    {
        let mut tx = self.write.begin().await?;
        if let Some(lock) = self.sql.lock_tenant {
            sqlx::query(lock).bind(s.tenant.as_str()).execute(&mut *tx).await?;
        }
        let exists: Option<(String,)> = sqlx::query_as(self.sql.saved_exists)
            .bind(s.tenant.as_str())
            .bind(s.name.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            let (n,): (i64,) = sqlx::query_as(self.sql.count_saved)
                .bind(s.tenant.as_str())
                .fetch_one(&mut *tx)
                .await?;
            if host(n) >= max as u64 {
                return Ok(Saved::Full);
            }
        }
        sqlx::query(self.sql.put_saved)
            .bind(s.tenant.as_str())
            .bind(s.name.as_str())
            .bind(s.query.as_str())
            .bind(s.filters.as_str())
            .bind(s.created_at)
            .bind(s.updated_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(if exists.is_some() {
            Saved::Replaced
        } else {
            Saved::Created
        })
    }

    pub async fn list_saved_searches(&self, tenant: &str) -> Result<Vec<SavedSearch>, BackendError> {
        let rows: Vec<SavedRow> = sqlx::query_as(self.sql.list_saved)
            .bind(tenant)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(to_saved).collect())
    }

    pub async fn get_saved_search(&self, tenant: &str, name: &str) -> Result<Option<SavedSearch>, BackendError> {
        let row: Option<SavedRow> = sqlx::query_as(self.sql.get_saved)
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(to_saved))
    }

    pub async fn delete_saved_search(&self, tenant: &str, name: &str) -> Result<bool, BackendError> {
        let gone: Option<(String,)> = sqlx::query_as(self.sql.delete_saved)
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.write)
            .await?;
        Ok(gone.is_some())
    }

    fn to_key((id, tenant, hash, scopes, created_at, revoked_at): KeyRow<S>) -> ApiKey {
        ApiKey {
            id,
            tenant,
            hash,
            scopes: scopes.into_scopes(),
            created_at,
            revoked: revoked_at.is_some(),
        }
    }
}

/// The statements over `tenants` and `api_keys` in `$schema` (`""` or
/// `"public."`).
macro_rules! statements {
    ($schema:literal, $lock_tenant:expr) => {
        $crate::stores::accounts::Statements {
            list_tenants: concat!(
                "SELECT slug, created_at, plan, state, state_since FROM ",
                $schema,
                "tenants ORDER BY slug"
            ),
            get_tenant: concat!(
                "SELECT slug, created_at, plan, state, state_since FROM ",
                $schema,
                "tenants WHERE slug = $1"
            ),
            set_plan: concat!(
                "UPDATE ",
                $schema,
                "tenants SET plan = $1 WHERE slug = $2 RETURNING slug"
            ),
            set_state: concat!(
                "UPDATE ",
                $schema,
                "tenants SET state = $1, state_since = $2 WHERE slug = $3 RETURNING slug"
            ),
            drop_tenant: [
                concat!("DELETE FROM ", $schema, "saved_searches WHERE tenant = $1"),
                concat!("DELETE FROM ", $schema, "api_keys WHERE tenant = $1"),
                concat!("DELETE FROM ", $schema, "usage WHERE tenant = $1"),
                concat!("DELETE FROM ", $schema, "tenants WHERE slug = $1"),
            ],
            add_usage: concat!(
                "INSERT INTO ",
                $schema,
                "usage AS u (tenant, day, logs, bytes, plugin_cpu_us, dead_letters, stored_logs, stored_bytes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (tenant, day) DO UPDATE SET logs = u.logs + excluded.logs, bytes = u.bytes + excluded.bytes, \
                 plugin_cpu_us = u.plugin_cpu_us + excluded.plugin_cpu_us, dead_letters = u.dead_letters + excluded.dead_letters, \
                 stored_logs = u.stored_logs + excluded.stored_logs, stored_bytes = u.stored_bytes + excluded.stored_bytes"
            ),
            set_stored: concat!(
                "INSERT INTO ",
                $schema,
                "usage AS u (tenant, day, metadata_bytes, raw_bytes, index_bytes) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant, day) DO UPDATE SET metadata_bytes = excluded.metadata_bytes, \
                 raw_bytes = excluded.raw_bytes, index_bytes = excluded.index_bytes"
            ),
            usage: concat!(
                "SELECT day, logs, bytes, plugin_cpu_us, dead_letters, stored_logs, stored_bytes, metadata_bytes, raw_bytes, index_bytes FROM ",
                $schema,
                "usage WHERE tenant = $1 AND day >= $2 ORDER BY day"
            ),
            insert_key: concat!(
                "INSERT INTO ",
                $schema,
                "api_keys (id, tenant, hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)"
            ),
            find_key: concat!(
                "SELECT id, tenant, hash, scopes, created_at, revoked_at FROM ",
                $schema,
                "api_keys WHERE hash = $1"
            ),
            list_keys: concat!(
                "SELECT id, tenant, hash, scopes, created_at, revoked_at FROM ",
                $schema,
                "api_keys WHERE tenant = $1 ORDER BY created_at"
            ),
            revoke_key: concat!(
                "UPDATE ",
                $schema,
                "api_keys SET revoked_at = $1 WHERE tenant = $2 AND id = $3 AND revoked_at IS NULL RETURNING id"
            ),
            lock_tenant: $lock_tenant,
            count_saved: concat!("SELECT COUNT(*) FROM ", $schema, "saved_searches WHERE tenant = $1"),
            saved_exists: concat!("SELECT name FROM ", $schema, "saved_searches WHERE tenant = $1 AND name = $2"),
            put_saved: concat!(
                "INSERT INTO ",
                $schema,
                "saved_searches AS s (tenant, name, query, filters, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant, name) DO UPDATE SET query = excluded.query, filters = excluded.filters, \
                 updated_at = excluded.updated_at"
            ),
            list_saved: concat!(
                "SELECT tenant, name, query, filters, created_at, updated_at FROM ",
                $schema,
                "saved_searches WHERE tenant = $1 ORDER BY name"
            ),
            get_saved: concat!(
                "SELECT tenant, name, query, filters, created_at, updated_at FROM ",
                $schema,
                "saved_searches WHERE tenant = $1 AND name = $2"
            ),
            delete_saved: concat!(
                "DELETE FROM ",
                $schema,
                "saved_searches WHERE tenant = $1 AND name = $2 RETURNING name"
            ),
        }
    };
}
pub(super) use statements;
