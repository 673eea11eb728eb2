//! Counting by a field: the values a field takes in a search's matches,
//! the most common first (`POST /v1/aggregate`, docs/QUERY.md,
//! "Aggregations"). Every index answers [`Terms`] the same way: counts
//! descending, ties by value ascending, the rest summed as `other`.

use super::query::QueryError;

/// Most values one count may return.
pub const MAX_TERMS_SIZE: usize = 1_000;

/// Most cells of a time series by a field (its values and two more,
/// `other` and `missing`, times its buckets): what a stacked chart can
/// show, and below OpenSearch's default `search.max_buckets` (65,535) for
/// the aggregation that makes it.
pub const MAX_SERIES_CELLS: usize = 60_000;

/// A field to count by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermsField {
    Service,
    Level,
    /// `attributes.<key>` or `@<key>`.
    Attribute(String),
    /// `attributes`: the attributes' keys, each counted by the matches
    /// that have it (the tenant's most common attributes).
    AttributeKeys,
}

impl TermsField {
    /// `service`, `level`, `attributes.<key>` or `@<key>`.
    pub fn parse(by: &str) -> Result<TermsField, QueryError> {
        let bad = |message: String| QueryError { message, at: 1 };
        match by {
            "service" => Ok(TermsField::Service),
            "level" => Ok(TermsField::Level),
            "attributes" => Ok(TermsField::AttributeKeys),
            _ => match by.strip_prefix("attributes.").or_else(|| by.strip_prefix('@')) {
                Some(key) if !key.is_empty() && key.len() <= loggerhub_codec::limits::MAX_ATTRIBUTE_KEY_BYTES => {
                    Ok(TermsField::Attribute(key.to_string()))
                }
                _ => Err(bad(format!(
                    "cannot count by {by:?}: name `service`, `level`, `attributes` (their keys), `attributes.<key>` or `@<key>`"
                ))),
            },
        }
    }

    /// As the query language writes it.
    pub fn name(&self) -> String {
        match self {
            TermsField::Service => "service".into(),
            TermsField::Level => "level".into(),
            TermsField::Attribute(key) => format!("attributes.{key}"),
            TermsField::AttributeKeys => "attributes".into(),
        }
    }
}

/// One bucket of a time series by a field: its matches per value of
/// [`Terms::buckets`], in their order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesBucket {
    /// Unix ns, a multiple of the interval.
    pub start: i64,
    pub total: u64,
    pub counts: Vec<u64>,
    pub other: u64,
    pub missing: u64,
}

/// The values of a field in a search's matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Terms {
    /// Matches of the search.
    pub total: u64,
    /// The `size` most common values and their matches, most first.
    pub buckets: Vec<(String, u64)>,
    /// Matches of every other value.
    pub other: u64,
    /// Matches without the field (an attribute they lack).
    pub missing: u64,
    /// When asked for, the same per time bucket, oldest first: at most
    /// [`crate::model::STATS_MAX_BUCKETS`] + 1 buckets (the caller
    /// refuses more), empty ones left out.
    pub series: Vec<SeriesBucket>,
}

impl Terms {
    /// From every value's count: the `size` most common (ties by value),
    /// the rest summed.
    pub fn top(total: u64, mut counts: Vec<(String, u64)>, size: usize, missing: u64) -> Terms {
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let other = counts.iter().skip(size).map(|(_, n)| n).sum();
        counts.truncate(size);
        Terms {
            total,
            buckets: counts,
            other,
            missing,
            series: Vec::new(),
        }
    }
}

/// A time series being counted: buckets by start, each with its total,
/// its count per value and its missing; `other` is what is left.
#[derive(Debug, Default)]
pub struct SeriesCounts {
    values: usize,
    buckets: std::collections::BTreeMap<i64, (u64, Vec<u64>, u64)>,
}

impl SeriesCounts {
    pub fn new(values: usize) -> Self {
        SeriesCounts {
            values,
            buckets: Default::default(),
        }
    }

    /// The bucket of `start`, unless past the bound (one more than
    /// [`crate::model::STATS_MAX_BUCKETS`], so that the caller can tell).
    fn bucket(&mut self, start: i64) -> Option<&mut (u64, Vec<u64>, u64)> {
        if self.buckets.len() > crate::model::STATS_MAX_BUCKETS && !self.buckets.contains_key(&start) {
            return None;
        }
        let values = self.values;
        Some(self.buckets.entry(start).or_insert_with(|| (0, vec![0; values], 0)))
    }

    pub fn add_total(&mut self, start: i64, n: u64) {
        if let Some(b) = self.bucket(start) {
            b.0 += n;
        }
    }

    pub fn add_value(&mut self, start: i64, value: usize, n: u64) {
        if let Some(b) = self.bucket(start)
            && let Some(c) = b.1.get_mut(value)
        {
            *c += n;
        }
    }

    pub fn add_missing(&mut self, start: i64, n: u64) {
        if let Some(b) = self.bucket(start) {
            b.2 += n;
        }
    }

    pub fn finish(self) -> Vec<SeriesBucket> {
        self.buckets
            .into_iter()
            .map(|(start, (total, counts, missing))| SeriesBucket {
                start,
                total,
                other: total.saturating_sub(counts.iter().sum::<u64>() + missing),
                counts,
                missing,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_the_top() {
        assert_eq!(TermsField::parse("service"), Ok(TermsField::Service));
        assert_eq!(
            TermsField::parse("@http.status"),
            Ok(TermsField::Attribute("http.status".into()))
        );
        assert_eq!(
            TermsField::parse("attributes.k").map(|f| f.name()),
            Ok("attributes.k".into())
        );
        assert_eq!(TermsField::parse("attributes"), Ok(TermsField::AttributeKeys));
        for bad in ["", "message", "attributes.", "@", "timestamp"] {
            assert!(TermsField::parse(bad).is_err(), "{bad}");
        }
        let counts = vec![("b".into(), 3), ("a".into(), 3), ("c".into(), 5), ("d".into(), 1)];
        let t = Terms::top(20, counts, 2, 8);
        assert_eq!(t.buckets, vec![("c".to_string(), 5), ("a".to_string(), 3)]);
        assert_eq!((t.other, t.missing, t.total), (4, 8, 20));
    }
}
