//! /v1/admin: tenants and keys, behind the admin token.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::AppState;
use super::auth::Admin;
use super::error::{ApiError, ErrorCode};
use super::openapi::{
    AdminErrors, AdminTenantErrors, CreateKeyErrors, CreateTenantErrors, RevokeKeyErrors, UpdateTenantErrors,
};
use super::wire::{
    CreateKey, CreateTenant, KeyList, NewKeyJson, PlanList, TenantCreated, TenantJson, TenantList, UpdateTenant,
};
use crate::model::Slug;
use crate::stores::TenantState;
use crate::tenants::TenantError;

/// Create a tenant: provisions its stores and returns its first API key,
/// once.
#[utoipa::path(post, path = "/v1/admin/tenants", tag = "admin", security(("admin_token" = [])),
    request_body = CreateTenant,
    responses((status = 201, body = TenantCreated), CreateTenantErrors))]
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

/// Every tenant.
#[utoipa::path(get, path = "/v1/admin/tenants", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = TenantList), AdminErrors))]
pub async fn list_tenants(State(state): State<AppState>, _: Admin) -> Result<Json<TenantList>, ApiError> {
    Ok(Json(state.tenants.list().await?.into()))
}

/// Changes what the admin API may change of a tenant: its plan, and
/// whether it is suspended.
#[utoipa::path(patch, path = "/v1/admin/tenants/{slug}", tag = "admin", security(("admin_token" = [])),
    params(("slug" = String, Path, description = "The tenant, `^[a-z][a-z0-9_]{1,39}$`")),
    request_body = UpdateTenant,
    responses((status = 200, body = TenantJson), UpdateTenantErrors))]
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

/// One tenant.
#[utoipa::path(get, path = "/v1/admin/tenants/{slug}", tag = "admin", security(("admin_token" = [])),
    params(("slug" = String, Path, description = "The tenant, `^[a-z][a-z0-9_]{1,39}$`")),
    responses((status = 200, body = TenantJson), AdminTenantErrors))]
pub async fn get_tenant(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(slug): TenantPath,
) -> Result<Json<TenantJson>, ApiError> {
    Ok(Json(state.tenants.get(slug.as_str()).await?.into()))
}

/// Starts deleting a tenant (202): its keys stop working now; its data goes
/// from every store in the background, then the tenant itself (404).
#[utoipa::path(delete, path = "/v1/admin/tenants/{slug}", tag = "admin", security(("admin_token" = [])),
    params(("slug" = String, Path, description = "The tenant, `^[a-z][a-z0-9_]{1,39}$`")),
    responses((status = 202, body = TenantJson, description = "Deleting; the tenant answers 404 when it is gone"), AdminTenantErrors))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(slug): TenantPath,
) -> Result<(StatusCode, Json<TenantJson>), ApiError> {
    let t = state.tenants.delete(&slug).await?;
    Ok((StatusCode::ACCEPTED, Json(t.into())))
}

/// The operator's plans.
#[utoipa::path(get, path = "/v1/admin/plans", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = PlanList), AdminErrors))]
pub async fn list_plans(State(state): State<AppState>, _: Admin) -> Json<PlanList> {
    Json(state.tenants.plans().into())
}

/// Mint a key for the tenant; its secret is in this answer only.
#[utoipa::path(post, path = "/v1/admin/tenants/{slug}/keys", tag = "admin", security(("admin_token" = [])),
    params(("slug" = String, Path, description = "The tenant, `^[a-z][a-z0-9_]{1,39}$`")),
    request_body(content = Option<CreateKey>, description = "Scopes; all three when absent"),
    responses((status = 201, body = NewKeyJson), CreateKeyErrors))]
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

/// The tenant's keys, never their secrets.
#[utoipa::path(get, path = "/v1/admin/tenants/{slug}/keys", tag = "admin", security(("admin_token" = [])),
    params(("slug" = String, Path, description = "The tenant, `^[a-z][a-z0-9_]{1,39}$`")),
    responses((status = 200, body = KeyList), AdminTenantErrors))]
pub async fn list_keys(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(slug): TenantPath,
) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(state.tenants.list_keys(&slug).await?.into()))
}

/// Revoke a key: it stops working at once.
#[utoipa::path(delete, path = "/v1/admin/tenants/{slug}/keys/{id}", tag = "admin", security(("admin_token" = [])),
    params(("slug" = String, Path, description = "The tenant, `^[a-z][a-z0-9_]{1,39}$`"), ("id" = String, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked"), RevokeKeyErrors))]
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
