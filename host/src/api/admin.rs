//! /v1/admin: tenants and keys, behind the admin token.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;
use super::auth;
use super::error::ApiError;
use super::wire::{CreateKey, CreateTenant};
use crate::model::format_ts;
use crate::tenants::NewKey;

fn key_json(k: &NewKey) -> serde_json::Value {
    json!({
        "id": k.id,
        "key": k.secret,
        "scopes": k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    })
}

pub async fn create_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CreateTenant>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    auth::admin(&state, &headers)?;
    let Json(req) = body?;
    let key = state.tenants.create(&req.slug).await?;
    if let Err(e) = state.index.provision(&req.slug).await {
        // The index is also created on first write; a failure here is not
        // worth failing the tenant over.
        tracing::warn!(tenant = req.slug, error = %e, "index provisioning failed");
    }
    tracing::info!(tenant = req.slug, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(json!({"tenant": req.slug, "api_key": key_json(&key)})),
    ))
}

pub async fn list_tenants(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    auth::admin(&state, &headers)?;
    let tenants: Vec<_> = state
        .tenants
        .list()
        .await?
        .into_iter()
        .map(|t| json!({"slug": t.slug, "created_at": format_ts(t.created_at)}))
        .collect();
    Ok(Json(json!({"tenants": tenants})))
}

pub async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    body: Option<Json<CreateKey>>,
) -> Result<impl IntoResponse, ApiError> {
    auth::admin(&state, &headers)?;
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let key = state.tenants.create_key(&slug, &req.scopes).await?;
    Ok((StatusCode::CREATED, Json(key_json(&key))))
}

pub async fn list_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    auth::admin(&state, &headers)?;
    let keys: Vec<_> = state
        .tenants
        .list_keys(&slug)
        .await?
        .into_iter()
        .map(|k| json!({"id": k.id, "scopes": k.scopes, "created_at": format_ts(k.created_at), "revoked": k.revoked}))
        .collect();
    Ok(Json(json!({"keys": keys})))
}

pub async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((slug, id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    auth::admin(&state, &headers)?;
    state.tenants.revoke_key(&slug, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
