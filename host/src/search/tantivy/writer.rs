//! Writes to a tenant's index: documents added (replacing an earlier copy
//! of the same id) under group commit, and the oldest deleted in bounded
//! sweeps.

use std::ops::Bound;
use std::sync::atomic::Ordering;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::RangeQuery;
use tantivy::{TantivyDocument, Term};

use super::TenantIndex;
use crate::error::BackendError;

impl TenantIndex {
    /// Adds documents; those with a term first delete any earlier copy of
    /// the same id, so a replayed record replaces itself. Returns once a
    /// commit covers them and they are searchable.
    ///
    /// Group commit: batches of the same tenant added at once (its turns
    /// run side by side) share one commit. Every commit is a segment that
    /// merges rewrite again and again; the turn that finds a commit under
    /// way adds its documents meanwhile and is covered by the next one, or
    /// by a commit that started after its documents were in.
    pub(super) fn add(&self, docs: Vec<(Option<Term>, TantivyDocument)>) -> Result<(), BackendError> {
        let mine = {
            let w = self.writer.read();
            for (dedupe, doc) in docs {
                // Delete-then-add within one commit keeps the new copy.
                if let Some(term) = dedupe {
                    w.delete_term(term);
                }
                w.add_document(doc)?;
            }
            // Counted while the read lock is held: a commit (write lock)
            // that reads the count covers every batch it counts.
            self.added.fetch_add(1, Ordering::SeqCst) + 1
        };
        let mut committed = self.committed.lock();
        if *committed >= mine {
            return Ok(());
        }
        self.commit(&mut committed)
    }

    /// Commits everything added so far and makes it searchable. (A failed
    /// commit leaves `committed` as it was: each batch it held fails or
    /// is committed by its own caller's retry.)
    fn commit(&self, committed: &mut u64) -> Result<(), BackendError> {
        let mut w = self.writer.write();
        let upto = self.added.load(Ordering::SeqCst);
        w.commit()?;
        drop(w);
        self.reader.reload()?;
        *committed = upto;
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
        let mut committed = self.committed.lock();
        let mut w = self.writer.write();
        let added = self.added.load(Ordering::SeqCst);
        if added > *committed {
            w.commit()?;
            *committed = added;
        }
        self.reader.reload()?;
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
        w.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(total.min(max) as u64)
    }
}
