//! /health, /ready, /metrics.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::AppState;
use super::auth::{MaybeOperator, Operator};
use super::openapi::{NoErrors, OperatorErrors};
use super::wire::{BackendReady, Health, Ready, ReadyDetail};

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = Health), NoErrors))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready when every backend this process's roles use answers; says which
/// one does not. Ingest uses the queue and the metadata store (keys),
/// search the metadata, raw and index stores, the processor all four.
#[utoipa::path(get, path = "/ready", tag = "operations",
    security((), ("operator_token" = [])),
    responses(
        (status = 200, body = Ready, description = "Every backend answers; the detail only to the operator (the operator token, or a caller on this machine when none is set)"),
        (status = 503, body = Ready, description = "A backend does not answer; the detail names it"),
        NoErrors,
    ))]
pub async fn ready(State(state): State<AppState>, caller: MaybeOperator) -> (StatusCode, Json<Ready>) {
    let roles = state.roles;
    let status = |r: Result<(), String>| r.err().unwrap_or_else(|| "ok".into());
    let mut ok = true;
    let mut backends = BTreeMap::new();
    let mut check = |name, r: Result<(), String>| {
        ok &= r.is_ok();
        backends.insert(name, BackendReady::Status(status(r)));
    };
    check("metadata", state.meta.ping().await.map_err(|e| e.to_string()));
    if roles.processor || roles.search {
        check("raw", state.raw.ping().await.map_err(|e| e.to_string()));
        check("index", state.index.ping().await.map_err(|e| e.to_string()));
    }
    if roles.ingest || roles.processor {
        let queue = state.queue.ping().await.map_err(|e| e.to_string());
        let depth = state.queue.depth();
        ok &= queue.is_ok();
        backends.insert(
            "queue",
            BackendReady::Queue {
                status: status(queue),
                entries: depth.entries,
                bytes: depth.bytes,
            },
        );
    }
    // Which backend failed, and why, is for the operator: a load balancer
    // needs only the status code.
    let body = Ready {
        status: if ok { "ready" } else { "degraded" },
        detail: caller.is_operator.then(|| ReadyDetail {
            roles: roles.names(),
            backends,
        }),
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security((), ("operator_token" = [])),
    responses((status = 200, content_type = "text/plain; version=0.0.4", body = String), OperatorErrors))]
pub async fn metrics(State(state): State<AppState>, _: Operator) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.queue.depth()),
    )
}
