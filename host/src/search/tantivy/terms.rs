//! Counting by a field (`SearchIndex::terms`): the search's matches as a
//! bit set per segment, then the field's terms (an attribute's: those that
//! start with `key=`) and their postings, counted against it. The work is
//! the field's postings, as a terms aggregation's is. A time series reads
//! the timestamp column of the matches, and the postings of the values
//! kept.

use std::collections::HashMap;

use tantivy::query::EnableScoring;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocSet, SegmentReader, TERMINATED, Term};

use super::{TenantIndex, io};
use crate::error::BackendError;
use crate::model::LogFilter;
use crate::search::query::Query;
use crate::search::terms::SeriesCounts;
use crate::search::{Terms, TermsField};

/// Most distinct values counted one by one; past it (a key with a value per
/// record, such as a request id), the others are counted in `other`, so
/// that memory stays bounded whatever the tenant's values.
const MAX_DISTINCT: usize = 100_000;

/// One segment's matches, and those of them that have the field.
struct Matched<'a> {
    seg: &'a SegmentReader,
    matches: BitSet,
    has: BitSet,
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
        let f = &self.fields;
        let searcher = self.reader.searcher();
        let query = self.build_query(q, filter)?;
        let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        let (tfield, prefix) = match field {
            TermsField::Service => (f.service, String::new()),
            TermsField::Level => (f.level, String::new()),
            TermsField::Attribute(key) => (f.attr, format!("{key}=")),
        };
        let mut counts: HashMap<String, u64> = HashMap::new();
        let (mut total, mut having, mut overflow) = (0u64, 0u64, 0u64);
        let mut matched = Vec::new();
        for seg in searcher.segment_readers() {
            let alive = seg.alive_bitset();
            let mut matches = BitSet::with_max_value(seg.max_doc());
            let mut scorer = weight.scorer(seg, 1.0)?;
            let mut doc = scorer.doc();
            let mut n = 0u64;
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    matches.insert(doc);
                    n += 1;
                }
                doc = scorer.advance();
            }
            total += n;
            if n == 0 {
                continue;
            }
            let mut has = BitSet::with_max_value(seg.max_doc());
            let inverted = seg.inverted_index(tfield)?;
            let dict = inverted.terms();
            let mut stream = if prefix.is_empty() {
                dict.stream().map_err(io)?
            } else {
                // Past every `key=…`: `>` follows `=`.
                let end = format!("{}>", &prefix[..prefix.len() - 1]);
                dict.range()
                    .ge(prefix.as_bytes())
                    .lt(end.as_bytes())
                    .into_stream()
                    .map_err(io)?
            };
            while stream.advance() {
                let Some(value) = std::str::from_utf8(stream.key())
                    .ok()
                    .and_then(|t| t.get(prefix.len()..))
                else {
                    continue;
                };
                let mut postings = inverted
                    .read_postings_from_terminfo(stream.value(), IndexRecordOption::Basic)
                    .map_err(io)?;
                let mut n = 0u64;
                let mut d = postings.doc();
                while d != TERMINATED {
                    if matches.contains(d) {
                        n += 1;
                        has.insert(d);
                    }
                    d = postings.advance();
                }
                if n == 0 {
                    continue;
                }
                if let Some(c) = counts.get_mut(value) {
                    *c += n;
                } else if counts.len() < MAX_DISTINCT {
                    counts.insert(value.to_string(), n);
                } else {
                    overflow += n;
                }
            }
            having += has.len() as u64;
            matched.push(Matched { seg, matches, has });
        }
        let mut t = Terms::top(total, counts.into_iter().collect(), size, total.saturating_sub(having));
        t.other += overflow;
        if let Some(interval) = interval {
            let values: Vec<String> = t.buckets.iter().map(|(v, _)| format!("{prefix}{v}")).collect();
            t.series = series(&matched, tfield, &values, interval.max(1))?;
        }
        Ok(t)
    }
}

/// The matches per bucket of `interval`: all of them, those of each of
/// `terms` (the field's terms of the values kept), and those without the
/// field.
fn series(
    matched: &[Matched<'_>],
    field: Field,
    terms: &[String],
    interval: i64,
) -> Result<Vec<crate::search::SeriesBucket>, BackendError> {
    let mut out = SeriesCounts::new(terms.len());
    let bucket = |ts: i64| ts - ts.rem_euclid(interval);
    for m in matched {
        let Ok(timestamps) = m.seg.fast_fields().i64("timestamp") else {
            continue;
        };
        let at = |doc| timestamps.first(doc).map(bucket);
        for doc in 0..m.seg.max_doc() {
            if !m.matches.contains(doc) {
                continue;
            }
            if let Some(b) = at(doc) {
                out.add_total(b, 1);
                if !m.has.contains(doc) {
                    out.add_missing(b, 1);
                }
            }
        }
        let inverted = m.seg.inverted_index(field)?;
        for (i, term) in terms.iter().enumerate() {
            let Some(mut postings) = inverted
                .read_postings(&Term::from_field_text(field, term), IndexRecordOption::Basic)
                .map_err(io)?
            else {
                continue;
            };
            let mut d = postings.doc();
            while d != TERMINATED {
                if m.matches.contains(d)
                    && let Some(b) = at(d)
                {
                    out.add_value(b, i, 1);
                }
                d = postings.advance();
            }
        }
    }
    Ok(out.finish())
}
