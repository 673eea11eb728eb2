//! POST /v1/aggregate: a search's matches counted by a field.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Search, Tenant};
use super::error::ApiError;
use super::openapi::AggregateErrors;
use super::params::ListParams;
use crate::search::terms::MAX_TERMS_SIZE;
use crate::search::{Query, Terms, TermsField};

/// Values returned when `size` is not given.
const DEFAULT_SIZE: usize = 10;

/// What to count: a search (the query language and the list filters) and
/// the field whose values are counted.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateRequest {
    /// The search (docs/QUERY.md); empty counts every record.
    #[serde(default)]
    pub q: String,
    pub service: Option<String>,
    /// trace, debug, info, warn, error or fatal.
    pub level: Option<String>,
    /// RFC 3339; inclusive.
    pub from: Option<String>,
    /// RFC 3339; exclusive.
    pub to: Option<String>,
    /// `service`, `level`, `attributes.<key>` or `@<key>`.
    pub by: String,
    /// How many of the most common values: 1 to 1000, default 10.
    pub size: Option<usize>,
}

/// One value and the matches that have it.
#[derive(Serialize, ToSchema)]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
}

/// The most common values first (ties by value), every match counted.
#[derive(Serialize, ToSchema)]
pub struct AggregateJson {
    /// Matches of the search.
    pub total: u64,
    /// The field counted, as the query language writes it.
    pub by: String,
    pub buckets: Vec<ValueCount>,
    /// Matches of the values past `size`.
    pub other: u64,
    /// Matches without the field (an attribute they lack).
    pub missing: u64,
}

impl AggregateJson {
    fn new(t: Terms, by: String) -> Self {
        AggregateJson {
            total: t.total,
            by,
            buckets: t
                .buckets
                .into_iter()
                .map(|(value, count)| ValueCount { value, count })
                .collect(),
            other: t.other,
            missing: t.missing,
        }
    }
}

/// Count a search's matches by a field: its most common values, the rest
/// summed. Scope: `search`.
#[utoipa::path(post, path = "/v1/aggregate", tag = "logs", security(("tenant_key" = [])),
    request_body = AggregateRequest,
    responses((status = 200, body = AggregateJson), AggregateErrors))]
pub async fn aggregate(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    body: Result<Json<AggregateRequest>, JsonRejection>,
) -> Result<Json<AggregateJson>, ApiError> {
    let reading = state.reads.enter(&caller.tenant)?;
    let Json(req) = body?;
    let query = Query::parse(&req.q)?;
    let field = TermsField::parse(&req.by).map_err(|e| ApiError::bad_request(e.message))?;
    let size = req.size.unwrap_or(DEFAULT_SIZE);
    if !(1..=MAX_TERMS_SIZE).contains(&size) {
        return Err(ApiError::bad_request(format!("`size` is 1 to {MAX_TERMS_SIZE}")));
    }
    let filter = ListParams {
        service: req.service,
        level: req.level,
        from: req.from,
        to: req.to,
        ..ListParams::default()
    }
    .filter()?;
    let (reader, tenant, by) = (state.reader.clone(), caller.tenant, field.name());
    let terms = reading
        .run(async move { reader.terms(&tenant, &query, &filter, &field, size).await })
        .await??;
    Ok(Json(AggregateJson::new(terms, by)))
}
