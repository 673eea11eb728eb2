//! /v1/dead-letters: what a tenant's plugins failed on, and its replay
//! (keys with the `plugins` scope).

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::AppState;
use super::auth::{Plugins, Tenant};
use super::error::{ApiError, ErrorCode};
use super::intake::sender;
use super::openapi::{LetterListErrors, ReplayErrors};
use super::params::LetterParams;
use super::wire::{DeadLetterList, Replayed};
use crate::tenants::Scope;

/// The tenant's dead letters. Their bodies are logs: a key needs the
/// `search` scope as well to see them; with `plugins` alone it sees why
/// each failed, not what it held.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "plugins", security(("tenant_key" = [])),
    params(LetterParams),
    responses((status = 200, body = DeadLetterList), LetterListErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
    params: Result<Query<LetterParams>, QueryRejection>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let Query(p) = params?;
    let limit = p.limit()?;
    let cursor = p
        .cursor
        .as_deref()
        .map(|c| {
            ulid::Ulid::from_string(c)
                .map(|u| u.to_string())
                .map_err(|_| ApiError::bad_request("invalid `cursor`"))
        })
        .transpose()?;
    let mut list: DeadLetterList = state
        .dead_letters
        .page(&caller.tenant, cursor.as_deref(), limit)
        .await?
        .into();
    if !caller.can(Scope::Search) {
        for letter in &mut list.dead_letters {
            letter.body = None;
        }
    }
    Ok(Json(list))
}

/// Puts a dead-lettered entry back in the queue (with its batch id, so its
/// records keep their ids) and forgets the dead letter.
#[utoipa::path(post, path = "/v1/dead-letters/{batch_id}/replay", tag = "plugins", security(("tenant_key" = [])),
    params(("batch_id" = String, Path, description = "The dead letter's batch id (a ULID)")),
    responses((status = 202, body = Replayed), ReplayErrors))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
    path: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let Path(batch_id) = path?;
    // A batch id is a ULID: nothing else may name an object of the store.
    let batch_id = ulid::Ulid::from_string(&batch_id)
        .map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidId,
                format!(
                    "{:?} is not a dead letter's id (a ULID)",
                    batch_id.chars().take(60).collect::<String>()
                ),
            )
        })?
        .to_string();
    let letter = state
        .dead_letters
        .get(&caller.tenant, &batch_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no dead letter {batch_id:?}")))?;
    let entry = crate::pipeline::replay_entry(&letter)
        .filter(|e| e.tenant == caller.tenant)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Internal,
                format!("dead letter {batch_id:?} is unreadable (its stored form is damaged)"),
            )
        })?;
    // Through the gate, as any way in: a suspended tenant, or one over
    // its rate or its day, is refused and the letter stays.
    let admission = state
        .ingest
        .gate(&sender(&state, &caller), Some(entry.body.len()))
        .await?;
    // A whole entry counts as ingest counted it: its JSON records (an
    // array on one line is many, a pretty-printed object one), else its
    // lines.
    let records = letter.records.unwrap_or_else(|| {
        let json = !entry.content_type.starts_with("text/");
        json.then(|| loggerhub_codec::payload::scan_json(&entry.body, &caller.tenant).ok())
            .flatten()
            .map_or_else(|| crate::ingest::lines_in(&entry.body), |scan| scan.count)
            .max(1)
    });
    state.ingest.replay(&admission, entry, records).await?;
    state.dead_letters.remove(&caller.tenant, &batch_id).await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { replayed: batch_id })))
}

/// Any other path under /v1/dead-letters/: an id that held a `/` is a bad
/// id, not a missing endpoint.
pub async fn malformed() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidId,
        "dead-letter routes are /v1/dead-letters/{id}/replay, where id is a ULID",
    )
}
