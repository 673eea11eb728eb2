//! Writes to a tenant's index: documents added (replacing an earlier copy
//! of the same id) and the oldest deleted in bounded sweeps.

use std::ops::Bound;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::RangeQuery;
use tantivy::{TantivyDocument, Term};

use super::TenantIndex;
use crate::error::BackendError;

impl TenantIndex {
    /// Adds documents; those with a term first delete any earlier copy of
    /// the same id, so a replayed record replaces itself.
    pub(super) fn add(&self, docs: Vec<(Option<Term>, TantivyDocument)>) -> Result<(), BackendError> {
        let mut w = self.writer.lock();
        for (dedupe, doc) in docs {
            // Delete-then-add within one commit keeps the new copy.
            if let Some(term) = dedupe {
                w.delete_term(term);
            }
            w.add_document(doc)?;
        }
        w.commit()?;
        drop(w);
        self.reader.reload()?;
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
        // Counted under the writer's lock, on a reader that has seen every
        // commit: a batch committed just before, and not yet reloaded, would
        // be deleted by the query and missing from the count.
        let mut w = self.writer.lock();
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
