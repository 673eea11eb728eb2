//! /v1/dead-letters: what a tenant's plugins failed on, and its replay
//! (keys with the `plugins` scope).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::auth::{Plugins, Tenant};
use super::error::ApiError;
use super::wire::{DeadLetterList, Replayed};

pub async fn list(State(state): State<AppState>, caller: Tenant<Plugins>) -> Result<Json<DeadLetterList>, ApiError> {
    Ok(Json(state.dead_letters.list(&caller.tenant).await?.into()))
}

/// Puts a dead-lettered entry back in the queue (with its batch id, so its
/// records keep their ids) and forgets the dead letter.
pub async fn replay(
    State(state): State<AppState>,
    caller: Tenant<Plugins>,
    Path(batch_id): Path<String>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let letter = state
        .dead_letters
        .get(&caller.tenant, &batch_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no dead letter {batch_id:?}")))?;
    let entry = letter
        .to_entry()
        .filter(|e| e.tenant == caller.tenant)
        .ok_or_else(|| ApiError::not_found(format!("dead letter {batch_id:?} is unreadable")))?;
    state.queue.push(entry).await?;
    state.dead_letters.remove(&caller.tenant, &batch_id).await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { replayed: batch_id })))
}
