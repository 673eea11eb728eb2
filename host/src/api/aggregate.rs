//! POST /v1/aggregate: a search's matches counted by a field, and the
//! statistics of a number attribute over them.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Search, Tenant};
use super::error::ApiError;
use super::openapi::AggregateErrors;
use super::params::{ListParams, json_body};
use crate::model::{STATS_MAX_BUCKETS, format_ts};
use crate::search::terms::{MAX_SERIES_CELLS, MAX_TERMS_SIZE};
use crate::search::{Numbers, Query, Summary, Terms, TermsField};

/// Values returned when `size` is not given.
const DEFAULT_SIZE: usize = 10;

/// What to count: a search (the query language and the list filters) and
/// the field whose values are counted.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateRequest {
    /// The search (docs/QUERY.md); empty counts every record.
    #[serde(default)]
    pub q: String,
    pub service: Option<String>,
    /// trace, debug, info, warn, error or fatal.
    pub level: Option<String>,
    /// RFC 3339; inclusive.
    pub from: Option<String>,
    /// RFC 3339; exclusive.
    pub to: Option<String>,
    /// `service`, `level`, `attributes.<key>` or `@<key>`; or
    /// `attributes` to count the attributes' keys. Needed without `stats`.
    pub by: Option<String>,
    /// A number attribute (`@duration_ms`): its count, min, max, avg, sum
    /// and p50/p90/p95/p99 over the matches; per value of `by`, or per
    /// bucket of `interval` (one of the two at most).
    pub stats: Option<String>,
    /// How many of the most common values: 1 to 1000, default 10.
    pub size: Option<usize>,
    /// A time series too, per bucket of this (`30s`, `5m`, `1h`, `1d`):
    /// it needs `from`, and its values (`size` and two) times its buckets
    /// are at most 60,000.
    pub interval: Option<String>,
}

/// One value and the matches that have it.
#[derive(Serialize, ToSchema)]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
    /// With `stats`: the number attribute over these matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatsJson>,
}

/// A number attribute over some matches: those whose attribute is a
/// number count (a string that reads as one does not). Percentiles are
/// interpolated between the two closest values (exact on the embedded
/// index; OpenSearch's t-digest estimates them). `null` without numbers.
#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct StatsJson {
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    /// `null` past the largest number JSON holds.
    pub sum: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl From<&Summary> for StatsJson {
    fn from(s: &Summary) -> Self {
        let [p50, p90, p95, p99] = s.percentiles;
        StatsJson {
            count: s.count,
            min: s.min,
            max: s.max,
            avg: s.avg().filter(|a| a.is_finite()),
            sum: Some(s.sum).filter(|s| s.is_finite()),
            p50,
            p90,
            p95,
            p99,
        }
    }
}

/// One time bucket of a series by a field.
#[derive(Serialize, ToSchema)]
pub struct SeriesJson {
    /// RFC 3339: the bucket's start.
    pub start: String,
    pub count: u64,
    /// The bucket's matches per value of `buckets`.
    pub by_value: BTreeMap<String, u64>,
    pub other: u64,
    pub missing: u64,
    /// With `stats`: the number attribute over the bucket's matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatsJson>,
}

/// The most common values first (ties by value), every match counted.
#[derive(Serialize, ToSchema)]
pub struct AggregateJson {
    /// Matches of the search.
    pub total: u64,
    /// The field counted, as the query language writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The number attribute of `stats`, as the query language writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// With `stats`: the number attribute over every match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatsJson>,
    /// With `by`: its most common values.
    pub buckets: Vec<ValueCount>,
    /// Matches of the values past `size`.
    pub other: u64,
    /// Matches without the field (an attribute they lack).
    pub missing: u64,
    /// With `interval`: per time bucket, oldest first (empty ones left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<SeriesJson>>,
}

impl AggregateJson {
    fn new(t: Terms, by: String, with_series: bool) -> Self {
        let series = with_series.then(|| {
            t.series
                .iter()
                .map(|b| SeriesJson {
                    start: format_ts(b.start),
                    count: b.total,
                    by_value: t
                        .buckets
                        .iter()
                        .zip(&b.counts)
                        .filter(|(_, n)| **n > 0)
                        .map(|((v, _), n)| (v.clone(), *n))
                        .collect(),
                    other: b.other,
                    missing: b.missing,
                    stats: None,
                })
                .collect()
        });
        AggregateJson {
            total: t.total,
            by: Some(by),
            number: None,
            stats: None,
            series,
            buckets: t
                .buckets
                .into_iter()
                .map(|(value, count)| ValueCount {
                    value,
                    count,
                    stats: None,
                })
                .collect(),
            other: t.other,
            missing: t.missing,
        }
    }

    /// Statistics of `number`: of all the matches, per value of `by` or
    /// per time bucket.
    fn numbers(n: Numbers, by: Option<String>, number: String) -> Self {
        let series = (!n.series.is_empty() || by.is_none()).then(|| {
            n.series
                .iter()
                .map(|(start, count, s)| SeriesJson {
                    start: format_ts(*start),
                    count: *count,
                    by_value: BTreeMap::new(),
                    other: 0,
                    missing: count.saturating_sub(s.count),
                    stats: Some(s.into()),
                })
                .collect()
        });
        let terms = n.terms.unwrap_or_default();
        AggregateJson {
            total: n.total,
            by,
            number: Some(number),
            stats: Some((&n.all).into()),
            series: series.filter(|s: &Vec<SeriesJson>| !s.is_empty()),
            buckets: terms
                .buckets
                .into_iter()
                .zip(n.per_value.iter().map(Some).chain(std::iter::repeat(None)))
                .map(|((value, count), s)| ValueCount {
                    value,
                    count,
                    stats: s.map(StatsJson::from),
                })
                .collect(),
            other: terms.other,
            missing: terms.missing,
        }
    }
}

/// Count a search's matches by a field: its most common values, the rest
/// summed. Scope: `search`.
#[utoipa::path(post, path = "/v1/aggregate", tag = "logs", security(("tenant_key" = [])),
    request_body = AggregateRequest,
    responses((status = 200, body = AggregateJson), AggregateErrors))]
pub async fn aggregate(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    body: Bytes,
) -> Result<Json<AggregateJson>, ApiError> {
    let reading = state.reads.enter(&caller.tenant)?;
    let req: AggregateRequest = json_body(&body)?;
    let query = Query::parse(&req.q)?;
    let field = req
        .by
        .as_deref()
        .map(TermsField::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.message))?;
    let number = match req.stats.as_deref() {
        None => None,
        Some(stats) => match TermsField::parse(stats) {
            Ok(TermsField::Attribute(key)) => Some(key),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "`stats` takes a number attribute (`@<key>` or `attributes.<key>`), not {stats:?}"
                )));
            }
        },
    };
    if field.is_none() && number.is_none() {
        return Err(ApiError::bad_request(
            "name what to aggregate: `by` (a field to count by) or `stats` (a number attribute)",
        ));
    }
    if number.is_some() && field.is_some() && req.interval.is_some() {
        return Err(ApiError::bad_request(
            "`stats` are per value of `by` or per bucket of `interval`, not both",
        ));
    }
    if number.is_some() && field == Some(TermsField::AttributeKeys) {
        return Err(ApiError::bad_request(
            "`stats` per value of `by` takes `service`, `level` or an attribute",
        ));
    }
    let size = req.size.unwrap_or(DEFAULT_SIZE);
    if !(1..=MAX_TERMS_SIZE).contains(&size) {
        return Err(ApiError::bad_request(format!("`size` is 1 to {MAX_TERMS_SIZE}")));
    }
    let params = ListParams {
        service: req.service,
        level: req.level,
        from: req.from,
        to: req.to,
        interval: req.interval,
        ..ListParams::default()
    };
    let mut filter = params.filter()?;
    let too_many = || {
        ApiError::bad_request(format!(
            "a series of more than {MAX_SERIES_CELLS} counts (values and two, times buckets) or {STATS_MAX_BUCKETS} \
             buckets: widen `interval`, narrow `from`/`to` or ask fewer values"
        ))
    };
    let interval = match params.interval {
        None => None,
        Some(_) if field == Some(TermsField::AttributeKeys) => {
            return Err(ApiError::bad_request(
                "a series is by a field's values: `by` `service`, `level` or an attribute",
            ));
        }
        Some(_) => {
            let interval = params.interval_ns()?;
            // Bounded by its range before anything is counted: it needs a
            // start.
            let Some(from) = filter.from else {
                return Err(ApiError::bad_request("a series (`interval`) needs `from`"));
            };
            // The series ends at `to`, or now: records stamped ahead (up
            // to 2200) would otherwise add buckets past the bound.
            let to = *filter.to.get_or_insert_with(crate::model::now_ns);
            let buckets = (to - 1).div_euclid(interval) - from.div_euclid(interval) + 1;
            let buckets = usize::try_from(buckets.max(0)).unwrap_or(usize::MAX);
            // A series of statistics has one figure a bucket.
            let per_bucket = if field.is_some() { size + 2 } else { 1 };
            if buckets > STATS_MAX_BUCKETS || buckets.saturating_mul(per_bucket) > MAX_SERIES_CELLS {
                return Err(too_many());
            }
            Some(interval)
        }
    };
    if let Some(key) = number {
        let (reader, tenant, by) = (
            state.reader.clone(),
            caller.tenant,
            field.as_ref().map(TermsField::name),
        );
        let name = TermsField::Attribute(key.clone()).name();
        let numbers = reading
            .run(async move {
                let group = field.as_ref().map(|f| (f, size));
                reader.numbers(&tenant, &query, &filter, &key, group, interval).await
            })
            .await??;
        return Ok(Json(AggregateJson::numbers(numbers, by, name)));
    }
    let Some(field) = field else {
        return Err(ApiError::bad_request("`by` names the field to count by"));
    };
    let (reader, tenant, by) = (state.reader.clone(), caller.tenant, field.name());
    let terms = reading
        .run(async move { reader.terms(&tenant, &query, &filter, &field, size, interval).await })
        .await??;
    if terms.series.len() > STATS_MAX_BUCKETS
        || terms.series.len().saturating_mul(terms.buckets.len() + 2) > MAX_SERIES_CELLS
    {
        return Err(too_many());
    }
    Ok(Json(AggregateJson::new(terms, by, interval.is_some())))
}
