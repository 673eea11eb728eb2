//! /v1/admin: tenants and keys, behind the admin token.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::auth::Admin;
use super::error::ApiError;
use super::wire::{CreateKey, CreateTenant, KeyList, NewKeyJson, TenantCreated, TenantList};

pub async fn create_tenant(
    State(state): State<AppState>,
    _: Admin,
    body: Result<Json<CreateTenant>, JsonRejection>,
) -> Result<(StatusCode, Json<TenantCreated>), ApiError> {
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
        Json(TenantCreated {
            tenant: req.slug,
            api_key: key.into(),
        }),
    ))
}

pub async fn list_tenants(State(state): State<AppState>, _: Admin) -> Result<Json<TenantList>, ApiError> {
    Ok(Json(state.tenants.list().await?.into()))
}

pub async fn create_key(
    State(state): State<AppState>,
    _: Admin,
    Path(slug): Path<String>,
    body: Option<Json<CreateKey>>,
) -> Result<(StatusCode, Json<NewKeyJson>), ApiError> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let key = state.tenants.create_key(&slug, &req.scopes).await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

pub async fn list_keys(
    State(state): State<AppState>,
    _: Admin,
    Path(slug): Path<String>,
) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(state.tenants.list_keys(&slug).await?.into()))
}

pub async fn revoke_key(
    State(state): State<AppState>,
    _: Admin,
    Path((slug, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.tenants.revoke_key(&slug, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
