//! Newest-first search: a page read in time slices from the newest back
//! until it is full, a narrow slice as an exact-size bit set (`TimeSlice`).

use std::ops::Bound;

use tantivy::collector::TopDocs;
use tantivy::query::{
    BitSetDocSet, BooleanQuery, ConstScorer, EmptyScorer, EnableScoring, Explanation, Occur, Query as TQuery,
    RangeQuery, Scorer, Weight,
};
use tantivy::{BitSet, DocAddress, Searcher, SegmentReader, Term};

use super::TenantIndex;
use crate::error::BackendError;
use crate::model::{Cursor, LogFilter, TOTAL_BOUND, id_sort_key};
use crate::search::IdPage;
use crate::search::query::Query;

/// A search reads the newest hour first, then the rest of the newest
/// day, then everything older, until its page is full
/// (docs/PERFORMANCE.md, "Reads on one big tenant").
const SLICES_NS: [i64; 2] = [3_600_000_000_000, 86_400_000_000_000];

/// (timestamp, high and low 64 bits of the id): newest first, ties broken
/// by id exactly as the metadata store does.
type SortKey = (i64, u64, u64);

impl TenantIndex {
    /// Top `n` matches of `query`, newest first by (timestamp, id).
    fn top(
        &self,
        searcher: &Searcher,
        query: &dyn TQuery,
        n: usize,
    ) -> Result<Vec<(SortKey, DocAddress)>, BackendError> {
        let collector = TopDocs::with_limit(n.max(1)).order_by(|seg: &SegmentReader| {
            let ff = seg.fast_fields();
            let ts = ff.i64("timestamp").ok().map(|c| c.first_or_default_col(i64::MIN));
            let hi = ff.u64("id_hi").ok().map(|c| c.first_or_default_col(0));
            let lo = ff.u64("id_lo").ok().map(|c| c.first_or_default_col(0));
            move |doc| {
                (
                    ts.as_ref().map_or(i64::MIN, |c| c.get_val(doc)),
                    hi.as_ref().map_or(0, |c| c.get_val(doc)),
                    lo.as_ref().map_or(0, |c| c.get_val(doc)),
                )
            }
        });
        Ok(searcher.search(query, &collector)?)
    }

    /// The oldest and the newest timestamp in the index, if it has any
    /// document (deleted ones may widen them).
    fn time_bounds(searcher: &Searcher) -> Option<(i64, i64)> {
        searcher
            .segment_readers()
            .iter()
            .filter(|seg| seg.num_docs() > 0)
            .filter_map(|seg| seg.fast_fields().i64("timestamp").ok())
            .map(|c| (c.min_value(), c.max_value()))
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
    }

    /// `query` within `[lo, hi)` of the timestamp.
    fn slice(&self, query: &dyn TQuery, lo: i64, hi: i64) -> BooleanQuery {
        BooleanQuery::new(vec![
            (Occur::Must, query.box_clone()),
            (Occur::Must, Box::new(TimeSlice { lo, hi })),
        ])
    }

    /// Newest first: the matches are read in time slices from the newest
    /// back ([`SLICES_NS`]) until the page is full. A term in most logs
    /// fills a page from the newest hour instead of ranking every match; a
    /// rare one takes three passes. The total stops past [`TOTAL_BOUND`]
    /// unless `exact_total` ([`Self::count`]).
    pub(super) fn search(
        &self,
        q: &Query,
        filter: &LogFilter,
        cursor: Option<&Cursor>,
        limit: usize,
        exact_total: bool,
    ) -> Result<IdPage, BackendError> {
        let query = self.build_query(q, filter)?;
        // One searcher for the whole page: the addresses it finds are read
        // back from it, and the total counts the same documents.
        let searcher = self.reader.searcher();
        let Some((oldest, newest)) = Self::time_bounds(&searcher) else {
            return Ok(IdPage::default());
        };
        let floor = filter.from.map_or(oldest, |f| f.max(oldest));
        let top = filter
            .to
            .map_or(newest.saturating_add(1), |t| t.min(newest.saturating_add(1)));
        // The newest hour, the rest of the newest day, then all the rest.
        let slices = |from_top: i64| {
            let mut cuts = SLICES_NS
                .iter()
                .map(|w| from_top.saturating_sub(*w).max(floor))
                .collect::<Vec<_>>();
            cuts.push(floor);
            let mut hi = from_top;
            cuts.into_iter().filter_map(move |lo| {
                let slice = (lo < hi).then_some((lo, hi));
                hi = hi.min(lo);
                slice
            })
        };

        let (total, total_is_lower_bound) =
            Self::count(&searcher, query.as_ref(), (!exact_total).then_some(TOTAL_BOUND))?;

        if total == 0 {
            return Ok(IdPage::default());
        }
        // A total counted to its end (at most the bound) means few
        // matches: one pass ranks them all, where slices would each scan
        // the whole range again to find none.
        let one_pass = !total_is_lower_bound && total <= TOTAL_BOUND;
        let cursor_key = cursor.map(|c| (c.timestamp, id_sort_key(&c.id)));
        // After a cursor, the newest slice ends just past its timestamp:
        // records at that very timestamp but after it in id order are
        // skipped below.
        let page_top = cursor.map_or(top, |c| c.timestamp.saturating_add(1).min(top));
        let mut admitted = Vec::new();
        // `None`: the query as it is, with no time range to drive (a range
        // over most of the index costs more than it narrows).
        let page_slices: Vec<Option<(i64, i64)>> = match (one_pass, cursor) {
            (true, None) => vec![None],
            (true, Some(_)) => vec![(floor < page_top).then_some((floor, page_top))]
                .into_iter()
                .flatten()
                .map(Some)
                .collect(),
            (false, _) => slices(page_top).map(Some).collect(),
        };
        for slice in page_slices {
            let sliced: Box<dyn TQuery> = match slice {
                Some((lo, hi)) => Box::new(self.slice(query.as_ref(), lo, hi)),
                None => query.box_clone(),
            };
            let mut want = limit + 1 - admitted.len();
            loop {
                let found = self.top(&searcher, sliced.as_ref(), want)?;
                let fetched = found.len();
                let fresh: Vec<_> = found
                    .into_iter()
                    .filter(|((ts, hi, lo), _)| {
                        cursor_key
                            .is_none_or(|(cts, cid)| (*ts, (u128::from(*hi) << 64) | u128::from(*lo)) < (cts, cid))
                    })
                    .collect();
                if fresh.len() >= want || fetched < want {
                    admitted.extend(fresh.into_iter().take(want));
                    break;
                }
                want = want.saturating_mul(2);
            }
            if admitted.len() > limit {
                break;
            }
        }
        let has_more = admitted.len() > limit;
        let mut ids = Vec::with_capacity(limit.min(admitted.len()));
        let mut last = None;
        for ((ts, _, _), addr) in admitted.into_iter().take(limit) {
            let id = self.doc_id(&searcher, addr)?;
            last = Some((ts, id.clone()));
            ids.push(id);
        }
        let next_cursor = if has_more {
            last.map(|(timestamp, id)| Cursor { timestamp, id })
        } else {
            None
        };
        Ok(IdPage {
            total,
            total_is_lower_bound,
            ids,
            next_cursor,
        })
    }
}

/// The documents stamped within `[lo, hi)`, found with one scan of the
/// timestamp column per segment into a bit set. Unlike a range query,
/// whose cost tantivy guesses at most of the segment, its cost is its
/// true size: a narrow slice drives an intersection, so a common term or
/// a phrase is only checked on the slice's documents.
#[derive(Clone, Debug)]
struct TimeSlice {
    lo: i64,
    hi: i64,
}

impl TQuery for TimeSlice {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for TimeSlice {
    fn scorer(&self, reader: &SegmentReader, boost: tantivy::Score) -> tantivy::Result<Box<dyn Scorer>> {
        let column = reader.fast_fields().i64("timestamp")?;
        let (min, max) = (column.min_value(), column.max_value());
        if self.lo >= self.hi || max < self.lo || min >= self.hi {
            return Ok(Box::new(EmptyScorer));
        }
        // Most of the segment: a bit set would cost more than it saves,
        // and another clause drives the intersection anyway.
        let span = (max as i128 - min as i128).max(1);
        let covered = (self.hi.min(max) as i128 - self.lo.max(min) as i128).max(0);
        if covered * 4 > span {
            let field = reader.schema().get_field("timestamp")?;
            let ts = |v| Term::from_field_i64(field, v);
            let range = RangeQuery::new(Bound::Included(ts(self.lo)), Bound::Excluded(ts(self.hi)));
            return range
                .weight(EnableScoring::disabled_from_schema(reader.schema()))?
                .scorer(reader, boost);
        }
        let mut docs = Vec::new();
        column.get_docids_for_value_range(self.lo..=self.hi - 1, 0..reader.max_doc(), &mut docs);
        let mut bits = BitSet::with_max_value(reader.max_doc());
        for d in docs {
            bits.insert(d);
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(bits), boost)))
    }

    fn explain(&self, _: &SegmentReader, _: tantivy::DocId) -> tantivy::Result<Explanation> {
        Ok(Explanation::new("time slice", 1.0))
    }
}
