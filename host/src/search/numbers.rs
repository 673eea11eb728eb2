//! Statistics of a number attribute over a search's matches
//! (`SearchIndex::numbers`): count, sum, min, max, average and the
//! percentiles of [`PERCENTS`], for all the matches, per value of a field
//! (its most common ones, as [`Terms`] counts them) or per time bucket.
//!
//! A record's attribute counts when it holds a number (`loggerhub_codec::
//! value`): a string that reads as one does not, a record without the
//! attribute does not. Tantivy's answer is exact up to
//! [`MAX_DISTINCT_VALUES`] distinct values (then within the gap between
//! neighbours, see [`Distribution`]); OpenSearch's percentiles are its
//! t-digest's estimate.

use super::Terms;

/// The percentiles every statistic carries.
pub const PERCENTS: [f64; 4] = [50.0, 90.0, 95.0, 99.0];

/// Most distinct values the statistics of all the matches keep (16 bytes
/// each, and as many again while a vector grows): past it, neighbours
/// merge. The values or buckets of `by` or `interval` share as many more.
pub const MAX_DISTINCT_VALUES: usize = 1 << 20;

/// Fewest a distribution keeps, however many buckets share the bound:
/// 10,000 buckets of 64 are 640,000 values, within the bound.
const MIN_DISTINCT_VALUES: usize = 64;

/// One statistic of a number attribute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Matches whose attribute is a number.
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// In the order of [`PERCENTS`]; `None` without numbers.
    pub percentiles: [Option<f64>; 4],
}

impl Summary {
    pub fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// What `SearchIndex::numbers` answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Numbers {
    /// Matches of the search.
    pub total: u64,
    pub all: Summary,
    /// With a field: its counting, and a summary per value kept, in order.
    pub terms: Option<Terms>,
    pub per_value: Vec<Summary>,
    /// With an interval: per bucket start (unix ns), oldest first, the
    /// bucket's matches and their summary; empty buckets left out.
    pub series: Vec<(i64, u64, Summary)>,
}

/// Numbers counted in ascending order (as an index's ordered terms give
/// them), each with how many matches hold it: exact while it keeps at
/// most `cap` distinct values; past that, each two neighbours merge into
/// one at their weighted mean, so a percentile is off by at most the gap
/// between the values merged. Count, sum, min and max stay exact.
#[derive(Debug, Clone)]
pub struct Distribution {
    values: Vec<(f64, u64)>,
    cap: usize,
    count: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
}

impl Distribution {
    /// A distribution that is one of `shares` kept at once.
    pub fn new(shares: usize) -> Distribution {
        Distribution {
            values: Vec::new(),
            cap: (MAX_DISTINCT_VALUES / shares.max(1)).max(MIN_DISTINCT_VALUES),
            count: 0,
            sum: 0.0,
            min: None,
            max: None,
        }
    }

    /// `n` matches hold `v`; `v` is at least every value added before.
    pub fn add(&mut self, v: f64, n: u64) {
        if n == 0 {
            return;
        }
        self.count += n;
        self.sum += v * n as f64;
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
        match self.values.last_mut() {
            Some((last, c)) if *last == v => *c += n,
            _ => self.values.push((v, n)),
        }
        if self.values.len() > self.cap {
            self.values = self
                .values
                .chunks(2)
                .map(|pair| {
                    let n: u64 = pair.iter().map(|(_, c)| c).sum();
                    // Weights under one: no product passes the largest f64.
                    let mean = pair.iter().map(|(v, c)| v * (*c as f64 / n as f64)).sum::<f64>();
                    (mean, n)
                })
                .collect();
        }
    }

    pub fn summary(&self) -> Summary {
        let mut percentiles = [None; 4];
        for (slot, p) in percentiles.iter_mut().zip(PERCENTS) {
            *slot = self.percentile(p);
        }
        Summary {
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            percentiles,
        }
    }

    /// The `p`th percentile, interpolated between the two closest ranks
    /// (rank `p/100 · (n-1)`, numpy's and most spreadsheets' default).
    fn percentile(&self, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = p / 100.0 * (self.count - 1) as f64;
        let (lo, hi) = (rank.floor() as u64, rank.ceil() as u64);
        let (a, b) = (self.at(lo)?, self.at(hi)?);
        let t = rank - lo as f64;
        // Not `a + (b - a) * t`: `b - a` passes the largest f64 when the
        // two are far apart.
        Some(if t == 0.0 { a } else { a * (1.0 - t) + b * t })
    }

    /// The value at 0-based rank `r`.
    fn at(&self, r: u64) -> Option<f64> {
        let mut seen = 0u64;
        for (v, c) in &self.values {
            seen += c;
            if r < seen {
                return Some(*v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_statistics() {
        let mut d = Distribution::new(1);
        for v in 1..=100 {
            d.add(f64::from(v), 1);
        }
        let s = d.summary();
        assert_eq!((s.count, s.sum, s.min, s.max), (100, 5050.0, Some(1.0), Some(100.0)));
        assert_eq!(s.avg(), Some(50.5));
        let p = s.percentiles.map(|p| p.expect("a percentile"));
        assert!((p[0] - 50.5).abs() < 1e-9 && (p[1] - 90.1).abs() < 1e-9, "{p:?}");
        assert!((p[2] - 95.05).abs() < 1e-9 && (p[3] - 99.01).abs() < 1e-9, "{p:?}");

        let mut runs = Distribution::new(1);
        runs.add(10.0, 3);
        runs.add(20.0, 1);
        assert_eq!(runs.summary().percentiles[0], Some(10.0));
        assert_eq!(Distribution::new(1).summary(), Summary::default());
        assert_eq!(Summary::default().avg(), None);
    }

    #[test]
    fn the_largest_numbers_stay_finite() {
        let mut d = Distribution::new(MAX_DISTINCT_VALUES);
        d.add(-f64::MAX, 1);
        d.add(f64::MAX, 1);
        let p = d.summary().percentiles;
        assert!(p.iter().all(|x| x.is_some_and(f64::is_finite)), "{p:?}");
        for v in 0..200 {
            d.add(f64::MAX, 1 + v);
        }
        assert!(d.summary().percentiles.iter().all(|x| x.is_some_and(f64::is_finite)));
    }

    #[test]
    fn bounded_past_its_cap() {
        let mut d = Distribution::new(MAX_DISTINCT_VALUES);
        assert_eq!(d.cap, MIN_DISTINCT_VALUES);
        for v in 0..100_000 {
            d.add(f64::from(v), 1);
        }
        assert!(d.values.len() <= MIN_DISTINCT_VALUES);
        let s = d.summary();
        assert_eq!((s.count, s.min, s.max), (100_000, Some(0.0), Some(99_999.0)));
        let p50 = s.percentiles[0].expect("p50");
        // Merged neighbours lie within 100,000 / 128 of each other.
        assert!((p50 - 49_999.5).abs() < 1_000.0, "{p50}");
    }
}
