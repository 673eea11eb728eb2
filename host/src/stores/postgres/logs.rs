//! The PostgreSQL store's log rows, in the tenant's own schema: one
//! `UNNEST` insert per batch that keeps the count rollups in the same
//! transaction, the list view, stats and retention.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, Postgres, QueryBuilder, Row};

use super::{PgStore, schema};
use crate::error::BackendError;
use crate::model::{self, Cursor, Level, LogFilter, LogRecord, Page, Stats};
use crate::stores::sql::{self, id_key};
use crate::stores::{MetaRow, MetadataStore, Stored, Usage, UsageDay};

const COLUMNS: &str =
    "id, service, level, timestamp, received_at, message, language, attributes::text AS attributes, raw_path";

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
