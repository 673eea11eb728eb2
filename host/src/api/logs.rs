//! /v1/logs, /v1/search, /v1/stats.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;
use super::auth;
use super::error::ApiError;
use super::wire::{DetailJson, ListParams, PageJson};
use crate::ingest::IngestRequest;
use crate::search::Query;
use crate::tenants::Scope;

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let principal = auth::tenant(&state, &headers, Scope::Ingest).await?;
    let limit = state.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body is over the limit of {limit} bytes; send smaller batches"),
        )
    };
    if let Some(len) = header_str(&headers, "content-length").and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    let service = header_str(&headers, "x-loggerhub-service").map(str::to_string);
    let accepted = state
        .ingest
        .ingest(IngestRequest {
            tenant: &principal.tenant,
            content_type: header_str(&headers, header::CONTENT_TYPE.as_str()),
            service,
            idempotency_key: header_str(&headers, "idempotency-key"),
            body,
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"accepted": accepted}))))
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<QueryParams<ListParams>, QueryRejection>,
) -> Result<Json<PageJson>, ApiError> {
    let principal = auth::tenant(&state, &headers, Scope::Search).await?;
    let QueryParams(p) = params?;
    if p.q.is_some() || p.interval.is_some() {
        return Err(ApiError::bad_request(
            "the list view takes no `q` or `interval`; use /v1/search or /v1/stats",
        ));
    }
    let page = state
        .reader
        .list(&principal.tenant, &p.filter()?, p.cursor()?.as_ref(), p.limit()?)
        .await?;
    Ok(Json(page.into()))
}

pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<QueryParams<ListParams>, QueryRejection>,
) -> Result<Json<PageJson>, ApiError> {
    let principal = auth::tenant(&state, &headers, Scope::Search).await?;
    let QueryParams(p) = params?;
    let query = Query::parse(p.q.as_deref().unwrap_or_default())?;
    let page = state
        .reader
        .search(
            &principal.tenant,
            &query,
            &p.filter()?,
            p.cursor()?.as_ref(),
            p.limit()?,
        )
        .await?;
    Ok(Json(page.into()))
}

pub async fn detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DetailJson>, ApiError> {
    let principal = auth::tenant(&state, &headers, Scope::Search).await?;
    if id.len() > 64 {
        return Err(ApiError::not_found("no such log"));
    }
    match state.reader.detail(&principal.tenant, &id).await? {
        Some((rec, source)) => Ok(Json(DetailJson::new(rec, source))),
        None => Err(ApiError::not_found(format!("no log {id:?}"))),
    }
}

pub async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<QueryParams<ListParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = auth::tenant(&state, &headers, Scope::Search).await?;
    let QueryParams(p) = params?;
    if p.q.is_some() || p.cursor.is_some() || p.limit.is_some() {
        return Err(ApiError::bad_request(
            "stats take service, level, from, to and interval",
        ));
    }
    let interval = p.interval_ns()?;
    let s = state.reader.stats(&principal.tenant, &p.filter()?, interval).await?;
    let by_level: serde_json::Map<String, serde_json::Value> = s
        .by_level
        .iter()
        .map(|(l, n)| (l.as_str().to_string(), json!(n)))
        .collect();
    let by_service: serde_json::Map<String, serde_json::Value> =
        s.by_service.iter().map(|(svc, n)| (svc.clone(), json!(n))).collect();
    let histogram: Vec<serde_json::Value> = s
        .histogram
        .iter()
        .map(|(t, n)| json!({"start": crate::model::format_ts(*t), "count": n}))
        .collect();
    Ok(Json(json!({
        "total": s.total,
        "by_level": by_level,
        "by_service": by_service,
        "interval_seconds": interval / 1_000_000_000,
        "histogram": histogram,
    })))
}
