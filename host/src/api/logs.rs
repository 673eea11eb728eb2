//! /v1/logs, /v1/search, /v1/stats.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{HeaderMap, StatusCode, header};

use super::AppState;
use super::auth::{Ingest, Search, Tenant};
use super::error::ApiError;
use super::intake::{Admitted, admitted_body, header_str};
use super::openapi::{DetailErrors, LogsIngestErrors, ReadErrors, SearchErrors};
use super::params::ListParams;
use super::wire::{Accepted, DetailJson, PageJson, RecordIn, StatsJson};
use crate::ingest::IngestRequest;
use crate::model::STATS_MAX_BUCKETS;
use crate::search::Query;

/// Longest log id looked up: ids are ULIDs or UUIDs.
const MAX_ID_LEN: usize = 64;

/// Send logs.
///
/// One JSON object, a JSON array, or NDJSON; `text/plain` goes to the
/// tenant's text parser, one record per line. 202 only once the batch is
/// durable in the queue. Scope: `ingest`.
#[utoipa::path(post, path = "/v1/logs", tag = "logs", security(("tenant_key" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried batch store nothing twice."),
        ("X-LoggerHub-Service" = Option<String>, Header, description = "The service of records that name none."),
        ("Content-Encoding" = Option<String>, Header, description = "`gzip`, `zstd` or `deflate`; the body limit applies after decompression."),
    ),
    request_body(description = "Log records (DESIGN §3)", content(
        (RecordIn = "application/json"),
        (String = "application/x-ndjson"),
        (String = "text/plain"),
    )),
    responses((status = 202, body = Accepted, description = "Durable in the queue"), LogsIngestErrors))]
pub async fn ingest(
    State(state): State<AppState>,
    caller: Tenant<Ingest>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let Admitted { body, admission } = admitted_body(&state, &caller, &headers, body).await?;
    let accepted = state
        .ingest
        .ingest(
            &admission,
            IngestRequest {
                content_type: header_str(&headers, header::CONTENT_TYPE.as_str()),
                service: header_str(&headers, "x-loggerhub-service").map(str::to_string),
                idempotency_key: header_str(&headers, "idempotency-key"),
                body,
            },
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted })))
}

/// List logs, newest first, from the metadata store. Scope: `search`.
#[utoipa::path(get, path = "/v1/logs", tag = "logs", security(("tenant_key" = [])),
    params(ListParams),
    responses((status = 200, body = PageJson), ReadErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    params: Result<QueryParams<ListParams>, QueryRejection>,
) -> Result<Json<PageJson>, ApiError> {
    let reading = state.reads.enter(&caller.tenant)?;
    let QueryParams(p) = params?;
    if p.q.is_some() || p.interval.is_some() {
        return Err(ApiError::bad_request(
            "the list view takes no `q` or `interval`; use /v1/search or /v1/stats",
        ));
    }
    let (filter, cursor, limit) = (p.filter()?, p.cursor()?, p.limit()?);
    let (reader, tenant) = (state.reader.clone(), caller.tenant);
    let page = reading
        .run(async move {
            reader
                .list(
                    &tenant,
                    &filter,
                    cursor.as_ref(),
                    limit,
                    p.track_total_hits.unwrap_or(false),
                )
                .await
        })
        .await??;
    Ok(Json(page.into()))
}

/// Full-text search; hits carry the metadata store's fields. Scope: `search`.
#[utoipa::path(get, path = "/v1/search", tag = "logs", security(("tenant_key" = [])),
    params(ListParams),
    responses((status = 200, body = PageJson), SearchErrors))]
pub async fn search(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    params: Result<QueryParams<ListParams>, QueryRejection>,
) -> Result<Json<PageJson>, ApiError> {
    let reading = state.reads.enter(&caller.tenant)?;
    let QueryParams(p) = params?;
    let query = Query::parse(p.q.as_deref().unwrap_or_default())?;
    let (filter, cursor, limit) = (p.filter()?, p.cursor()?, p.limit()?);
    let (reader, tenant) = (state.reader.clone(), caller.tenant);
    let page = reading
        .run(async move {
            reader
                .search(
                    &tenant,
                    &query,
                    &filter,
                    cursor.as_ref(),
                    limit,
                    p.track_total_hits.unwrap_or(false),
                )
                .await
        })
        .await??;
    Ok(Json(page.into()))
}

/// One log with its full text, from the index, else rebuilt from the raw
/// store (`source` says which). Scope: `search`.
#[utoipa::path(get, path = "/v1/logs/{id}", tag = "logs", security(("tenant_key" = [])),
    params(("id" = String, Path, description = "The log's id (a ULID or UUID)")),
    responses((status = 200, body = DetailJson), DetailErrors))]
pub async fn detail(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DetailJson>, ApiError> {
    let reading = state.reads.enter(&caller.tenant)?;
    let Path(id) = path?;
    if id.len() > MAX_ID_LEN {
        return Err(ApiError::not_found("no such log"));
    }
    let (reader, tenant, wanted) = (state.reader.clone(), caller.tenant, id.clone());
    match reading
        .run(async move { reader.detail(&tenant, &wanted).await })
        .await??
    {
        Some((rec, source)) => Ok(Json(DetailJson::new(rec, source))),
        None => Err(ApiError::not_found(format!("no log {id:?}"))),
    }
}

/// Counts by level and by service, and a histogram over time, from the
/// count rollups. With `q` (and `from`), the matches of that search per
/// bucket and level instead, from the index (`by_service` is then empty).
/// Scope: `search`.
#[utoipa::path(get, path = "/v1/stats", tag = "logs", security(("tenant_key" = [])),
    params(ListParams),
    responses((status = 200, body = StatsJson), SearchErrors))]
pub async fn stats(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    params: Result<QueryParams<ListParams>, QueryRejection>,
) -> Result<Json<StatsJson>, ApiError> {
    let reading = state.reads.enter(&caller.tenant)?;
    let QueryParams(p) = params?;
    if p.cursor.is_some() || p.limit.is_some() || p.track_total_hits.is_some() {
        return Err(ApiError::bad_request(
            "stats take q, service, level, from, to and interval",
        ));
    }
    let interval = p.interval_ns()?;
    let filter = p.filter()?;
    let query = p.q.as_deref().map(Query::parse).transpose()?;
    let too_many = || {
        ApiError::bad_request(format!(
            "more than {STATS_MAX_BUCKETS} histogram buckets: widen `interval` or narrow `from`/`to`"
        ))
    };
    // A search's histogram counts in the index, bounded by its range: it
    // needs a start.
    let to = match (&query, filter.to) {
        (Some(_), None) if filter.from.is_none() => {
            return Err(ApiError::bad_request("a search's histogram (`q`) needs `from`"));
        }
        (Some(_), None) => Some(crate::model::now_ns()),
        (_, to) => to,
    };
    if let (Some(from), Some(to)) = (filter.from, to)
        && (to - from) / interval >= STATS_MAX_BUCKETS as i64
    {
        return Err(too_many());
    }
    let (reader, tenant) = (state.reader.clone(), caller.tenant);
    let stats = reading
        .run(async move {
            match &query {
                Some(q) => reader.search_stats(&tenant, q, &filter, interval).await,
                None => reader.stats(&tenant, &filter, interval).await,
            }
        })
        .await??;
    if stats.histogram.len() > STATS_MAX_BUCKETS {
        return Err(too_many());
    }
    Ok(Json(StatsJson::new(stats, interval)))
}
