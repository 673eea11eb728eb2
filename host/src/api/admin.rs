//! /v1/admin: tenants and keys, behind the admin token.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::AppState;
use super::auth::Admin;
use super::error::{ApiError, ErrorCode};
use super::wire::{
    CreateKey, CreateTenant, KeyList, NewKeyJson, PlanList, TenantCreated, TenantJson, TenantList, UpdateTenant,
};
use crate::model::Slug;
use crate::stores::TenantState;
use crate::tenants::TenantError;

pub async fn create_tenant(
    State(state): State<AppState>,
    _: Admin,
    body: Result<Json<CreateTenant>, JsonRejection>,
) -> Result<(StatusCode, Json<TenantCreated>), ApiError> {
    let Json(req) = body?;
    let slug = Slug::parse(&req.slug).map_err(TenantError::from)?;
    let plan = req
        .plan
        .clone()
        .unwrap_or_else(|| state.tenants.plans().default_name().to_string());
    let key = state.tenants.create(&slug, &plan).await?;
    if let Err(e) = state.index.provision(&req.slug).await {
        // The index is also created on first write; a failure here is not
        // worth failing the tenant over.
        tracing::warn!(tenant = req.slug, error = %e, "index provisioning failed");
    }
    tracing::info!(tenant = req.slug, plan, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(TenantCreated {
            tenant: req.slug,
            plan,
            api_key: key.into(),
        }),
    ))
}

pub async fn list_tenants(State(state): State<AppState>, _: Admin) -> Result<Json<TenantList>, ApiError> {
    Ok(Json(state.tenants.list().await?.into()))
}

/// Changes what the admin API may change of a tenant: its plan, and
/// whether it is suspended.
pub async fn update_tenant(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(slug): TenantPath,
    body: Result<Json<UpdateTenant>, JsonRejection>,
) -> Result<Json<TenantJson>, ApiError> {
    let Json(req) = body?;
    let target = match req.state.as_deref() {
        None => None,
        Some("active") => Some(TenantState::Active),
        Some("suspended") => Some(TenantState::Suspended),
        Some(_) => return Err(TenantError::BadState.into()),
    };
    if let Some(plan) = &req.plan {
        state.tenants.set_plan(&slug, plan).await?;
    }
    if let Some(target) = target {
        state.tenants.set_state(&slug, target).await?;
    }
    Ok(Json(state.tenants.get(slug.as_str()).await?.into()))
}

pub async fn get_tenant(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(slug): TenantPath,
) -> Result<Json<TenantJson>, ApiError> {
    Ok(Json(state.tenants.get(slug.as_str()).await?.into()))
}

/// Starts deleting a tenant (202): its keys stop working now; its data goes
/// from every store in the background, then the tenant itself (404).
pub async fn delete_tenant(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(slug): TenantPath,
) -> Result<(StatusCode, Json<TenantJson>), ApiError> {
    let t = state.tenants.delete(&slug).await?;
    Ok((StatusCode::ACCEPTED, Json(t.into())))
}

pub async fn list_plans(State(state): State<AppState>, _: Admin) -> Json<PlanList> {
    Json(state.tenants.plans().into())
}

pub async fn create_key(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(slug): TenantPath,
    body: Option<Json<CreateKey>>,
) -> Result<(StatusCode, Json<NewKeyJson>), ApiError> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let key = state.tenants.create_key(&slug, &req.scopes).await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

pub async fn list_keys(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(slug): TenantPath,
) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(state.tenants.list_keys(&slug).await?.into()))
}

pub async fn revoke_key(
    State(state): State<AppState>,
    _: Admin,
    TenantKeyPath(slug, id): TenantKeyPath,
) -> Result<StatusCode, ApiError> {
    state.tenants.revoke_key(&slug, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{slug}` of an admin route, parsed: 400 `invalid_slug` before any
/// handler runs.
pub struct TenantPath(Slug);

impl FromRequestParts<AppState> for TenantPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(slug) = Path::<String>::from_request_parts(parts, state).await?;
        Ok(TenantPath(Slug::parse(&slug).map_err(TenantError::from)?))
    }
}

/// `{slug}/keys/{id}` of an admin route.
pub struct TenantKeyPath(Slug, String);

impl FromRequestParts<AppState> for TenantKeyPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path((slug, id)) = Path::<(String, String)>::from_request_parts(parts, state).await?;
        let slug = Slug::parse(&slug).map_err(TenantError::from)?;
        if !crate::tenants::valid_key_id(&id) {
            return Err(ApiError::new(
                ErrorCode::InvalidId,
                format!("{:?} is not a key id", id.chars().take(60).collect::<String>()),
            ));
        }
        Ok(TenantKeyPath(slug, id))
    }
}
