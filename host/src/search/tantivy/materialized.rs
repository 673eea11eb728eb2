//! A query whose matches in a segment are read into a bit set first.
//!
//! Tantivy 0.27's phrase scorer stands on its first match as soon as it
//! is made, and an exclusion (`MustNot`) then asks it about the first
//! document, behind where it stands: a debug assertion in Tantivy, and in
//! a release build an answer from a scorer already past its end. A `NOT`
//! whose part holds a phrase (`-"connection reset"`, found by the
//! differential test of docs/QUERY.md) goes through here, so that the
//! exclusion asks a bit set, which answers for any document. The
//! exclusion reads every match of its part anyway.

use tantivy::query::{BitSetDocSet, ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{BitSet, DocId, DocSet, Score, SegmentReader, TERMINATED};

#[derive(Debug)]
pub(super) struct Materialized(pub(super) Box<dyn Query>);

impl Clone for Materialized {
    fn clone(&self) -> Self {
        Materialized(self.0.box_clone())
    }
}

impl Query for Materialized {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(MaterializedWeight(self.0.weight(scoring)?)))
    }
}

struct MaterializedWeight(Box<dyn Weight>);

impl Weight for MaterializedWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut bits = BitSet::with_max_value(reader.max_doc());
        let mut inner = self.0.scorer(reader, boost)?;
        let mut doc: DocId = inner.doc();
        while doc != TERMINATED {
            bits.insert(doc);
            doc = inner.advance();
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(bits), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.0.explain(reader, doc)
    }
}
