//! /v1/plugins and /v1/pipeline: a tenant's plugins (keys with the
//! `plugins` scope).

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::AppState;
use super::auth::{Plugins, Tenant};
use super::error::{ApiError, ErrorCode};
use super::openapi::{PipelineErrors, PluginDeleteErrors, RollbackErrors, TenantErrors, UploadErrors};
use super::wire::{PluginList, PluginUploaded, Rollback, RolledBack};
use crate::plugins::{MAX_PLUGIN_BYTES, PipelineSpec, PluginName, Quota};
use crate::runtime::Stage;

/// `{stage}/{name}` of a plugin route, parsed before any handler runs: a
/// stage other than the three, or a name that is not a [`PluginName`]
/// (which no separator, `..`, `%`, `\\` or control character survives,
/// however it was encoded), is a 400 that touches nothing.
pub struct PluginRef {
    stage: Stage,
    name: PluginName,
}

impl FromRequestParts<AppState> for PluginRef {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path((stage, name)) = Path::<(String, String)>::from_request_parts(parts, state).await?;
        let stage = Stage::parse(&stage).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidStage,
                format!(
                    "no stage {:?}: use parser, enricher or router",
                    stage.chars().take(60).collect::<String>()
                ),
            )
        })?;
        Ok(PluginRef {
            stage,
            name: PluginName::parse(&name)?,
        })
    }
}

/// Any other path under /v1/plugins/: a name that held a `/` (or an
/// extra segment) is still a bad plugin name, not a missing endpoint.
pub async fn malformed() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPluginName,
        "plugin routes are /v1/plugins/{stage}/{name}[/rollback]; a name must match ^[a-z][a-z0-9_-]{0,62}$",
    )
}

/// Upload a version of a plugin: compiled, validated and dry-run before
/// it becomes active. Scope: `plugins`.
#[utoipa::path(put, path = "/v1/plugins/{stage}/{name}", tag = "plugins", security(("tenant_key" = [])),
    params(("stage" = String, Path, description = "parser, enricher or router"), ("name" = String, Path, description = "`^[a-z][a-z0-9_-]{0,62}$`")),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "A WebAssembly component of the stage's world"),
    responses((status = 201, body = PluginUploaded), UploadErrors))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
    PluginRef { stage, name }: PluginRef,
    body: Body,
) -> Result<(StatusCode, Json<PluginUploaded>), ApiError> {
    // Taken before the body is read: a tenant's uploads hold at most two
    // bodies in memory, whatever it sends at once.
    let uploading = state.uploads.enter(&caller.tenant)?;
    let wasm = axum::body::to_bytes(body, MAX_PLUGIN_BYTES).await.map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("a plugin may be at most {MAX_PLUGIN_BYTES} bytes"),
        )
    })?;
    let plan = state.tenants.plan(&caller.plan);
    let quota = Quota {
        plugins: usize::try_from(plan.max_plugins).unwrap_or(usize::MAX),
        versions: usize::try_from(plan.max_versions).unwrap_or(usize::MAX),
    };
    // The compile goes on if the caller hangs up: the slot is held until
    // it ends, as a read's is.
    let (registry, tenant, plugin) = (state.registry.clone(), caller.tenant.clone(), name.clone());
    let version = uploading
        .run(async move { registry.upload_within(&tenant, stage, &plugin, &wasm, quota).await })
        .await??;
    tracing::info!(
        tenant = caller.tenant,
        stage = stage.as_str(),
        plugin = name.as_str(),
        version,
        "plugin uploaded"
    );
    Ok((
        StatusCode::CREATED,
        Json(PluginUploaded {
            stage: stage.as_str(),
            name: name.to_string(),
            version,
            active: version,
        }),
    ))
}

/// The tenant's plugins and the built-in ones, with versions and state.
/// Scope: `plugins`.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", security(("tenant_key" = [])),
    responses((status = 200, body = PluginList), TenantErrors))]
pub async fn list(State(state): State<AppState>, caller: Tenant<Plugins>) -> Json<PluginList> {
    Json(state.registry.list(&caller.tenant).into())
}

/// Remove a plugin and its versions. Scope: `plugins`.
#[utoipa::path(delete, path = "/v1/plugins/{stage}/{name}", tag = "plugins", security(("tenant_key" = [])),
    params(("stage" = String, Path, description = "parser, enricher or router"), ("name" = String, Path, description = "`^[a-z][a-z0-9_-]{0,62}$`")),
    responses((status = 204, description = "Removed"), PluginDeleteErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
    PluginRef { stage, name }: PluginRef,
) -> Result<StatusCode, ApiError> {
    state.registry.delete(&caller.tenant, stage, &name).await?;
    state.metrics.plugin_removed(&caller.tenant, name.as_str());
    Ok(StatusCode::NO_CONTENT)
}

/// Make an earlier version active (the one before when none is named).
/// Scope: `plugins`.
#[utoipa::path(post, path = "/v1/plugins/{stage}/{name}/rollback", tag = "plugins", security(("tenant_key" = [])),
    params(("stage" = String, Path, description = "parser, enricher or router"), ("name" = String, Path, description = "`^[a-z][a-z0-9_-]{0,62}$`")),
    request_body(content = Option<Rollback>),
    responses((status = 200, body = RolledBack), RollbackErrors))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
    PluginRef { stage, name }: PluginRef,
    body: Option<Json<Rollback>>,
) -> Result<Json<RolledBack>, ApiError> {
    let to = body.map(|Json(b)| b).unwrap_or_default().version;
    let active = state.registry.rollback(&caller.tenant, stage, &name, to).await?;
    Ok(Json(RolledBack {
        name: name.to_string(),
        active,
    }))
}

/// The tenant's pipeline. Scope: `plugins`.
#[utoipa::path(get, path = "/v1/pipeline", tag = "plugins", security(("tenant_key" = [])),
    responses((status = 200, body = PipelineSpec), TenantErrors))]
pub async fn get_pipeline(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
) -> Result<Json<PipelineSpec>, ApiError> {
    Ok(Json(state.registry.pipeline(&caller.tenant)?))
}

/// Set the tenant's pipeline: parsers, ordered enrichers, router, plugin
/// config and sandbox limits. Scope: `plugins`.
#[utoipa::path(put, path = "/v1/pipeline", tag = "plugins", security(("tenant_key" = [])),
    request_body = PipelineSpec,
    responses((status = 200, body = PipelineSpec), PipelineErrors))]
pub async fn put_pipeline(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
    body: Result<Json<PipelineSpec>, JsonRejection>,
) -> Result<Json<PipelineSpec>, ApiError> {
    let Json(spec) = body?;
    state.registry.set_pipeline(&caller.tenant, spec.clone()).await?;
    Ok(Json(spec))
}
