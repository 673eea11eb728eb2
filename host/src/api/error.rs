//! Every HTTP error, one shape: `{"error": {"code": "...", "message": "..."}}`
//! with a stable snake_case code, from one table.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ingest::IngestError;
use crate::pipeline::RegistryError;
use crate::search::QueryError;
use crate::search::service::ReadError;
use crate::tenants::TenantError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        // The cause goes to the log; the client gets a stable code.
        tracing::error!(error = %e, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    fn unavailable(what: &str, e: impl std::fmt::Display) -> Self {
        tracing::warn!(backend = what, error = %e, "backend unavailable");
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "backend_unavailable",
            format!("the {what} is unavailable; retry later"),
        );
        err.retry_after = Some(5);
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::BadRequest(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", m),
            e @ IngestError::WrongTenant { .. } => ApiError::new(StatusCode::FORBIDDEN, "wrong_tenant", e.to_string()),
            e @ IngestError::UnsupportedMediaType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                e.to_string(),
            ),
            e @ IngestError::QueueFull => {
                let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue_full", e.to_string());
                err.retry_after = Some(1);
                err
            }
            IngestError::Queue(e) => ApiError::unavailable("queue", e),
        }
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        match e {
            e @ TenantError::BadSlug(_) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_slug", e.to_string()),
            e @ TenantError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "tenant_exists", e.to_string()),
            e @ TenantError::NoTenant(_) => ApiError::new(StatusCode::NOT_FOUND, "tenant_not_found", e.to_string()),
            e @ TenantError::BadScope(_) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_scope", e.to_string()),
            e @ TenantError::NoKey(_) => ApiError::new(StatusCode::NOT_FOUND, "key_not_found", e.to_string()),
            TenantError::Store(e) => ApiError::unavailable("metadata store", e),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let status = match &e {
            RegistryError::BadName(_) | RegistryError::Invalid { .. } | RegistryError::BadPipeline(_) => {
                StatusCode::BAD_REQUEST
            }
            RegistryError::Reserved(_) | RegistryError::InUse(_) => StatusCode::CONFLICT,
            RegistryError::NotFound { .. } | RegistryError::NoVersion { .. } => StatusCode::NOT_FOUND,
            RegistryError::Io(_) | RegistryError::Runtime(_) => return ApiError::internal(e),
        };
        let code = match &e {
            RegistryError::BadName(_) => "invalid_plugin_name",
            RegistryError::Invalid { .. } => "invalid_plugin",
            RegistryError::BadPipeline(_) => "invalid_pipeline",
            RegistryError::Reserved(_) => "reserved_plugin_name",
            RegistryError::InUse(_) => "plugin_in_use",
            RegistryError::NotFound { .. } => "plugin_not_found",
            RegistryError::NoVersion { .. } => "version_not_found",
            RegistryError::Io(_) | RegistryError::Runtime(_) => "internal",
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.to_string())
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Store(e) => ApiError::unavailable("metadata store", e),
            ReadError::Index(e) => ApiError::unavailable("search index", e),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e.body_text())
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.body_text())
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        ApiError::internal(e)
    }
}
