//! The HTTP API (DESIGN §4): routes, handlers per area, authentication
//! as extractors (`auth`), one error table (`error`), one type per request
//! and response body (`wire`, `params`).
//!
//! **Invariant:** only `api` knows axum and the JSON wire types; handlers
//! take the tenant from the caller's key (`auth::Tenant`), never from the
//! request.

mod admin;
mod aggregate;
mod auth;
mod dashboard;
mod dead_letters;
mod elastic;
pub mod error;
mod intake;
mod logs;
mod loki;
mod openapi;
mod ops;
mod otlp;
mod params;
mod plugins;
pub mod reads;
mod saved;
mod tail;
mod usage;
mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use tokio::net::TcpListener;

use crate::config::{Role, Roles};
use crate::cpu;
use crate::ingest::Ingest;
use crate::plugins::Registry;
use crate::queue::Queue;
use crate::search::SearchIndex;
use crate::search::service::Reader;
use crate::search::tail::Tail;
use crate::stores::MetadataStore;
use crate::stores::dead_letters::DeadLetters;
use crate::stores::raw::RawStore;
use crate::telemetry::Metrics;
use crate::tenants::Tenants;
use crate::usage::Meter;
use error::{ApiError, ErrorCode};

/// What the handlers share, behind one `Arc`: axum clones the state for
/// every extractor of every request, and a struct of Arcs cost a count
/// up and down for each field (3.6 % of the server's request threads
/// with one record a request).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The services and limits behind [`AppState`].
pub struct Shared {
    pub tenants: Arc<Tenants>,
    pub ingest: Arc<Ingest>,
    pub reader: Arc<Reader>,
    pub tail: Tail,
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
    /// Each tenant's reads at once.
    pub reads: Arc<reads::ReadSlots>,
    /// Each tenant's plugin uploads in flight (`reads::MAX_UPLOADS_PER_TENANT`).
    pub uploads: Arc<reads::ReadSlots>,
    /// Each tenant's OTLP and Loki conversions at once
    /// (`reads::MAX_CONVERSIONS_PER_TENANT`).
    pub conversions: Arc<reads::ReadSlots>,
}

/// The role that serves a request; `None` for /health, /ready, /metrics,
/// which every process serves.
fn serving_role(method: &Method, path: &str) -> Option<Role> {
    // Runs on every request: no allocation.
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if (method == Method::POST && path == "/v1/logs")
        || ((method == Method::POST || method == Method::PUT) && is_shipper_intake(path))
    {
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
    let role = serving_role(req.method(), req.uri().path());
    if let Some(role) = role
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
    if role == Some(Role::Ingest) {
        // The intake's CPU (body, decoding, the gate, the queue push) is
        // the bench's "ingest" stage.
        return cpu::sampled(cpu::Stage::Ingest, next.run(req)).await;
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

/// Every route, each from its handler's `#[utoipa::path]`: the router and
/// the OpenAPI document come from the same annotations, so neither can
/// name a route the other lacks.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(logs::ingest, logs::list))
        .routes(routes!(logs::detail))
        .routes(routes!(logs::search))
        .routes(routes!(logs::stats))
        .routes(routes!(aggregate::aggregate))
        .routes(routes!(saved::list))
        .routes(routes!(saved::get, saved::put, saved::delete))
        .routes(routes!(tail::tail))
        .routes(routes!(usage::usage))
        .routes(routes!(admin::create_tenant, admin::list_tenants))
        .routes(routes!(admin::get_tenant, admin::update_tenant, admin::delete_tenant))
        .routes(routes!(admin::list_plans))
        .routes(routes!(admin::create_key, admin::list_keys))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(plugins::list))
        .routes(routes!(plugins::upload, plugins::delete))
        .routes(routes!(plugins::rollback))
        .routes(routes!(plugins::get_pipeline, plugins::put_pipeline))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::replay))
        .routes(routes!(otlp::logs))
        .routes(routes!(loki::push))
        .merge(elastic_routes())
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi::document))
        .routes(routes!(dashboard::asset))
}

pub fn router(state: AppState) -> Router {
    let roles = state.roles;
    let (router, _) = routes().split_for_parts();
    router
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
fn elastic_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(elastic::info))
        .routes(routes!(elastic::health))
        .routes(routes!(elastic::license))
        .routes(routes!(elastic::bulk))
        .routes(routes!(elastic::bulk_into))
        .layer(middleware::map_response(elastic::product_header))
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tail = state.tail.clone();
    // The peer's address: operator endpoints answer loopback callers
    // without a token (`auth::MaybeOperator`).
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        // Open tails never end by themselves.
        tail.close();
    })
    .await
}
