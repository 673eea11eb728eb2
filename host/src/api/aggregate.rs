//! POST /v1/aggregate: a search's matches counted by a field.

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
use crate::search::{Query, Terms, TermsField};

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
    /// `service`, `level`, `attributes.<key>` or `@<key>`.
    pub by: String,
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
}

/// The most common values first (ties by value), every match counted.
#[derive(Serialize, ToSchema)]
pub struct AggregateJson {
    /// Matches of the search.
    pub total: u64,
    /// The field counted, as the query language writes it.
    pub by: String,
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
                })
                .collect()
        });
        AggregateJson {
            total: t.total,
            by,
            series,
            buckets: t
                .buckets
                .into_iter()
                .map(|(value, count)| ValueCount { value, count })
                .collect(),
            other: t.other,
            missing: t.missing,
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
    let field = TermsField::parse(&req.by).map_err(|e| ApiError::bad_request(e.message))?;
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
        Some(_) if field == TermsField::AttributeKeys => {
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
            if buckets > STATS_MAX_BUCKETS || buckets.saturating_mul(size + 2) > MAX_SERIES_CELLS {
                return Err(too_many());
            }
            Some(interval)
        }
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
