//! /v1/plugins and /v1/pipeline: a tenant's plugins (keys with the
//! `plugins` scope).

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::auth::{Plugins, Tenant};
use super::error::{ApiError, ErrorCode};
use super::wire::{PluginList, PluginUploaded, Rollback, RolledBack};
use crate::plugins::{MAX_PLUGIN_BYTES, PipelineSpec};
use crate::runtime::Stage;

fn stage(s: &str) -> Result<Stage, ApiError> {
    Stage::parse(s).ok_or_else(|| ApiError::not_found(format!("no stage {s:?}: use parser, enricher or router")))
}

pub async fn upload(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
    Path((stage_name, name)): Path<(String, String)>,
    body: Body,
) -> Result<(StatusCode, Json<PluginUploaded>), ApiError> {
    let stage = stage(&stage_name)?;
    let wasm = axum::body::to_bytes(body, MAX_PLUGIN_BYTES).await.map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("a plugin may be at most {MAX_PLUGIN_BYTES} bytes"),
        )
    })?;
    let version = state.registry.upload(&caller.tenant, stage, &name, &wasm).await?;
    tracing::info!(
        tenant = caller.tenant,
        stage = stage.as_str(),
        plugin = name,
        version,
        "plugin uploaded"
    );
    Ok((
        StatusCode::CREATED,
        Json(PluginUploaded {
            stage: stage.as_str(),
            name,
            version,
            active: version,
        }),
    ))
}

pub async fn list(State(state): State<AppState>, caller: Tenant<Plugins>) -> Json<PluginList> {
    Json(state.registry.list(&caller.tenant).into())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
    Path((stage_name, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .registry
        .delete(&caller.tenant, stage(&stage_name)?, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rollback(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
    Path((stage_name, name)): Path<(String, String)>,
    body: Option<Json<Rollback>>,
) -> Result<Json<RolledBack>, ApiError> {
    let to = body.map(|Json(b)| b).unwrap_or_default().version;
    let active = state
        .registry
        .rollback(&caller.tenant, stage(&stage_name)?, &name, to)
        .await?;
    Ok(Json(RolledBack { name, active }))
}

pub async fn get_pipeline(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
) -> Result<Json<PipelineSpec>, ApiError> {
    Ok(Json(state.registry.pipeline(&caller.tenant)?))
}

pub async fn put_pipeline(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
    body: Result<Json<PipelineSpec>, JsonRejection>,
) -> Result<Json<PipelineSpec>, ApiError> {
    let Json(spec) = body?;
    state.registry.set_pipeline(&caller.tenant, spec.clone()).await?;
    Ok(Json(spec))
}
