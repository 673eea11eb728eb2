//! Statistics of a number attribute (`SearchIndex::numbers`): the search's
//! matches as a bit set per segment, then the attribute's number terms
//! (`schema::number_term`, which order as their numbers do) of every
//! segment merged in order, each term's postings read against the
//! matches. Each number so comes in ascending order with how many matches
//! hold it, into the distribution of all the matches and into that of
//! each match's value of a field or time bucket. The work is the
//! attribute's postings, as a terms aggregation's is.

use std::collections::{BTreeMap, HashMap};

use tantivy::query::EnableScoring;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::termdict::TermMerger;
use tantivy::{DocId, Term};

use super::schema::number_term;
use super::terms::{Matched, each_in, each_match, matched};
use super::{TenantIndex, io};
use crate::error::BackendError;
use crate::model::LogFilter;
use crate::search::numbers::{Distribution, Numbers};
use crate::search::query::{Query, unsortable};
use crate::search::{Terms, TermsField};

/// Which of the field's kept values each document of a segment's run of
/// matches (`Matched::first..=last`) holds: a byte a document while there
/// are fewer than 255 values, two past that (`size` is at most 1,000).
/// The memory is a byte or two per record of the tenant's own index in
/// the matches' run, whatever the request asks.
struct Slots {
    base: DocId,
    of: SlotVec,
}

enum SlotVec {
    Narrow(Vec<u8>),
    Wide(Vec<u16>),
}

impl Slots {
    fn new(m: &Matched<'_>, values: usize) -> Slots {
        let docs = (m.last - m.first) as usize + 1;
        Slots {
            base: m.first,
            of: if values < usize::from(u8::MAX) {
                SlotVec::Narrow(vec![u8::MAX; docs])
            } else {
                SlotVec::Wide(vec![u16::MAX; docs])
            },
        }
    }

    fn set(&mut self, doc: DocId, slot: usize) {
        let Some(at) = doc.checked_sub(self.base).map(|d| d as usize) else {
            return;
        };
        match &mut self.of {
            SlotVec::Narrow(s) => {
                if let Some(v) = s.get_mut(at) {
                    *v = u8::try_from(slot).unwrap_or(u8::MAX);
                }
            }
            SlotVec::Wide(s) => {
                if let Some(v) = s.get_mut(at) {
                    *v = u16::try_from(slot).unwrap_or(u16::MAX);
                }
            }
        }
    }

    fn of(&self, doc: DocId) -> Option<usize> {
        let at = doc.checked_sub(self.base)? as usize;
        match &self.of {
            SlotVec::Narrow(s) => s.get(at).filter(|v| **v != u8::MAX).map(|v| usize::from(*v)),
            SlotVec::Wide(s) => s.get(at).filter(|v| **v != u16::MAX).map(|v| usize::from(*v)),
        }
    }
}

/// Which of the field's kept values each match holds, per segment.
struct Groups {
    slots: Vec<Slots>,
    dists: Vec<Distribution>,
    /// Per value, the matches of the number being read, and which values
    /// it has touched.
    counts: Vec<u64>,
    touched: Vec<usize>,
}

impl TenantIndex {
    pub(super) fn numbers(
        &self,
        q: &Query,
        filter: &LogFilter,
        key: &str,
        group: Option<(&TermsField, usize)>,
        interval: Option<i64>,
    ) -> Result<Numbers, BackendError> {
        let searcher = self.reader.searcher();
        let query = self.build_query(q, filter)?;
        let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        let (total, matched) = matched(&searcher, weight.as_ref(), self.fields.attr)?;
        // Counted on the same snapshot as the numbers, so that no value's
        // statistics count more matches than it has.
        let terms = match group {
            Some((field, size)) => Some(self.terms_in(&searcher, q, filter, field, size, None)?),
            None => None,
        };
        let mut groups = match (&terms, group) {
            (Some(t), Some((field, _))) => Some(self.groups(&matched, field, t)?),
            _ => None,
        };
        let mut series = match interval {
            Some(i) => bucket_matches(&matched, i.max(1))?,
            None => BTreeMap::new(),
        };
        let mut all = Distribution::new(1);
        let timestamps: Vec<_> = matched
            .iter()
            .map(|m| m.seg.fast_fields().i64("timestamp").ok())
            .collect();
        let (lo, hi) = (number_term(key, 0), number_term(key, u64::MAX));
        let mut streams = Vec::with_capacity(matched.len());
        for m in &matched {
            streams.push(
                m.inverted
                    .terms()
                    .range()
                    .ge(lo.as_bytes())
                    .le(hi.as_bytes())
                    .into_stream()
                    .map_err(io)?,
            );
        }
        let mut merged = TermMerger::new(streams);
        let mut per_bucket: HashMap<i64, u64> = HashMap::new();
        while merged.advance() {
            let Some(v) = number_of(merged.key()) else {
                continue;
            };
            let mut n = 0u64;
            for (i, info) in merged.current_segment_ords_and_term_infos() {
                each_match(&matched[i], &info, |d| {
                    n += 1;
                    if let Some(g) = &mut groups
                        && let Some(slot) = g.slots[i].of(d)
                    {
                        if g.counts[slot] == 0 {
                            g.touched.push(slot);
                        }
                        g.counts[slot] += 1;
                    }
                    if let (Some(interval), Some(Some(ts))) = (interval, timestamps.get(i))
                        && let Some(t) = ts.first(d)
                    {
                        *per_bucket.entry(start(t, interval.max(1))).or_default() += 1;
                    }
                })?;
            }
            all.add(v, n);
            // Only the values this number's matches hold: a number is read
            // once per value it has, not once per value kept.
            if let Some(g) = &mut groups {
                for slot in g.touched.drain(..) {
                    g.dists[slot].add(v, std::mem::take(&mut g.counts[slot]));
                }
            }
            for (b, c) in per_bucket.drain() {
                if let Some((_, dist)) = series.get_mut(&b) {
                    dist.add(v, c);
                }
            }
        }
        Ok(Numbers {
            total,
            all: all.summary(),
            per_value: groups
                .map(|g| g.dists.iter().map(Distribution::summary).collect())
                .unwrap_or_default(),
            terms,
            series: series
                .into_iter()
                .map(|(b, (n, dist))| (b, n, dist.summary()))
                .collect(),
        })
    }

    /// Each match's value of `field` among those `terms` kept.
    fn groups(&self, matched: &[Matched<'_>], field: &TermsField, terms: &Terms) -> Result<Groups, BackendError> {
        let f = &self.fields;
        let (tfield, prefix): (Field, String) = match field {
            TermsField::Service => (f.service, String::new()),
            TermsField::Level => (f.level, String::new()),
            TermsField::Attribute(key) => (f.attr, format!("{key}=")),
            // The API refuses it: a record holds many keys.
            TermsField::AttributeKeys => (f.attr, String::new()),
        };
        let mut slots = Vec::with_capacity(matched.len());
        let n = terms.buckets.len();
        for m in matched {
            let mut slot = Slots::new(m, n);
            let inverted = m.seg.inverted_index(tfield)?;
            for (i, (value, _)) in terms.buckets.iter().enumerate() {
                let term = Term::from_field_text(tfield, &format!("{prefix}{value}"));
                let Some(mut postings) = inverted.read_postings(&term, IndexRecordOption::Basic).map_err(io)? else {
                    continue;
                };
                each_in(m, &mut postings, |d| slot.set(d, i));
            }
            slots.push(slot);
        }
        Ok(Groups {
            slots,
            dists: (0..n).map(|_| Distribution::new(n)).collect(),
            counts: vec![0; n],
            touched: Vec::with_capacity(n),
        })
    }
}

/// The matches per bucket of `interval`, each with its distribution to be.
fn bucket_matches(matched: &[Matched<'_>], interval: i64) -> Result<BTreeMap<i64, (u64, Distribution)>, BackendError> {
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    for m in matched {
        let Ok(timestamps) = m.seg.fast_fields().i64("timestamp") else {
            continue;
        };
        for doc in m.first..=m.last {
            if m.matches.contains(doc)
                && let Some(t) = timestamps.first(doc)
            {
                *counts.entry(start(t, interval)).or_default() += 1;
            }
        }
    }
    let shares = counts.len();
    Ok(counts
        .into_iter()
        .map(|(b, n)| (b, (n, Distribution::new(shares))))
        .collect())
}

fn start(ts: i64, interval: i64) -> i64 {
    ts - ts.rem_euclid(interval)
}

/// The number a term of `schema::number_term` holds: its last 16 hex
/// digits.
fn number_of(term: &[u8]) -> Option<f64> {
    let hex = term.get(term.len().checked_sub(16)?..)?;
    let key = u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
    Some(unsortable(key))
}
