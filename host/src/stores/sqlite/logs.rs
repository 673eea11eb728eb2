//! The SQLite store's log rows: batched inserts that keep the count
//! rollups in the same transaction, the list view, stats and retention.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::SqliteStore;
use crate::error::BackendError;
use crate::model::{self, Cursor, Level, LogFilter, LogRecord, Page, Stats};
use crate::stores::sql::{self, id_key};
use crate::stores::{MetaRow, MetadataStore, Stored, Usage, UsageDay};

/// Rows per INSERT statement: 12 bound values each, under SQLite's limit of
/// 32766 parameters.
const INSERT_CHUNK: usize = 2000;

fn push_filters(qb: &mut QueryBuilder<Sqlite>, tenant: &str, f: &LogFilter) {
    push_span_filters(qb, tenant, f, None, "timestamp");
}

/// Filters of a stats span: over a rollup's grain by bucket, over the logs
/// by timestamp.
/// Widest span of the logs themselves read by their time index.
const NARROW_SPAN_NS: i64 = sql::HOUR_NS;

/// The logs as a stats span reads them. A span's edges (under a minute
/// or an hour, what no rollup covers) read the time index: without
/// statistics SQLite groups by level or service along `logs_by_level` or
/// `logs_by_service` instead, reading every one of the tenant's rows to
/// count a few seconds' (0.5 s, and 8.5 s cold, on 10M rows; every
/// dashboard histogram has two edges). A wide span is left to the
/// planner: the covering index read whole beats a lookup per row.
pub(super) fn raw_table(span: &sql::Span) -> &'static str {
    match (span.grain, span.from, span.to) {
        (None, Some(a), Some(b)) if b.saturating_sub(a) <= NARROW_SPAN_NS => "logs INDEXED BY logs_by_time",
        _ => "logs",
    }
}

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

/// `INSERT` of `chunk` that skips the ids stored already.
fn insert_query(chunk: &[MetaRow<'_>]) -> QueryBuilder<Sqlite> {
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
    qb.push(" ON CONFLICT (tenant, id) DO NOTHING");
    qb
}

/// Inserts `chunk` when every row of it is new to the store, with the
/// count and rollup changes taken from the chunk itself; `None`, and
/// nothing inserted, when a row was stored already.
async fn insert_all_new(
    tx: &mut sqlx::SqliteConnection,
    chunk: &[MetaRow<'_>],
) -> Result<Option<(u64, sql::Deltas)>, BackendError> {
    sqlx::query("SAVEPOINT chunk").execute(&mut *tx).await?;
    let n = insert_query(chunk).build().execute(&mut *tx).await?.rows_affected();
    if n != chunk.len() as u64 {
        sqlx::query("ROLLBACK TO chunk").execute(&mut *tx).await?;
        sqlx::query("RELEASE chunk").execute(&mut *tx).await?;
        return Ok(None);
    }
    sqlx::query("RELEASE chunk").execute(&mut *tx).await?;
    let rows: Vec<_> = chunk.iter().map(|r| logged(r.record)).collect();
    Ok(Some((n, sql::rollup_deltas(&rows, 1))))
}

/// Inserts `chunk` and gives back what the rollups need of the rows that
/// were new.
async fn insert_returning(
    tx: &mut sqlx::SqliteConnection,
    chunk: &[MetaRow<'_>],
) -> Result<Vec<sqlx::sqlite::SqliteRow>, BackendError> {
    let mut qb = insert_query(chunk);
    qb.push(" RETURNING tenant, timestamp, service, level");
    Ok(qb.build().fetch_all(&mut *tx).await?)
}

/// A record as the rollups count it.
fn logged(r: &LogRecord) -> sql::LoggedRow {
    sql::LoggedRow {
        tenant: r.tenant.clone(),
        timestamp: r.timestamp,
        service: r.service.clone(),
        level: r.level as i64,
    }
}

const COLUMNS: &str = "tenant, id, service, level, timestamp, received_at, message, language, attributes, raw_path";

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn insert_logs(&self, rows: &[MetaRow<'_>]) -> Result<u64, BackendError> {
        let _one_writer = self.writer.lock().await;
        let mut tx = self.write.begin().await?;
        let mut inserted = 0;
        for chunk in rows.chunks(INSERT_CHUNK) {
            // A chunk of records new to the store (nearly all of them) is
            // counted from its own rows: RETURNING made SQLite keep every
            // row it inserted in a temporary table and sqlx decode it. A
            // chunk that may hold stored records (a redelivery), or that
            // met one, is inserted returning only the rows new to the
            // store: a replay counts nothing twice.
            let counted = if chunk.iter().any(|r| r.may_exist) {
                None
            } else {
                insert_all_new(&mut tx, chunk).await?
            };
            let (new, deltas) = match counted {
                Some(counted) => counted,
                None => {
                    let rows = insert_returning(&mut tx, chunk).await?;
                    (rows.len() as u64, deltas_of(&rows, 1)?)
                }
            };
            inserted += new;
            add_counts(&mut tx, &deltas).await?;
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
        // After a cursor, `to` is checked on each row (`+timestamp`), so
        // that the index is sought by the cursor's row value: with `to` as
        // a second range on timestamp, SQLite took the range and checked
        // the cursor row by row.
        let bounded = LogFilter {
            to: if cursor.is_some() { None } else { filter.to },
            ..filter.clone()
        };
        push_filters(&mut qb, tenant, &bounded);
        if let (Some(to), Some(_)) = (filter.to, cursor) {
            qb.push(" AND +timestamp < ").push_bind(to);
        }
        if let Some(c) = cursor {
            // A row value, which SQLite seeks to in the index: the same
            // test spelled `timestamp < t OR (timestamp = t AND id_key <
            // k)` was a scan from the newest row down to the cursor, so
            // page n cost n pages (the bench's walk of 1M rows took 10
            // minutes).
            qb.push(" AND (timestamp, id_key) < (")
                .push_bind(c.timestamp)
                .push(", ")
                .push_bind(id_key(&c.id))
                .push(")");
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
            let [levels, services, buckets] = span.stats_queries(raw_table(&span), "log_counts", "level", interval);
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
        let _one_writer = self.writer.lock().await;
        let mut tx = self.write.begin().await?;
        // By rowid where the table has one: `logs_by_time` holds it, where
        // `id` would be a lookup in the table for every row.
        let rows = sqlx::query(if self.rowid {
            "DELETE FROM logs WHERE rowid IN \
             (SELECT rowid FROM logs WHERE tenant = ?1 AND timestamp < ?2 ORDER BY timestamp LIMIT ?3) \
             RETURNING tenant, timestamp, service, level"
        } else {
            "DELETE FROM logs WHERE tenant = ?1 AND id IN \
             (SELECT id FROM logs WHERE tenant = ?1 AND timestamp < ?2 ORDER BY timestamp LIMIT ?3) \
             RETURNING tenant, timestamp, service, level"
        })
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
        let _one_writer = self.writer.lock().await;
        let r = sqlx::query(if self.rowid {
            "DELETE FROM logs WHERE rowid IN (SELECT rowid FROM logs WHERE tenant = ?1 LIMIT ?2)"
        } else {
            "DELETE FROM logs WHERE tenant = ?1 AND id IN (SELECT id FROM logs WHERE tenant = ?1 LIMIT ?2)"
        })
        .bind(tenant)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .execute(&self.write)
        .await?;
        if r.rows_affected() > 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM log_counts WHERE tenant = ?")
            .bind(tenant)
            .execute(&self.write)
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
        let _one_writer = self.writer.lock().await;
        self.accounts.add_usage(rows).await
    }

    async fn set_stored(&self, tenant: &str, day: i64, stored: Stored) -> Result<(), BackendError> {
        let _one_writer = self.writer.lock().await;
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
