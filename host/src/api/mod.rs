//! The HTTP API (DESIGN §4): routes, handlers per area, authentication
//! as extractors (`auth`), one error table (`error`), one type per request
//! and response body (`wire`, `params`).
//!
//! **Invariant:** only `api` knows axum and the JSON wire types; handlers
//! take the tenant from the caller's key (`auth::Tenant`), never from the
//! request.

mod admin;
mod auth;
mod dead_letters;
mod elastic;
pub mod error;
mod intake;
mod logs;
mod loki;
mod ops;
mod otlp;
mod params;
mod plugins;
mod usage;
mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

use tokio::net::TcpListener;

use crate::config::{Role, Roles};
use crate::ingest::Ingest;
use crate::pipeline::DeadLetters;
use crate::plugins::Registry;
use crate::queue::Queue;
use crate::search::SearchIndex;
use crate::search::service::Reader;
use crate::stores::MetadataStore;
use crate::stores::raw::RawStore;
use crate::telemetry::Metrics;
use crate::tenants::Tenants;
use crate::usage::Meter;
use error::{ApiError, ErrorCode};

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
    pub meter: Arc<Meter>,
    pub admin_token: Arc<str>,
    /// When set, `/metrics` and `/ready`'s detail answer only to it.
    pub operator_token: Option<Arc<str>>,
    pub max_body_bytes: usize,
    pub roles: Roles,
}

/// The role that serves a request; `None` for /health, /ready, /metrics,
/// which every process serves.
fn serving_role(method: &Method, path: &str) -> Option<Role> {
    // Runs on every request: no allocation.
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if method == Method::POST && (path == "/v1/logs" || is_shipper_intake(path)) {
        Some(Role::Ingest)
    } else if under("/v1/plugins") || under("/v1/pipeline") || under("/v1/dead-letters") {
        Some(Role::Processor)
    } else if path.starts_with("/v1/") {
        Some(Role::Search)
    } else {
        None
    }
}

/// The ingest routes of the protocols shippers speak.
fn is_shipper_intake(path: &str) -> bool {
    path == "/_bulk" || path.ends_with("/_bulk") || path == "/otlp/v1/logs" || path == "/loki/api/v1/push"
}

/// Answers requests for another role's endpoints with a clear 404, so a
/// misrouted load balancer shows at once.
async fn only_my_roles(State(roles): State<Roles>, req: Request, next: Next) -> Response {
    if let Some(role) = serving_role(req.method(), req.uri().path())
        && !roles.has(role)
    {
        return ApiError::new(
            ErrorCode::WrongRole,
            format!(
                "{} {} is served by the {} role; this process runs {}",
                req.method(),
                req.uri().path(),
                role.as_str(),
                roles.names()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// A path no route matched. Under the plugin and dead-letter routes that
/// means a name or id that held a `/` (or an extra segment): a bad name,
/// answered as such, not a missing endpoint.
async fn no_route(uri: axum::http::Uri) -> ApiError {
    let path = uri.path();
    if path.starts_with("/v1/plugins/") {
        plugins::malformed().await
    } else if path.starts_with("/v1/dead-letters/") {
        dead_letters::malformed().await
    } else {
        ApiError::not_found("no such endpoint")
    }
}

pub fn router(state: AppState) -> Router {
    let roles = state.roles;
    Router::new()
        .route("/v1/logs", post(logs::ingest).get(logs::list))
        .route("/v1/logs/{id}", get(logs::detail))
        .route("/v1/search", get(logs::search))
        .route("/v1/stats", get(logs::stats))
        .route("/v1/usage", get(usage::usage))
        .route("/v1/admin/tenants", post(admin::create_tenant).get(admin::list_tenants))
        .route(
            "/v1/admin/tenants/{slug}",
            get(admin::get_tenant)
                .patch(admin::update_tenant)
                .delete(admin::delete_tenant),
        )
        .route("/v1/admin/plans", get(admin::list_plans))
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
        .route("/v1/dead-letters", get(dead_letters::list))
        .route("/v1/dead-letters/{batch_id}/replay", post(dead_letters::replay))
        .route("/otlp/v1/logs", post(otlp::logs))
        .route("/loki/api/v1/push", post(loki::push))
        .merge(elastic_routes())
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .fallback(no_route)
        .method_not_allowed_fallback(|method: Method, uri: axum::http::Uri| async move {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{method} is not an operation of {}", uri.path()),
            )
        })
        .layer(middleware::from_fn_with_state(roles, only_my_roles))
        .with_state(state)
}

/// The Elasticsearch/OpenSearch API shippers and clients send logs with.
fn elastic_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(elastic::info).head(elastic::info))
        .route("/_cluster/health", get(elastic::health))
        .route("/_license", get(elastic::license))
        .route("/_bulk", post(elastic::bulk).put(elastic::bulk))
        .route("/{index}/_bulk", post(elastic::bulk_into).put(elastic::bulk_into))
        .layer(middleware::map_response(elastic::product_header))
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
