//! The embedded index: one Tantivy index per tenant under
//! `<data>/index/<tenant>`, so tenants never share a segment.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, BitSetDocSet, BooleanQuery, ConstScorer, EmptyScorer, EnableScoring, Explanation, Occur, PhraseQuery,
    Query as TQuery, RangeQuery, Scorer, TermQuery, Weight,
};
use tantivy::schema::{FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    BitSet, DocAddress, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, SegmentReader, TERMINATED,
    TantivyDocument, Term,
};

use super::query::{Matcher, Query};
use super::{IdPage, IndexRow, Rejected, SearchIndex};
use crate::error::{Backend, BackendError, ErrorKind};
use crate::model::{
    Cursor, Level, LevelCounts, LogFilter, LogRecord, STATS_MAX_BUCKETS, TOTAL_BOUND, id_sort_key, record_from_json,
    record_to_json,
};

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
/// A search reads the newest hour first, then the rest of the newest
/// day, then everything older, until its page is full
/// (docs/PERFORMANCE.md, "Reads on one big tenant").
const SLICES_NS: [i64; 2] = [3_600_000_000_000, 86_400_000_000_000];

/// (timestamp, high and low 64 bits of the id): newest first, ties broken
/// by id exactly as the metadata store does.
type SortKey = (i64, u64, u64);

struct Fields {
    id: Field,
    id_hi: Field,
    id_lo: Field,
    service: Field,
    level: Field,
    timestamp: Field,
    message: Field,
    full_log: Field,
    attr: Field,
    source: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        id_hi: b.add_u64_field("id_hi", FAST),
        id_lo: b.add_u64_field("id_lo", FAST),
        service: b.add_text_field("service", STRING),
        level: b.add_text_field("level", STRING),
        timestamp: b.add_i64_field("timestamp", INDEXED | FAST),
        message: b.add_text_field("message", TEXT),
        full_log: b.add_text_field("full_log", TEXT),
        // `key=value`, one value per attribute: exact attribute matches.
        attr: b.add_text_field("attr", STRING),
        source: b.add_bytes_field("source", STORED),
    };
    (b.build(), fields)
}

struct TenantIndex {
    index: Index,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    fields: Fields,
}

pub struct TantivyIndex {
    root: PathBuf,
    tenants: Mutex<HashMap<String, Arc<TenantIndex>>>,
}

impl TantivyIndex {
    pub fn open(root: impl Into<PathBuf>) -> Result<TantivyIndex, BackendError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io)?;
        Ok(TantivyIndex {
            root,
            tenants: Mutex::new(HashMap::new()),
        })
    }

    fn tenant(&self, tenant: &str) -> Result<Arc<TenantIndex>, BackendError> {
        let mut map = self.tenants.lock();
        if let Some(t) = map.get(tenant) {
            return Ok(t.clone());
        }
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
            writer: Mutex::new(writer),
            reader,
            fields,
        });
        map.insert(tenant.to_string(), t.clone());
        Ok(t)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackendError::unavailable(Backend::Index, e))?
}

impl TenantIndex {
    fn analyzer(&self) -> Result<TextAnalyzer, BackendError> {
        self.index
            .tokenizers()
            .get("default")
            .ok_or_else(|| corrupt("default tokenizer missing"))
    }

    fn tokens(&self, text: &str) -> Result<Vec<String>, BackendError> {
        let mut analyzer = self.analyzer()?;
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push(t.text.clone());
        }
        Ok(out)
    }

    fn text_query(&self, text: &str) -> Result<Box<dyn TQuery>, BackendError> {
        let tokens = self.tokens(text)?;
        let f = &self.fields;
        let per_field = |field: Field| -> Box<dyn TQuery> {
            let terms: Vec<Term> = tokens.iter().map(|t| Term::from_field_text(field, t)).collect();
            if terms.len() == 1 {
                Box::new(TermQuery::new(terms[0].clone(), IndexRecordOption::Basic))
            } else {
                Box::new(PhraseQuery::new(terms))
            }
        };
        if tokens.is_empty() {
            // Only punctuation: matches nothing, as in every full-text engine.
            return Ok(Box::new(BooleanQuery::new(vec![])));
        }
        Ok(Box::new(BooleanQuery::new(vec![
            (Occur::Should, per_field(f.message)),
            (Occur::Should, per_field(f.full_log)),
        ])))
    }

    fn build_query(&self, q: &Query, filter: &LogFilter) -> Result<Box<dyn TQuery>, BackendError> {
        let f = &self.fields;
        let exact = |field: Field, v: &str| -> Box<dyn TQuery> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, v),
                IndexRecordOption::Basic,
            ))
        };
        let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = vec![(Occur::Must, Box::new(AllQuery))];
        for c in &q.clauses {
            let sub = match &c.matcher {
                Matcher::Text(t) => self.text_query(t)?,
                Matcher::Service(s) => exact(f.service, s),
                Matcher::Level(l) => exact(f.level, l.as_str()),
                Matcher::Attribute { key, value } => exact(f.attr, &format!("{key}={value}")),
            };
            clauses.push((if c.negated { Occur::MustNot } else { Occur::Must }, sub));
        }
        if let Some(s) = &filter.service {
            clauses.push((Occur::Must, exact(f.service, s)));
        }
        if let Some(l) = filter.level {
            clauses.push((Occur::Must, exact(f.level, l.as_str())));
        }
        if filter.from.is_some() || filter.to.is_some() {
            let lo = filter.from.map_or(Bound::Unbounded, |v| {
                Bound::Included(Term::from_field_i64(f.timestamp, v))
            });
            let hi = filter.to.map_or(Bound::Unbounded, |v| {
                Bound::Excluded(Term::from_field_i64(f.timestamp, v))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    fn to_doc(&self, r: &LogRecord) -> TantivyDocument {
        let f = &self.fields;
        let key = id_sort_key(&r.id);
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &r.id);
        doc.add_u64(f.id_hi, (key >> 64) as u64);
        doc.add_u64(f.id_lo, key as u64);
        doc.add_text(f.service, &r.service);
        doc.add_text(f.level, r.level.as_str());
        doc.add_i64(f.timestamp, r.timestamp);
        doc.add_text(f.message, &r.message);
        doc.add_text(f.full_log, &r.full_log);
        for (k, v) in &r.attributes {
            doc.add_text(f.attr, format!("{k}={v}"));
        }
        doc.add_bytes(f.source, &record_to_json(r));
        doc
    }

    /// Adds documents; those with a term first delete any earlier copy of
    /// the same id, so a replayed record replaces itself.
    fn add(&self, docs: Vec<(Option<Term>, TantivyDocument)>) -> Result<(), BackendError> {
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
    fn delete_before(&self, before: i64, max: usize) -> Result<u64, BackendError> {
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

    /// The id of the document at `addr` of `searcher`: an address is only
    /// good in the searcher that found it (a commit between two searchers
    /// renumbers segments).
    fn doc_id(&self, searcher: &Searcher, addr: DocAddress) -> Result<String, BackendError> {
        let doc: TantivyDocument = searcher.doc(addr)?;
        doc.get_first(self.fields.id)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| corrupt("document without id"))
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

    /// The matches per time bucket and level: one pass per level (the
    /// level is not a fast field), each reading the matches' timestamps.
    /// At most [`STATS_MAX_BUCKETS`] + 1 buckets are kept, so that the
    /// caller can tell there were more.
    fn histogram(&self, q: &Query, filter: &LogFilter, interval: i64) -> Result<Vec<(i64, LevelCounts)>, BackendError> {
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
    fn count(searcher: &Searcher, query: &dyn TQuery, bound: Option<u64>) -> Result<(u64, bool), BackendError> {
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
    fn search(
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

    fn get(&self, id: &str) -> Result<Option<LogRecord>, BackendError> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(Term::from_field_text(self.fields.id, id), IndexRecordOption::Basic);
        let Some((_, addr)) = searcher
            .search(&q, &TopDocs::with_limit(1).order_by_score())?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let doc: TantivyDocument = searcher.doc(addr)?;
        let src = doc
            .get_first(self.fields.source)
            .and_then(|v| v.as_bytes())
            .ok_or_else(|| corrupt("document without source"))?;
        record_from_json(src).map(Some).map_err(corrupt)
    }
}

#[async_trait]
impl SearchIndex for TantivyIndex {
    async fn provision(&self, tenant: &str) -> Result<(), BackendError> {
        self.tenant(tenant).map(|_| ())
    }

    async fn index(&self, tenant: &str, rows: &[IndexRow<'_>]) -> Result<Vec<Rejected>, BackendError> {
        let t = self.tenant(tenant)?;
        // Each id's delete term costs a lookup in every segment at commit:
        // only ids that may already be indexed pay it.
        let docs: Vec<_> = rows
            .iter()
            .map(|r| {
                let dedupe = r.may_exist.then(|| Term::from_field_text(t.fields.id, &r.record.id));
                (dedupe, t.to_doc(r.record))
            })
            .collect();
        blocking(move || t.add(docs)).await?;
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
        let t = self.tenant(tenant)?;
        let (query, filter, cursor) = (query.clone(), filter.clone(), cursor.cloned());
        blocking(move || t.search(&query, &filter, cursor.as_ref(), limit, exact_total)).await
    }

    async fn histogram(
        &self,
        tenant: &str,
        query: &Query,
        filter: &LogFilter,
        interval_ns: i64,
    ) -> Result<Vec<(i64, LevelCounts)>, BackendError> {
        let t = self.tenant(tenant)?;
        let (query, filter) = (query.clone(), filter.clone());
        blocking(move || t.histogram(&query, &filter, interval_ns)).await
    }

    async fn get(&self, tenant: &str, id: &str) -> Result<Option<LogRecord>, BackendError> {
        let t = self.tenant(tenant)?;
        let id = id.to_string();
        blocking(move || t.get(&id)).await
    }

    async fn delete_before(&self, tenant: &str, before: i64, max: usize) -> Result<u64, BackendError> {
        if !self.root.join(tenant).exists() {
            return Ok(0);
        }
        let t = self.tenant(tenant)?;
        blocking(move || t.delete_before(before, max)).await
    }

    async fn drop_tenant(&self, tenant: &str) -> Result<(), BackendError> {
        // Taken out of the map first: nothing opens it again meanwhile
        // unless asked to, and the writer's lock goes with the last handle.
        let open = self.tenants.lock().remove(tenant);
        drop(open);
        let dir = self.root.join(tenant);
        tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        })
        .await
        .map_err(|e| BackendError::unavailable(Backend::Index, e))?
    }

    async fn stored_bytes(&self, tenant: &str) -> Result<u64, BackendError> {
        let dir = self.root.join(tenant);
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
        std::fs::metadata(&self.root).map_err(io)?;
        Ok(())
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
