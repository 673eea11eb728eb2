//! Writes to a tenant's index: documents added (replacing an earlier copy
//! of the same id) under group commit, and the oldest deleted in bounded
//! sweeps.

use std::ops::Bound;
use std::sync::atomic::Ordering;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::RangeQuery;
use tantivy::{IndexWriter, TantivyDocument, Term};

use super::TenantIndex;
use crate::error::{Backend, BackendError};

/// The batches commits covered, and those a failed commit lost.
#[derive(Default)]
pub(super) struct Commits {
    /// Every batch up to this one is committed and searchable.
    upto: u64,
    /// Batches a failed commit rolled back, `(first, last)`: their
    /// callers fail (their entries are retried), even once a later commit
    /// has covered the numbers after them.
    lost: Vec<(u64, u64)>,
}

/// Lost ranges kept: a caller whose batch was lost is waiting for the
/// lock when the commit fails, so only the latest few can be asked about.
const LOST_KEPT: usize = 64;

impl Commits {
    fn lost(&self, batch: u64) -> bool {
        self.lost.iter().any(|(first, last)| (*first..=*last).contains(&batch))
    }
}

impl TenantIndex {
    /// Adds documents; those with a term first delete any earlier copy of
    /// the same id, so a replayed record replaces itself. Returns once a
    /// commit covers them and they are searchable.
    ///
    /// Group commit: batches of the same tenant added at once (its turns
    /// run side by side) share one commit. Every commit is a segment that
    /// merges rewrite again and again; a turn that waits while another's
    /// commit runs finds its documents covered by it when they were in
    /// before it started, and commits them itself otherwise.
    pub(super) fn add(&self, docs: Vec<(Option<Term>, TantivyDocument)>) -> Result<(), BackendError> {
        let dedupes = docs.iter().any(|(dedupe, _)| dedupe.is_some());
        let mine = if dedupes {
            // Alone: two batches replacing the same id at once would
            // interleave their deletes and adds and keep both copies.
            let w = self.writer.write();
            add_all(&w, docs)?;
            self.added.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            let w = self.writer.read();
            add_all(&w, docs)?;
            // Counted while the read lock is held: a commit (write lock)
            // that reads the count covers every batch it counts.
            self.added.fetch_add(1, Ordering::SeqCst) + 1
        };
        let mut commits = self.committed.lock();
        if commits.lost(mine) {
            return Err(BackendError::unavailable(
                Backend::Index,
                "a commit that held this batch failed and was rolled back",
            ));
        }
        if commits.upto >= mine {
            return Ok(());
        }
        let mut w = self.writer.write();
        let upto = self.added.load(Ordering::SeqCst);
        commit(&mut w, &mut commits, upto)?;
        drop(w);
        self.reader.reload()?;
        commits.upto = upto;
        Ok(())
    }

    /// Deletes the records before `before`, at most `max` of them: the
    /// oldest `max` are found first and deleted by id, so one sweep's work
    /// is bounded like the other stores'.
    pub(super) fn delete_before(&self, before: i64, max: usize) -> Result<u64, BackendError> {
        let range = RangeQuery::new(
            Bound::Unbounded,
            Bound::Excluded(Term::from_field_i64(self.fields.timestamp, before)),
        );
        // Counted with no batch added meanwhile, on a reader that has seen
        // every batch: one added but not yet committed or reloaded would
        // be deleted by the query and missing from the count.
        let mut commits = self.committed.lock();
        let mut w = self.writer.write();
        let added = self.added.load(Ordering::SeqCst);
        if added > commits.upto {
            commit(&mut w, &mut commits, added)?;
            self.reader.reload()?;
            commits.upto = added;
        } else {
            self.reader.reload()?;
        }
        let searcher = self.reader.searcher();
        let total = searcher.search(&range, &Count)?;
        if total == 0 {
            return Ok(0);
        }
        if total <= max {
            w.delete_query(Box::new(range))?;
        } else {
            let oldest = searcher.search(
                &range,
                &TopDocs::with_limit(max).order_by_fast_field::<i64>("timestamp", tantivy::Order::Asc),
            )?;
            for (_, addr) in oldest {
                w.delete_term(Term::from_field_text(self.fields.id, &self.doc_id(&searcher, addr)?));
            }
        }
        commit(&mut w, &mut commits, added)?;
        drop(w);
        self.reader.reload()?;
        Ok(total.min(max) as u64)
    }
}

fn add_all(w: &IndexWriter, docs: Vec<(Option<Term>, TantivyDocument)>) -> Result<(), BackendError> {
    for (dedupe, doc) in docs {
        // Delete-then-add within one commit keeps the new copy.
        if let Some(term) = dedupe {
            w.delete_term(term);
        }
        w.add_document(doc)?;
    }
    Ok(())
}

/// Commits what was added up to batch `upto`. A commit that fails may
/// have lost documents already handed to the indexing thread, and leaves
/// the writer without one: the writer is rolled back to the last commit
/// (a new one, with its threads) and the batches since are marked lost,
/// so that their callers fail and their entries are retried instead of
/// being acked by a later commit that no longer holds them.
fn commit(w: &mut IndexWriter, commits: &mut Commits, upto: u64) -> Result<(), BackendError> {
    match w.commit() {
        Ok(_) => Ok(()),
        Err(e) => {
            let rolled = w.rollback();
            commits.lost.push((commits.upto + 1, upto));
            if commits.lost.len() > LOST_KEPT {
                commits.lost.remove(0);
            }
            if let Err(r) = rolled {
                tracing::error!(error = %r, "index writer rollback failed after a failed commit");
            }
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::model::{Level, LogFilter, LogRecord};
    use crate::search::query::Query;
    use crate::search::tantivy::TantivyIndex;
    use crate::search::{IndexRow, SearchIndex};

    fn record(id: &str) -> LogRecord {
        LogRecord {
            id: id.to_string(),
            tenant: "acme".into(),
            service: "web".into(),
            level: Level::Info,
            timestamp: 1_700_000_000_000_000_000,
            received_at: 1_700_000_000_000_000_000,
            message: format!("replayed {id}"),
            full_log: String::new(),
            language: None,
            attributes: Vec::new(),
            raw_path: None,
        }
    }

    /// Two turns replaying the same record at once (a shipper's retry
    /// beside its first try) keep one copy of it: their deletes and adds
    /// do not interleave.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_replays_keep_one_copy_of_each_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Arc::new(TantivyIndex::open(dir.path()).expect("open"));
        index.provision("acme").await.expect("provision");
        const ROUNDS: usize = 200;
        for _ in 0..ROUNDS {
            let id = ulid::Ulid::new().to_string();
            let turns = (0..2).map(|_| {
                let (index, id) = (index.clone(), id.clone());
                tokio::spawn(async move {
                    let r = record(&id);
                    let rows = [IndexRow {
                        record: &r,
                        may_exist: true,
                    }];
                    index.index("acme", &rows).await.expect("index");
                })
            });
            for t in futures::future::join_all(turns).await {
                t.expect("turn");
            }
        }
        let query = Query::parse("").expect("query");
        let page = index
            .search("acme", &query, &LogFilter::default(), None, 1, true)
            .await
            .expect("search");
        assert_eq!(page.total, ROUNDS as u64, "copies of records replayed side by side");
    }

    /// Past `OPEN_TENANTS`, the least recently used indexes close: one in
    /// use stays open, and a closed one opens again with what it held.
    #[tokio::test]
    async fn past_the_bound_idle_indexes_close_and_reopen_with_their_records() {
        use super::super::OPEN_TENANTS;
        let dir = tempfile::tempdir().expect("tempdir");
        let index = TantivyIndex::open(dir.path()).expect("open");
        let held = index.opener.tenant("held").expect("open held");
        for i in 0..OPEN_TENANTS * 2 {
            let id = ulid::Ulid::new().to_string();
            let r = record(&id);
            let rows = [IndexRow {
                record: &r,
                may_exist: false,
            }];
            index.index(&format!("t{i}"), &rows).await.expect("index");
            assert!(index.opener.open.lock().tenants.len() <= OPEN_TENANTS);
        }
        let open = index.opener.open.lock().tenants.keys().cloned().collect::<Vec<_>>();
        assert!(
            open.contains(&"held".to_string()),
            "an index in use was closed: {open:?}"
        );
        assert!(
            !open.contains(&"t0".to_string()),
            "the least recently used stayed open: {open:?}"
        );
        drop(held);
        let query = Query::parse("").expect("query");
        for tenant in ["t0", "t1", "held"] {
            let page = index
                .search(tenant, &query, &LogFilter::default(), None, 10, true)
                .await
                .expect("search");
            let want = u64::from(tenant != "held");
            assert_eq!(page.total, want, "{tenant} after reopening");
        }
    }
}
