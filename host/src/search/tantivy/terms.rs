//! Counting by a field (`SearchIndex::terms`): the search's matches as a
//! bit set per segment, then the field's terms (an attribute's: those that
//! start with `key=`) of every segment merged in order, each value's
//! postings counted against the matches. A value's count is whole when it
//! is read, so only the `size` best are kept (exact, in memory of `size`).
//! The work is the field's postings, as a terms aggregation's is. A time
//! series reads the timestamp column of the matches, and the postings of
//! the values kept.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use tantivy::index::InvertedIndexReader;
use tantivy::postings::{SegmentPostings, TermInfo};
use tantivy::query::{EnableScoring, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::termdict::TermMerger;
use tantivy::{BitSet, DocId, DocSet, Searcher, SegmentReader, TERMINATED, Term};

use super::schema::NUMBERS;
use super::{TenantIndex, io};
use crate::error::BackendError;
use crate::model::LogFilter;
use crate::search::query::Query;
use crate::search::terms::SeriesCounts;
use crate::search::{Terms, TermsField};

/// One segment's matches.
pub(super) struct Matched<'a> {
    pub(super) seg: &'a SegmentReader,
    /// The inverted index of the field read.
    pub(super) inverted: Arc<InvertedIndexReader>,
    pub(super) matches: BitSet,
    /// The first and the last match: a range of time is a run of
    /// documents (segments are written, and merged, in order), which a
    /// term's postings skip to rather than read through.
    pub(super) first: DocId,
    pub(super) last: DocId,
}

/// Calls `f` with each match of segment `m` that holds the term `info`
/// (of the field `m.inverted` reads).
pub(super) fn each_match(m: &Matched<'_>, info: &TermInfo, f: impl FnMut(DocId)) -> Result<(), BackendError> {
    let mut postings = m
        .inverted
        .read_postings_from_terminfo(info, IndexRecordOption::Basic)
        .map_err(io)?;
    each_in(m, &mut postings, f);
    Ok(())
}

/// Calls `f` with each match of segment `m` that `postings` holds,
/// skipping to the matches' run and stopping past it.
pub(super) fn each_in(m: &Matched<'_>, postings: &mut SegmentPostings, mut f: impl FnMut(DocId)) {
    // `seek` wants a target at or past where the postings are.
    let mut d = postings.doc();
    if d < m.first {
        d = postings.seek(m.first);
    }
    while d != TERMINATED && d <= m.last {
        if m.matches.contains(d) {
            f(d);
        }
        d = postings.advance();
    }
}

/// The search's matches in every segment that has some, and how many.
pub(super) fn matched<'s>(
    searcher: &'s Searcher,
    weight: &dyn Weight,
    field: Field,
) -> Result<(u64, Vec<Matched<'s>>), BackendError> {
    let mut total = 0u64;
    let mut matched = Vec::new();
    for seg in searcher.segment_readers() {
        let alive = seg.alive_bitset();
        let mut matches = BitSet::with_max_value(seg.max_doc());
        let mut scorer = weight.scorer(seg, 1.0)?;
        let mut doc = scorer.doc();
        let mut n = 0u64;
        let (mut first, mut last) = (TERMINATED, 0);
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                matches.insert(doc);
                n += 1;
                first = first.min(doc);
                last = doc;
            }
            doc = scorer.advance();
        }
        total += n;
        if n > 0 {
            matched.push(Matched {
                seg,
                inverted: seg.inverted_index(field)?,
                matches,
                first,
                last,
            });
        }
    }
    Ok((total, matched))
}

/// A value kept, ordered so that the worst one kept is the heap's top:
/// fewer matches, then a later value.
#[derive(PartialEq, Eq)]
struct Kept(u64, String);

impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.cmp(&self.0).then_with(|| self.1.cmp(&other.1))
    }
}

impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl TenantIndex {
    pub(super) fn terms(
        &self,
        q: &Query,
        filter: &LogFilter,
        field: &TermsField,
        size: usize,
        interval: Option<i64>,
    ) -> Result<Terms, BackendError> {
        self.terms_in(&self.reader.searcher(), q, filter, field, size, interval)
    }

    /// [`TenantIndex::terms`] on `searcher`'s snapshot.
    pub(super) fn terms_in(
        &self,
        searcher: &Searcher,
        q: &Query,
        filter: &LogFilter,
        field: &TermsField,
        size: usize,
        interval: Option<i64>,
    ) -> Result<Terms, BackendError> {
        let f = &self.fields;
        let query = self.build_query(q, filter)?;
        let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
        let (tfield, prefix) = match field {
            TermsField::Service => (f.service, String::new()),
            TermsField::Level => (f.level, String::new()),
            TermsField::Attribute(key) => (f.attr, format!("{key}=")),
            TermsField::AttributeKeys => (f.attr, String::new()),
        };
        let keys = matches!(field, TermsField::AttributeKeys);
        let (total, matched) = matched(searcher, weight.as_ref(), tfield)?;
        // Past every `key=…`: `>` follows `=`.
        let end = prefix
            .strip_suffix('=')
            .map(|key| format!("{key}>"))
            .unwrap_or_default();
        let mut streams = Vec::with_capacity(matched.len());
        for m in &matched {
            let dict = m.inverted.terms();
            streams.push(if keys {
                // Past the numbers' terms (`schema::NUMBERS`).
                dict.range().ge([NUMBERS as u8 + 1]).into_stream().map_err(io)?
            } else if prefix.is_empty() {
                dict.stream().map_err(io)?
            } else {
                dict.range()
                    .ge(prefix.as_bytes())
                    .lt(end.as_bytes())
                    .into_stream()
                    .map_err(io)?
            });
        }
        let mut merged = TermMerger::new(streams);
        let mut kept: BinaryHeap<Kept> = BinaryHeap::with_capacity(size + 1);
        let mut other = 0u64;
        let mut keep = |candidate: Kept| {
            if kept.len() < size {
                kept.push(candidate);
            } else if kept.peek().is_some_and(|worst| candidate < *worst) {
                if let Some(out) = kept.pop() {
                    other += out.0;
                }
                kept.push(candidate);
            } else {
                other += candidate.0;
            }
        };
        // A value's terms are side by side in order: a value of a field is
        // one term, an attribute key's terms all start with `key=`.
        let mut run: Option<Kept> = None;
        let mut has: Vec<BitSet> = matched
            .iter()
            .map(|m| BitSet::with_max_value(m.seg.max_doc()))
            .collect();
        while merged.advance() {
            let Some(value) = std::str::from_utf8(merged.key())
                .ok()
                .and_then(|t| {
                    if keys {
                        t.split_once('=').map(|(k, _)| k)
                    } else {
                        t.get(prefix.len()..)
                    }
                })
                .map(str::to_string)
            else {
                continue;
            };
            let mut n = 0u64;
            for (i, info) in merged.current_segment_ords_and_term_infos() {
                each_match(&matched[i], &info, |d| {
                    n += 1;
                    has[i].insert(d);
                })?;
            }
            match &mut run {
                Some(r) if r.1 == value => r.0 += n,
                _ => {
                    if let Some(done) = run.take().filter(|r| r.0 > 0) {
                        keep(done);
                    }
                    run = Some(Kept(n, value));
                }
            }
        }
        if let Some(done) = run.take().filter(|r| r.0 > 0) {
            keep(done);
        }
        drop(merged);
        let having: u64 = has.iter().map(|h| h.len() as u64).sum();
        let buckets: Vec<(String, u64)> = kept.into_sorted_vec().into_iter().map(|Kept(n, v)| (v, n)).collect();
        let mut t = Terms::top(total, buckets, size, total.saturating_sub(having));
        t.other += other;
        if let Some(interval) = interval.filter(|_| !keys) {
            let values: Vec<String> = t.buckets.iter().map(|(v, _)| format!("{prefix}{v}")).collect();
            t.series = series(&matched, &has, tfield, &values, interval.max(1))?;
        }
        Ok(t)
    }
}

/// The matches per bucket of `interval`: all of them, those of each of
/// `terms` (the field's terms of the values kept), and those without the
/// field (not in the segment's `has`).
fn series(
    matched: &[Matched<'_>],
    has: &[BitSet],
    field: Field,
    terms: &[String],
    interval: i64,
) -> Result<Vec<crate::search::SeriesBucket>, BackendError> {
    let mut out = SeriesCounts::new(terms.len());
    let bucket = |ts: i64| ts - ts.rem_euclid(interval);
    for (m, has) in matched.iter().zip(has) {
        let Ok(timestamps) = m.seg.fast_fields().i64("timestamp") else {
            continue;
        };
        let at = |doc| timestamps.first(doc).map(bucket);
        for doc in m.first..=m.last {
            if !m.matches.contains(doc) {
                continue;
            }
            if let Some(b) = at(doc) {
                out.add_total(b, 1);
                if !has.contains(doc) {
                    out.add_missing(b, 1);
                }
            }
        }
        for (i, term) in terms.iter().enumerate() {
            let Some(mut postings) = m
                .inverted
                .read_postings(&Term::from_field_text(field, term), IndexRecordOption::Basic)
                .map_err(io)?
            else {
                continue;
            };
            each_in(m, &mut postings, |d| {
                if let Some(b) = at(d) {
                    out.add_value(b, i, 1);
                }
            });
        }
    }
    Ok(out.finish())
}
