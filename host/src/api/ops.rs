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

/// Ready when every backend this process's roles use answers; says which
/// one does not. Ingest uses the queue and the metadata store (keys),
/// search the metadata, raw and index stores, the processor all four.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let roles = state.roles;
    let show = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e),
    };
    let mut ok = true;
    let mut backends = serde_json::Map::new();
    let mut checks = vec![("metadata", state.meta.ping().await.map_err(|e| e.to_string()))];
    if roles.processor || roles.search {
        checks.push(("raw", state.raw.ping().await.map_err(|e| e.to_string())));
        checks.push(("index", state.index.ping().await.map_err(|e| e.to_string())));
    }
    for (name, result) in &checks {
        ok &= result.is_ok();
        backends.insert(name.to_string(), show(result));
    }
    if roles.ingest || roles.processor {
        let queue = state.queue.ping().await.map_err(|e| e.to_string());
        let depth = state.queue.depth();
        ok &= queue.is_ok();
        backends.insert(
            "queue".into(),
            json!({"status": show(&queue), "entries": depth.entries, "bytes": depth.bytes}),
        );
    }
    let body = json!({
        "status": if ok { "ready" } else { "degraded" },
        "roles": roles.names(),
        "backends": backends,
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
