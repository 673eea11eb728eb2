//! The HTTP API (DESIGN §4): the only module that knows axum and the JSON
//! wire types.

mod admin;
mod auth;
pub mod error;
mod logs;
mod ops;
mod plugins;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::ingest::Ingest;
use crate::pipeline::{DeadLetters, Registry};
use crate::queue::Queue;
use crate::search::SearchIndex;
use crate::search::service::Reader;
use crate::stores::MetadataStore;
use crate::stores::raw::RawStore;
use crate::telemetry::Metrics;
use crate::tenants::Tenants;
use error::ApiError;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub tenants: Arc<Tenants>,
    pub ingest: Arc<Ingest>,
    pub reader: Arc<Reader>,
    pub meta: Arc<dyn MetadataStore>,
    pub raw: RawStore,
    pub index: Arc<dyn SearchIndex>,
    pub queue: Arc<dyn Queue>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub dead_letters: Arc<DeadLetters>,
    pub admin_token: Arc<str>,
    pub max_body_bytes: usize,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/logs", post(logs::ingest).get(logs::list))
        .route("/v1/logs/{id}", get(logs::detail))
        .route("/v1/search", get(logs::search))
        .route("/v1/stats", get(logs::stats))
        .route("/v1/admin/tenants", post(admin::create_tenant).get(admin::list_tenants))
        .route(
            "/v1/admin/tenants/{slug}/keys",
            post(admin::create_key).get(admin::list_keys),
        )
        .route("/v1/admin/tenants/{slug}/keys/{id}", delete(admin::revoke_key))
        .route("/v1/plugins", get(plugins::list))
        .route(
            "/v1/plugins/{stage}/{name}",
            put(plugins::upload).delete(plugins::delete),
        )
        .route("/v1/plugins/{stage}/{name}/rollback", post(plugins::rollback))
        .route("/v1/pipeline", get(plugins::get_pipeline).put(plugins::put_pipeline))
        .route("/v1/dead-letters", get(plugins::list_dead_letters))
        .route("/v1/dead-letters/{batch_id}/replay", post(plugins::replay_dead_letter))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .with_state(state)
}
