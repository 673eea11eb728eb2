//! /v1/plugins and /v1/pipeline: a tenant's plugins (keys with the
//! `plugins` scope).

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth;
use super::error::ApiError;
use crate::pipeline::PipelineSpec;
use crate::pipeline::registry::MAX_PLUGIN_BYTES;
use crate::runtime::Stage;
use crate::tenants::Scope;

fn stage(s: &str) -> Result<Stage, ApiError> {
    Stage::parse(s).ok_or_else(|| ApiError::not_found(format!("no stage {s:?}: use parser, enricher or router")))
}

pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((stage_name, name)): Path<(String, String)>,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let p = auth::tenant(&state, &headers, Scope::Plugins).await?;
    let stage = stage(&stage_name)?;
    let wasm = axum::body::to_bytes(body, MAX_PLUGIN_BYTES).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("a plugin may be at most {MAX_PLUGIN_BYTES} bytes"),
        )
    })?;
    let version = state.registry.upload(&p.tenant, stage, &name, &wasm).await?;
    tracing::info!(
        tenant = p.tenant,
        stage = stage.as_str(),
        plugin = name,
        version,
        "plugin uploaded"
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({"stage": stage.as_str(), "name": name, "version": version, "active": version})),
    ))
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    let p = auth::tenant(&state, &headers, Scope::Plugins).await?;
    Ok(Json(json!({"plugins": state.registry.list(&p.tenant)})))
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((stage_name, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let p = auth::tenant(&state, &headers, Scope::Plugins).await?;
    state.registry.delete(&p.tenant, stage(&stage_name)?, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    version: Option<u32>,
}

pub async fn rollback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((stage_name, name)): Path<(String, String)>,
    body: Option<Json<Rollback>>,
) -> Result<impl IntoResponse, ApiError> {
    let p = auth::tenant(&state, &headers, Scope::Plugins).await?;
    let to = body.map(|Json(b)| b).unwrap_or_default().version;
    let active = state
        .registry
        .rollback(&p.tenant, stage(&stage_name)?, &name, to)
        .await?;
    Ok(Json(json!({"name": name, "active": active})))
}

pub async fn get_pipeline(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    let p = auth::tenant(&state, &headers, Scope::Plugins).await?;
    Ok(Json(state.registry.pipeline(&p.tenant)?))
}

pub async fn put_pipeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<PipelineSpec>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let p = auth::tenant(&state, &headers, Scope::Plugins).await?;
    let Json(spec) = body?;
    state.registry.set_pipeline(&p.tenant, spec.clone()).await?;
    Ok(Json(spec))
}

pub async fn list_dead_letters(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let p = auth::tenant(&state, &headers, Scope::Plugins).await?;
    let letters: Vec<_> = state
        .dead_letters
        .list(&p.tenant)
        .await?
        .into_iter()
        .map(|d| {
            json!({
                "batch_id": d.batch_id, "received_at": d.received_at, "content_type": d.content_type,
                "plugin": d.plugin, "kind": d.kind, "reason": d.reason, "body": d.body,
            })
        })
        .collect();
    Ok(Json(json!({"dead_letters": letters})))
}

/// Puts a dead-lettered entry back in the queue (with its batch id, so its
/// records keep their ids) and forgets the dead letter.
pub async fn replay_dead_letter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(batch_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let p = auth::tenant(&state, &headers, Scope::Plugins).await?;
    let letter = state
        .dead_letters
        .get(&p.tenant, &batch_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no dead letter {batch_id:?}")))?;
    let entry = letter
        .to_entry()
        .filter(|e| e.tenant == p.tenant)
        .ok_or_else(|| ApiError::not_found(format!("dead letter {batch_id:?} is unreadable")))?;
    state
        .queue
        .push(entry)
        .await
        .map_err(crate::ingest::IngestError::from_queue)?;
    state.dead_letters.remove(&p.tenant, &batch_id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"replayed": batch_id}))))
}
