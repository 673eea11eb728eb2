//! The embedded index: one Tantivy index per tenant under
//! `<data>/index/<tenant>`, so tenants never share a segment.
//!
//! One concept a file: `schema` (the fields and a record's document),
//! `query` (the query language as a Tantivy query), `writer` (add and
//! delete), `slices` (newest-first search in time slices) and `counting`
//! (the bounded total and the histogram).

mod counting;
mod materialized;
mod numbers;
mod query;
mod schema;
mod slices;
mod terms;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};

use self::schema::{Fields, schema};
use super::query::Query;
use super::{IdPage, IndexRow, Numbers, Rejected, SearchIndex, Terms, TermsField};
use crate::cpu;
use crate::error::{Backend, BackendError, ErrorKind};
use crate::model::{Cursor, LevelCounts, LogFilter, LogRecord};

/// A Tantivy failure with its kind: what the index was asked to hold
/// against its schema is refused for good; a broken segment is corrupt;
/// the rest (disk, locks, threads) is the index being unavailable.
impl From<tantivy::TantivyError> for BackendError {
    fn from(e: tantivy::TantivyError) -> Self {
        use tantivy::TantivyError as T;
        let kind = match &e {
            T::DataCorruption(_) => ErrorKind::Corrupt,
            T::InvalidArgument(_) | T::SchemaError(_) | T::FieldNotFound(_) => ErrorKind::Rejected,
            _ => ErrorKind::Unavailable,
        };
        BackendError::new(Backend::Index, kind, e)
    }
}

fn corrupt(what: impl Into<String>) -> BackendError {
    BackendError::corrupt(Backend::Index, what.into())
}

fn io(e: std::io::Error) -> BackendError {
    BackendError::io(Backend::Index, e)
}

/// Indexing memory per tenant writer (Tantivy's minimum is 15 MB).
const WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;

/// Tenant indexes open at once. An open one holds its writer's threads and
/// about 6 MiB even when idle (Tantivy's term table alone is 4 MiB): 100
/// busy tenants held 600 MiB (issue 23). Past it, the least recently used
/// one nobody is using is closed, between two of its commits; it opens
/// again (a few ms) when next used.
const OPEN_TENANTS: usize = 16;

struct TenantIndex {
    index: Index,
    /// Read-locked to add or delete (Tantivy takes both from any thread),
    /// write-locked to commit: a commit covers every batch added before it.
    writer: RwLock<IndexWriter>,
    /// Batches added so far, counted under the read lock.
    added: AtomicU64,
    /// What commits covered and lost (`writer::TenantIndex::add`).
    committed: Mutex<writer::Commits>,
    reader: IndexReader,
    fields: Fields,
}

pub struct TantivyIndex {
    opener: Opener,
    /// The same for every tenant: documents are made before their index is
    /// open.
    fields: Fields,
}

/// What opens a tenant's index, for a blocking closure: opening one (its
/// segments, a writer and its thread) and closing another takes
/// milliseconds, never on the runtime's threads.
#[derive(Clone)]
struct Opener {
    root: Arc<PathBuf>,
    open: Arc<Mutex<Open>>,
}

/// The open tenant indexes, each with when it was last asked for.
#[derive(Default)]
struct Open {
    tenants: HashMap<String, (Arc<TenantIndex>, u64)>,
    tick: u64,
}

impl Open {
    /// Closes least recently used indexes that nobody holds until there is
    /// room for one more. Those in use stay open, even past the bound: an
    /// index is closed only between two of its calls, never under one.
    fn make_room(&mut self, bound: usize) {
        while self.tenants.len() >= bound {
            let Some(oldest) = self
                .tenants
                .iter()
                .filter(|(_, (t, _))| Arc::strong_count(t) == 1)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(name, _)| name.clone())
            else {
                return;
            };
            // Dropped under the lock: its writer's directory lock is
            // released before anyone can open the tenant again.
            self.tenants.remove(&oldest);
        }
    }
}

impl TantivyIndex {
    pub fn open(root: impl Into<PathBuf>) -> Result<TantivyIndex, BackendError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io)?;
        Ok(TantivyIndex {
            opener: Opener {
                root: Arc::new(root),
                open: Arc::default(),
            },
            fields: schema().1,
        })
    }

    /// Runs `f` on the tenant's index, opened if need be, on a blocking
    /// thread.
    async fn with<T: Send + 'static>(
        &self,
        tenant: &str,
        f: impl FnOnce(&TenantIndex) -> Result<T, BackendError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let (opener, tenant) = (self.opener.clone(), tenant.to_string());
        blocking(move || f(opener.tenant(&tenant)?.as_ref())).await
    }
}

impl Opener {
    fn tenant(&self, tenant: &str) -> Result<Arc<TenantIndex>, BackendError> {
        let mut open = self.open.lock();
        open.tick += 1;
        let tick = open.tick;
        if let Some((t, used)) = open.tenants.get_mut(tenant) {
            *used = tick;
            return Ok(t.clone());
        }
        open.make_room(OPEN_TENANTS);
        let dir = self.root.join(tenant);
        std::fs::create_dir_all(&dir).map_err(io)?;
        let (schema, fields) = schema();
        let mmap = MmapDirectory::open(&dir).map_err(|e| BackendError::unavailable(Backend::Index, e))?;
        let index = Index::open_or_create(mmap, schema)?;
        let writer = index.writer_with_num_threads(1, WRITER_HEAP_BYTES)?;
        // Reloaded by hand after each commit: a record is searchable as soon
        // as `index` returns.
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let t = Arc::new(TenantIndex {
            index,
            writer: RwLock::new(writer),
            added: AtomicU64::new(0),
            committed: Mutex::new(writer::Commits::default()),
            reader,
            fields,
        });
        open.tenants.insert(tenant.to_string(), (t.clone(), tick));
        Ok(t)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(|| cpu::measure(cpu::Stage::Index, f))
        .await
        .map_err(|e| BackendError::unavailable(Backend::Index, e))?
}

#[async_trait]
impl SearchIndex for TantivyIndex {
    async fn provision(&self, tenant: &str) -> Result<(), BackendError> {
        self.with(tenant, |_| Ok(())).await
    }

    async fn index(&self, tenant: &str, rows: &[IndexRow<'_>]) -> Result<Vec<Rejected>, BackendError> {
        // Each id's delete term costs a lookup in every segment at commit:
        // only ids that may already be indexed pay it.
        let docs: Vec<_> = rows
            .iter()
            .map(|r| {
                let dedupe = r.may_exist.then(|| Term::from_field_text(self.fields.id, &r.record.id));
                (dedupe, self.fields.to_doc(r.record))
            })
            .collect();
        self.with(tenant, move |t| t.add(docs)).await?;
        Ok(Vec::new())
    }

    async fn search(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        cursor: Option<&Cursor>,
        limit: usize,
        exact_total: bool,
    ) -> Result<IdPage, BackendError> {
        let (query, filter, cursor) = (query.clone(), filter.clone(), cursor.cloned());
        self.with(tenant, move |t| {
            t.search(&query, &filter, cursor.as_ref(), limit, exact_total)
        })
        .await
    }

    async fn histogram(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        interval_ns: i64,
    ) -> Result<Vec<(i64, LevelCounts)>, BackendError> {
        let (query, filter) = (query.clone(), filter.clone());
        self.with(tenant, move |t| t.histogram(&query, &filter, interval_ns))
            .await
    }

    async fn terms(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        field: &TermsField,
        size: usize,
        interval_ns: Option<i64>,
    ) -> Result<Terms, BackendError> {
        let (query, filter, field) = (query.clone(), filter.clone(), field.clone());
        self.with(tenant, move |t| t.terms(&query, &filter, &field, size, interval_ns))
            .await
    }

    async fn numbers(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        key: &str,
        group: Option<(&TermsField, usize)>,
        interval_ns: Option<i64>,
    ) -> Result<Numbers, BackendError> {
        let (query, filter, key) = (query.clone(), filter.clone(), key.to_string());
        let group = group.map(|(f, n)| (f.clone(), n));
        self.with(tenant, move |t| {
            t.numbers(&query, &filter, &key, group.as_ref().map(|(f, n)| (f, *n)), interval_ns)
        })
        .await
    }

    async fn get(&self, tenant: &str, id: &str) -> Result<Option<LogRecord>, BackendError> {
        let id = id.to_string();
        self.with(tenant, move |t| t.get(&id)).await
    }

    async fn delete_before(&self, tenant: &str, before: i64, max: usize) -> Result<u64, BackendError> {
        if !self.opener.root.join(tenant).exists() {
            return Ok(0);
        }
        self.with(tenant, move |t| t.delete_before(before, max)).await
    }

    async fn drop_tenant(&self, tenant: &str) -> Result<(), BackendError> {
        // Taken out of the map first: nothing opens it again meanwhile
        // unless asked to, and the writer's lock goes with the last handle.
        let open = self.opener.open.lock().tenants.remove(tenant);
        drop(open);
        let dir = self.opener.root.join(tenant);
        tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        })
        .await
        .map_err(|e| BackendError::unavailable(Backend::Index, e))?
    }

    async fn stored_bytes(&self, tenant: &str) -> Result<u64, BackendError> {
        let dir = self.opener.root.join(tenant);
        tokio::task::spawn_blocking(move || {
            Ok(std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum())
        })
        .await
        .map_err(|e| BackendError::unavailable(Backend::Index, e))?
    }

    async fn ping(&self) -> Result<(), BackendError> {
        std::fs::metadata(self.opener.root.as_path()).map_err(io)?;
        Ok(())
    }
}
