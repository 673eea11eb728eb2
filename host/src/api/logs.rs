//! /v1/logs, /v1/search, /v1/stats.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{HeaderMap, StatusCode, header};

use super::AppState;
use super::auth::{Ingest, Search, Tenant};
use super::error::{ApiError, ErrorCode};
use super::params::ListParams;
use super::wire::{Accepted, DetailJson, PageJson, StatsJson};
use crate::ingest::encoding::{self, Encoding};
use crate::ingest::rate::Rate;
use crate::ingest::{Daily, IngestRequest};
use crate::model::STATS_MAX_BUCKETS;
use crate::search::Query;

/// Longest log id looked up: ids are ULIDs or UUIDs.
const MAX_ID_LEN: usize = 64;

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn ingest(
    State(state): State<AppState>,
    caller: Tenant<Ingest>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let limit = state.max_body_bytes;
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("body is over the limit of {limit} bytes; send smaller batches"),
        )
    };
    let content_length = header_str(&headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    if content_length.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let plan = state.tenants.plan(&caller.plan);
    let rate = Rate {
        logs_per_second: plan.logs_per_second,
        bytes_per_second: plan.bytes_per_second,
        burst_seconds: plan.burst_seconds,
    };
    let daily = Daily {
        logs: plan.daily_logs,
        bytes: plan.daily_bytes,
    };
    state.ingest.admit(&caller.tenant, rate, daily, content_length).await?;
    let encoding = Encoding::parse(header_str(&headers, header::CONTENT_ENCODING.as_str()))?;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    // The limit holds for what the body inflates to, not only for what
    // came over the wire.
    let body = encoding::decode(encoding, body, limit)?;
    let accepted = state
        .ingest
        .ingest(IngestRequest {
            tenant: &caller.tenant,
            content_type: header_str(&headers, header::CONTENT_TYPE.as_str()),
            service: header_str(&headers, "x-loggerhub-service").map(str::to_string),
            idempotency_key: header_str(&headers, "idempotency-key"),
            body,
            rate,
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted })))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    params: Result<QueryParams<ListParams>, QueryRejection>,
) -> Result<Json<PageJson>, ApiError> {
    let QueryParams(p) = params?;
    if p.q.is_some() || p.interval.is_some() {
        return Err(ApiError::bad_request(
            "the list view takes no `q` or `interval`; use /v1/search or /v1/stats",
        ));
    }
    let page = state
        .reader
        .list(&caller.tenant, &p.filter()?, p.cursor()?.as_ref(), p.limit()?)
        .await?;
    Ok(Json(page.into()))
}

pub async fn search(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    params: Result<QueryParams<ListParams>, QueryRejection>,
) -> Result<Json<PageJson>, ApiError> {
    let QueryParams(p) = params?;
    let query = Query::parse(p.q.as_deref().unwrap_or_default())?;
    let page = state
        .reader
        .search(&caller.tenant, &query, &p.filter()?, p.cursor()?.as_ref(), p.limit()?)
        .await?;
    Ok(Json(page.into()))
}

pub async fn detail(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DetailJson>, ApiError> {
    let Path(id) = path?;
    if id.len() > MAX_ID_LEN {
        return Err(ApiError::not_found("no such log"));
    }
    match state.reader.detail(&caller.tenant, &id).await? {
        Some((rec, source)) => Ok(Json(DetailJson::new(rec, source))),
        None => Err(ApiError::not_found(format!("no log {id:?}"))),
    }
}

pub async fn stats(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    params: Result<QueryParams<ListParams>, QueryRejection>,
) -> Result<Json<StatsJson>, ApiError> {
    let QueryParams(p) = params?;
    if p.q.is_some() || p.cursor.is_some() || p.limit.is_some() {
        return Err(ApiError::bad_request(
            "stats take service, level, from, to and interval",
        ));
    }
    let interval = p.interval_ns()?;
    let filter = p.filter()?;
    let too_many = || {
        ApiError::bad_request(format!(
            "more than {STATS_MAX_BUCKETS} histogram buckets: widen `interval` or narrow `from`/`to`"
        ))
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && (to - from) / interval >= STATS_MAX_BUCKETS as i64
    {
        return Err(too_many());
    }
    let stats = state.reader.stats(&caller.tenant, &filter, interval).await?;
    if stats.histogram.len() > STATS_MAX_BUCKETS {
        return Err(too_many());
    }
    Ok(Json(StatsJson::new(stats, interval)))
}
