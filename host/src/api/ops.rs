//! /health, /ready, /metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;

pub async fn health() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Ready when every backend answers; says which one does not.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let metadata = state.meta.ping().await.map_err(|e| e.to_string());
    let raw = state.raw.ping().await.map_err(|e| e.to_string());
    let index = state.index.ping().await.map_err(|e| e.to_string());
    let queue = state.queue.ping().await.map_err(|e| e.to_string());
    let depth = state.queue.depth();
    let ok = queue.is_ok() && metadata.is_ok() && raw.is_ok() && index.is_ok();
    let show = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e),
    };
    let body = json!({
        "status": if ok { "ready" } else { "degraded" },
        "backends": {
            "queue": {"status": show(&queue), "entries": depth.entries, "bytes": depth.bytes},
            "metadata": show(&metadata),
            "raw": show(&raw),
            "index": show(&index),
        }
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.queue.depth()),
    )
}
