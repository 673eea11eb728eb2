//! Counting matches: the search's total, which stops past a bound, and
//! the histogram per time bucket and level (the `Buckets` collector).

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{EnableScoring, Query as TQuery};
use tantivy::{DocSet, Searcher, SegmentReader, TERMINATED};

use super::TenantIndex;
use crate::error::BackendError;
use crate::model::{Level, LevelCounts, LogFilter, STATS_MAX_BUCKETS};
use crate::search::query::Query;

impl TenantIndex {
    /// The matches per time bucket and level: one pass per level (the
    /// level is not a fast field), each reading the matches' timestamps.
    /// At most [`STATS_MAX_BUCKETS`] + 1 buckets are kept, so that the
    /// caller can tell there were more.
    pub(super) fn histogram(
        &self,
        q: &Query,
        filter: &LogFilter,
        interval: i64,
    ) -> Result<Vec<(i64, LevelCounts)>, BackendError> {
        let interval = interval.max(1);
        let searcher = self.reader.searcher();
        let mut buckets: std::collections::BTreeMap<i64, LevelCounts> = Default::default();
        for level in Level::ALL {
            if filter.level.is_some_and(|l| l != level) {
                continue;
            }
            let one = LogFilter {
                level: Some(level),
                ..filter.clone()
            };
            let query = self.build_query(q, &one)?;
            let counted = searcher.search(query.as_ref(), &Buckets { interval })?;
            for (b, n) in counted {
                if buckets.len() > STATS_MAX_BUCKETS && !buckets.contains_key(&b) {
                    continue;
                }
                buckets.entry(b).or_default().0[level as usize] += n;
            }
        }
        Ok(buckets.into_iter().collect())
    }

    /// How many documents match `query`, and whether counting stopped
    /// past `bound`. Segments are read newest first and each match is
    /// stepped to, so a query with many matches stops after `bound` of
    /// them (in the newest segments) instead of checking every one: a
    /// phrase is verified per candidate, and counting all of a common
    /// phrase's matches cost more than ranking a page of them.
    pub(super) fn count(
        searcher: &Searcher,
        query: &dyn TQuery,
        bound: Option<u64>,
    ) -> Result<(u64, bool), BackendError> {
        let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
        let mut segments: Vec<&SegmentReader> = searcher.segment_readers().iter().collect();
        segments.sort_by_key(|seg| {
            std::cmp::Reverse(seg.fast_fields().i64("timestamp").map_or(i64::MIN, |c| c.max_value()))
        });
        let mut n = 0u64;
        for seg in segments {
            let Some(bound) = bound else {
                n += u64::from(weight.count(seg)?);
                continue;
            };
            let alive = seg.alive_bitset();
            let mut scorer = weight.scorer(seg, 1.0)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    n += 1;
                    if n > bound {
                        return Ok((bound, true));
                    }
                }
                doc = scorer.advance();
            }
        }
        Ok((n, false))
    }
}

/// Counts matches per time bucket of `interval` ns (bucket start →
/// count) from the timestamp column. A segment keeps at most
/// [`STATS_MAX_BUCKETS`] + 1 buckets: a histogram asked of a wide range in
/// narrow buckets stays bounded in memory.
struct Buckets {
    interval: i64,
}

struct SegmentBuckets {
    interval: i64,
    timestamps: Option<tantivy::columnar::Column<i64>>,
    counts: HashMap<i64, u64>,
}

impl Collector for Buckets {
    type Fruit = HashMap<i64, u64>;
    type Child = SegmentBuckets;

    fn for_segment(&self, _: tantivy::SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<SegmentBuckets> {
        Ok(SegmentBuckets {
            interval: self.interval,
            timestamps: reader.fast_fields().i64("timestamp").ok(),
            counts: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<HashMap<i64, u64>>) -> tantivy::Result<HashMap<i64, u64>> {
        let mut all = HashMap::new();
        for fruit in fruits {
            for (b, n) in fruit {
                if all.len() <= STATS_MAX_BUCKETS || all.contains_key(&b) {
                    *all.entry(b).or_insert(0) += n;
                }
            }
        }
        Ok(all)
    }
}

impl SegmentCollector for SegmentBuckets {
    type Fruit = HashMap<i64, u64>;

    fn collect(&mut self, doc: tantivy::DocId, _: tantivy::Score) {
        let Some(ts) = self.timestamps.as_ref().and_then(|c| c.first(doc)) else {
            return;
        };
        let bucket = ts - ts.rem_euclid(self.interval);
        if self.counts.len() <= STATS_MAX_BUCKETS || self.counts.contains_key(&bucket) {
            *self.counts.entry(bucket).or_insert(0) += 1;
        }
    }

    fn harvest(self) -> HashMap<i64, u64> {
        self.counts
    }
}
