//! What Elasticsearch and OpenSearch clients and shippers speak to send
//! logs: `POST /_bulk` and `POST /{index}/_bulk`, answered item by item in
//! the bulk response format; `GET /`, `GET /_cluster/health` and
//! `GET /_license`, which clients and shippers probe before they send. The key comes as a bearer token, the
//! basic-auth password or an `ApiKey` (`auth`); the tenant is the key's.
//!
//! Every answer carries `X-Elastic-Product: Elasticsearch`: the official
//! clients (8.x) refuse a server without it.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Ingest, Tenant};
use super::error::ApiError;
use super::intake::{Admitted, admitted_body};
use super::openapi::{IngestErrors, ProbeErrors};
use crate::ingest::CheckedBatch;
use crate::ingest::bulk::{self, Decoded, Item};
use crate::model::ids;

/// The Elasticsearch version `GET /` reports: the API the bulk route
/// follows (8.x, no mapping types), so clients that pick their requests by
/// version send the right ones.
const COMPATIBLE_VERSION: &str = "8.11.0";

pub async fn product_header(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert("x-elastic-product", HeaderValue::from_static("Elasticsearch"));
    resp
}

/// `GET /` (and `HEAD /`): who answers, as a cluster would; a browser
/// (`Accept: text/html`) gets the dashboard instead, with no key.
#[utoipa::path(method(get, head), path = "/", tag = "shippers", security(("tenant_key" = []), ("basic_key" = []), ("elastic_api_key" = [])),
    responses(
        (status = 200, content_type = "application/json", body = Object, description = "Cluster information, as Elasticsearch 8.11 answers it; the dashboard's page (text/html) to a browser"),
        ProbeErrors,
    ))]
pub async fn info(method: Method, headers: HeaderMap, caller: Result<Tenant<Ingest>, ApiError>) -> Response {
    if method == Method::GET && super::dashboard::wants_page(&headers) {
        return super::dashboard::page();
    }
    if let Err(e) = caller {
        return e.into_response();
    }
    if method == Method::HEAD {
        return StatusCode::OK.into_response();
    }
    Json(json!({
        "name": "loggerhub",
        "cluster_name": "loggerhub",
        "cluster_uuid": "loggerhub",
        "version": {
            "number": COMPATIBLE_VERSION,
            "build_flavor": "default",
            "build_type": "loggerhub",
            "build_snapshot": false,
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "loggerhub": {"version": env!("CARGO_PKG_VERSION")},
        "tagline": "You Know, for Search"
    }))
    .into_response()
}

/// `GET /_cluster/health`: shippers' health checks (Vector, Logstash).
#[utoipa::path(get, path = "/_cluster/health", tag = "shippers", security(("tenant_key" = []), ("basic_key" = []), ("elastic_api_key" = [])),
    responses((status = 200, content_type = "application/json", body = Object, description = "Always green"), ProbeErrors))]
pub async fn health(_caller: Tenant<Ingest>) -> Json<Value> {
    Json(json!({
        "cluster_name": "loggerhub",
        "status": "green",
        "timed_out": false,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1
    }))
}

/// `GET /_license`: Beats (Filebeat) will not send to a cluster whose
/// license they cannot read. LoggerHub has no licenses; this says "basic",
/// the free one, which asks nothing of the client.
#[utoipa::path(get, path = "/_license", tag = "shippers", security(("tenant_key" = []), ("basic_key" = []), ("elastic_api_key" = [])),
    responses((status = 200, content_type = "application/json", body = Object, description = "A basic license"), ProbeErrors))]
pub async fn license(_caller: Tenant<Ingest>) -> Json<Value> {
    Json(json!({
        "license": {"status": "active", "uid": "loggerhub", "type": "basic", "mode": "basic"}
    }))
}

/// Elasticsearch/OpenSearch bulk: `index` and `create` actions, answered
/// item by item. Scope: `ingest`.
#[utoipa::path(method(post, put), path = "/_bulk", tag = "shippers", security(("tenant_key" = []), ("basic_key" = []), ("elastic_api_key" = [])),
    request_body(content = String, content_type = "application/x-ndjson", description = "Action and document lines (`index` or `create`); the records' service is the index where a document names none"),
    responses(
        (status = 200, content_type = "application/json", body = Object, description = "The bulk response: `took`, `errors`, and one item per action with its own status (201, or 400/403/429 with an `error`)"),
        IngestErrors,
    ))]
pub async fn bulk(
    State(state): State<AppState>,
    caller: Tenant<Ingest>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    bulk_into_index(state, caller, None, headers, body).await
}

/// Bulk into an index: the records' service where a document names
/// none. Scope: `ingest`.
#[utoipa::path(method(post, put), path = "/{index}/_bulk", tag = "shippers", security(("tenant_key" = []), ("basic_key" = []), ("elastic_api_key" = [])),
    params(("index" = String, Path, description = "The default index: the records' service")),
    request_body(content = String, content_type = "application/x-ndjson", description = "Action and document lines (`index` or `create`); the records' service is the index where a document names none"),
    responses(
        (status = 200, content_type = "application/json", body = Object, description = "The bulk response: `took`, `errors`, and one item per action with its own status (201, or 400/403/429 with an `error`)"),
        IngestErrors,
    ))]
pub async fn bulk_into(
    State(state): State<AppState>,
    caller: Tenant<Ingest>,
    index: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Path(index) = index?;
    bulk_into_index(state, caller, Some(index), headers, body).await
}

async fn bulk_into_index(
    state: AppState,
    caller: Tenant<Ingest>,
    index: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Admitted { body, admission } = admitted_body(&state, &caller, &headers, body).await?;
    let Decoded { mut items, groups } = bulk::decode(&body, index.as_deref(), &caller.tenant, &admission.window)
        .map_err(|e| ApiError::new(super::error::ErrorCode::InvalidBody, e.to_string()))?;
    drop(body);
    let mut queued_any = false;
    for (index, group) in groups {
        let batch_id = ulid::Ulid::new();
        let has_ids = group.items.iter().any(|&i| items[i].id.is_some());
        let result = state
            .ingest
            .ingest_checked(
                &admission,
                CheckedBatch {
                    batch_id,
                    service: Some(index),
                    body: group.body.into(),
                    count: group.count,
                    has_ids,
                },
            )
            .await;
        match result {
            Ok(_) => {
                queued_any = true;
                for (j, &i) in group.items.iter().enumerate() {
                    let item = &mut items[i];
                    if item.id.is_none() {
                        item.id = Some(ids::record_id(batch_id, j).to_string());
                    }
                }
            }
            // Nothing taken yet: the whole request gets the error (and its
            // Retry-After), which every client retries.
            Err(e) if !queued_any => return Err(e.into()),
            Err(e) => {
                let e = ApiError::from(e);
                for &i in &group.items {
                    items[i].refused = Some(bulk::Refusal {
                        status: e.code.status().as_u16(),
                        kind: if e.code.status() == StatusCode::TOO_MANY_REQUESTS {
                            "es_rejected_execution_exception"
                        } else {
                            "unavailable_shards_exception"
                        },
                        reason: e.message.clone(),
                    });
                }
            }
        }
    }
    Ok(bulk_response(started.elapsed().as_millis() as u64, &items))
}

/// The bulk response: one item per action, in request order. Written
/// directly: a request of thousands of documents answers thousands of
/// items, and a JSON value per item was a fifth of the accept path.
fn bulk_response(took: u64, items: &[Item]) -> Response {
    let mut out = Vec::with_capacity(64 + items.len() * 192);
    let errors = items.iter().any(|i| i.refused.is_some());
    out.extend_from_slice(format!("{{\"took\":{took},\"errors\":{errors},\"items\":[").as_bytes());
    for (k, item) in items.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("{{\"{}\":{{\"_index\":", item.action.as_str()).as_bytes());
        json_str(&mut out, &item.index);
        out.extend_from_slice(b",\"_id\":");
        match &item.id {
            Some(id) => json_str(&mut out, id),
            None => out.extend_from_slice(b"null"),
        }
        match &item.refused {
            None => out.extend_from_slice(
                b",\"_version\":1,\"result\":\"created\",\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},\"_seq_no\":0,\"_primary_term\":1,\"status\":201}}",
            ),
            Some(r) => {
                out.extend_from_slice(format!(",\"status\":{},\"error\":{{\"type\":\"{}\",\"reason\":", r.status, r.kind).as_bytes());
                json_str(&mut out, &r.reason);
                out.extend_from_slice(b"}}}");
            }
        }
    }
    out.extend_from_slice(b"]}");
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        out,
    )
        .into_response()
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // A string always serialises.
    let _ = serde_json::to_writer(&mut *out, s);
}
