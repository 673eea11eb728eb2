//! /v1/saved-searches: a tenant's searches kept under a name, to open
//! again from the dashboard and the CLI.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Search, Tenant};
use super::error::ApiError;
use super::openapi::{SavedErrors, SavedReadErrors};
use super::params::{ListParams, json_body};
use crate::model::format_ts;
use crate::search::{Query, TermsField};
use crate::stores::SavedSearch;

/// The dashboard's relative time ranges.
const RANGES: &[&str] = &["15m", "1h", "6h", "24h", "7d", "30d"];

/// A saved search's filters: those of the list view and search, the
/// dashboard's relative range, and the field its histogram is stacked by.
#[derive(Deserialize, Serialize, ToSchema, Default, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SavedFilters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// trace, debug, info, warn, error or fatal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Relative to now: 15m, 1h, 6h, 24h, 7d or 30d.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `level`, `service`, `attributes.<key>` or `@<key>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl SavedFilters {
    /// Refuses what a search could not use, and returns the filters as
    /// they are kept: times and the level in their canonical form, so
    /// that what a tenant stores is bounded by the fields' own bounds
    /// (a time's fraction or padding is not kept as sent).
    fn checked(self) -> Result<SavedFilters, ApiError> {
        let f = ListParams {
            service: self.service.clone(),
            level: self.level.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            ..ListParams::default()
        }
        .filter()?;
        if let Some(r) = self.range.as_deref().filter(|r| !RANGES.contains(r)) {
            return Err(ApiError::bad_request(format!(
                "`range` is one of {}; got {r:?}",
                RANGES.join(", ")
            )));
        }
        if self.range.is_some() && (self.from.is_some() || self.to.is_some()) {
            return Err(ApiError::bad_request(
                "a saved search takes `range` or `from`/`to`, not both",
            ));
        }
        if let Some(g) = self.group.as_deref().filter(|g| *g != "level") {
            TermsField::parse(g).map_err(|e| ApiError::bad_request(e.message))?;
        }
        Ok(SavedFilters {
            service: f.service,
            level: f.level.map(|l| l.as_str().to_ascii_lowercase()),
            from: f.from.map(format_ts),
            to: f.to.map(format_ts),
            ..self
        })
    }
}

/// A search to keep: its query (docs/QUERY.md) and its filters.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveSearch {
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub filters: SavedFilters,
}

#[derive(Serialize, ToSchema)]
pub struct SavedSearchJson {
    pub name: String,
    pub query: String,
    pub filters: SavedFilters,
    pub created_at: String,
    pub updated_at: String,
}

impl From<SavedSearch> for SavedSearchJson {
    fn from(s: SavedSearch) -> Self {
        SavedSearchJson {
            // Kept by this API only, in the shape it writes; one it cannot
            // read (written by a newer version) is shown without filters.
            filters: serde_json::from_str(&s.filters).unwrap_or_else(|e| {
                tracing::warn!(tenant = s.tenant, name = s.name, error = %e, "saved search filters unreadable");
                SavedFilters::default()
            }),
            name: s.name,
            query: s.query,
            created_at: format_ts(s.created_at),
            updated_at: format_ts(s.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SavedList {
    /// By name.
    pub saved_searches: Vec<SavedSearchJson>,
}

/// The tenant's saved searches, by name. Scope: `search`.
#[utoipa::path(get, path = "/v1/saved-searches", tag = "saved searches", security(("tenant_key" = [])),
    responses((status = 200, body = SavedList), SavedReadErrors))]
pub async fn list(State(state): State<AppState>, caller: Tenant<Search>) -> Result<Json<SavedList>, ApiError> {
    let _reading = state.reads.enter(&caller.tenant)?;
    let saved = state.tenants.saved_searches(&caller.tenant).await?;
    Ok(Json(SavedList {
        saved_searches: saved.into_iter().map(Into::into).collect(),
    }))
}

/// One saved search. Scope: `search`.
#[utoipa::path(get, path = "/v1/saved-searches/{name}", tag = "saved searches", security(("tenant_key" = [])),
    params(("name" = String, Path, description = "1 to 64 of a-z, 0-9, -, _ and .")),
    responses((status = 200, body = SavedSearchJson), SavedReadErrors))]
pub async fn get(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SavedSearchJson>, ApiError> {
    let _reading = state.reads.enter(&caller.tenant)?;
    let Path(name) = path?;
    Ok(Json(state.tenants.saved_search(&caller.tenant, &name).await?.into()))
}

/// Keeps a search under a name (201), or replaces the one of that name
/// (200). At most 200 a tenant. Scope: `search`.
#[utoipa::path(put, path = "/v1/saved-searches/{name}", tag = "saved searches", security(("tenant_key" = [])),
    params(("name" = String, Path, description = "1 to 64 of a-z, 0-9, -, _ and .")),
    request_body = SaveSearch,
    responses((status = 201, body = SavedSearchJson, description = "Saved"), (status = 200, body = SavedSearchJson, description = "Replaced"), SavedErrors))]
pub async fn put(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<(StatusCode, Json<SavedSearchJson>), ApiError> {
    let Path(name) = path?;
    let req: SaveSearch = json_body(&body)?;
    // Bounded by the query language's own bounds (4,096 characters).
    Query::parse(&req.query)?;
    let filters = serde_json::to_string(&req.filters.checked()?).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let created = state
        .tenants
        .save_search(&caller.tenant, &name, &req.query, &filters)
        .await?;
    let saved = state.tenants.saved_search(&caller.tenant, &name).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(saved.into())))
}

/// Forgets a saved search (204). Scope: `search`.
#[utoipa::path(delete, path = "/v1/saved-searches/{name}", tag = "saved searches", security(("tenant_key" = [])),
    params(("name" = String, Path, description = "1 to 64 of a-z, 0-9, -, _ and .")),
    responses((status = 204, description = "Deleted"), SavedReadErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(name) = path?;
    state.tenants.delete_saved_search(&caller.tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
