//! /v1/logs, /v1/search, /v1/stats.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{HeaderMap, StatusCode, header};

use super::AppState;
use super::auth::{Ingest, Search, Tenant};
use super::error::ApiError;
use super::intake::{admitted_body, header_str};
use super::params::ListParams;
use super::wire::{Accepted, DetailJson, PageJson, StatsJson};
use crate::ingest::IngestRequest;
use crate::model::STATS_MAX_BUCKETS;
use crate::search::Query;

/// Longest log id looked up: ids are ULIDs or UUIDs.
const MAX_ID_LEN: usize = 64;

pub async fn ingest(
    State(state): State<AppState>,
    caller: Tenant<Ingest>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let (body, rate) = admitted_body(&state, &caller, &headers, body).await?;
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
