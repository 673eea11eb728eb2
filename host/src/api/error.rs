//! Every HTTP error, one shape — `{"error": {"code": "...", "message":
//! "..."}}` — from one table (`ErrorCode`): a stable snake_case code, its
//! status and what it means. docs/API.md shows the same table; a test
//! keeps the two equal. Backend failures get their status here, from
//! their kind, and nowhere else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Backend, BackendError, ErrorKind};
use crate::ingest::IngestError;
use crate::ingest::encoding::EncodingError;
use crate::plugins::RegistryError;
use crate::search::QueryError;
use crate::tenants::TenantError;

macro_rules! error_codes {
    ($($name:ident = $status:literal $code:literal $doc:literal,)*) => {
        /// An API error: its status and its stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $(#[doc = $doc] $name,)*
        }

        impl ErrorCode {
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$name,)*];

            pub fn status(self) -> StatusCode {
                let code = match self { $(ErrorCode::$name => $status,)* };
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$name => $code,)* }
            }

            /// What the code means, for the docs.
            pub fn doc(self) -> &'static str {
                match self { $(ErrorCode::$name => $doc,)* }
            }
        }
    };
}

error_codes! {
    BadRequest = 400 "bad_request" "A query parameter or header has a value the endpoint cannot use; the message says which.",
    InvalidBody = 400 "invalid_body" "The ingest body does not decode; the message names the line.",
    TimestampOutOfRange = 400 "timestamp_out_of_range" "A record's `timestamp` is older than the tenant's plan keeps logs (its retention), or more than 10 minutes ahead of the server's clock; the message names the record and the bound. Nothing of the body was queued.",
    InvalidJson = 400 "invalid_json" "The request's JSON body does not parse, or has unknown fields.",
    InvalidParameter = 400 "invalid_parameter" "A query-string parameter is unknown or malformed.",
    InvalidQuery = 400 "invalid_query" "The search query `q` does not parse.",
    InvalidSlug = 400 "invalid_slug" "A tenant slug must match `^[a-z][a-z0-9_]{1,39}$`.",
    InvalidScope = 400 "invalid_scope" "A key scope is one of `ingest`, `search`, `plugins`.",
    InvalidState = 400 "invalid_state" "A tenant's state is set to `active` or `suspended`; deleting is `DELETE /v1/admin/tenants/{slug}`.",
    InvalidPlan = 400 "invalid_plan" "No such plan (`GET /v1/admin/plans` lists them), or a malformed plan name.",
    InvalidPluginName = 400 "invalid_plugin_name" "A plugin name must match `^[a-z][a-z0-9_-]{0,62}$`.",
    InvalidStage = 400 "invalid_stage" "A plugin stage is one of `parser`, `enricher`, `router`.",
    InvalidId = 400 "invalid_id" "An id in the path is not one LoggerHub makes (a ULID, or a key id).",
    InvalidPlugin = 400 "invalid_plugin" "The component failed a validation check (compile, imports, world, dry_run); the message names it.",
    InvalidPipeline = 400 "invalid_pipeline" "The pipeline is malformed or its limits are out of bounds.",
    MissingApiKey = 401 "missing_api_key" "No `Authorization: Bearer <key>` header.",
    InvalidApiKey = 401 "invalid_api_key" "The API key is unknown or revoked.",
    InvalidAdminToken = 401 "invalid_admin_token" "Admin endpoints take the admin token.",
    InvalidOperatorToken = 401 "invalid_operator_token" "`/metrics` answers the operator: whoever sends the operator token (`LOGGERHUB_OPERATOR_TOKEN`), or, when none is set, a caller on the server's own machine (loopback, not through a proxy).",
    InsufficientScope = 403 "insufficient_scope" "The key lacks the scope the endpoint needs.",
    WrongTenant = 403 "wrong_tenant" "A record names another tenant than the key's.",
    PlanLimit = 403 "plan_limit" "The tenant's plan allows no more of this (plugins, saved searches); the message names the limit. Delete one or ask for a larger plan.",
    TenantSuspended = 403 "tenant_suspended" "The tenant is suspended: ingest is refused and reads still work, until the operator resumes it.",
    NotFound = 404 "not_found" "No such endpoint, log, dead letter or saved search.",
    TenantNotFound = 404 "tenant_not_found" "No such tenant.",
    KeyNotFound = 404 "key_not_found" "No such key of the tenant.",
    PluginNotFound = 404 "plugin_not_found" "No such plugin of the tenant.",
    VersionNotFound = 404 "version_not_found" "No such version of the plugin.",
    WrongRole = 404 "wrong_role" "Another role serves this endpoint; the message names it.",
    MethodNotAllowed = 405 "method_not_allowed" "The endpoint exists but not with this method.",
    TenantExists = 409 "tenant_exists" "The tenant already exists.",
    TenantDeleting = 409 "tenant_deleting" "The tenant is being deleted; it disappears when that is done.",
    ReservedPluginName = 409 "reserved_plugin_name" "The name is a built-in plugin's.",
    PluginInUse = 409 "plugin_in_use" "The plugin is in the tenant's pipeline; change the pipeline first.",
    PayloadTooLarge = 413 "payload_too_large" "The body is over the limit; send smaller batches.",
    TooManyConversions = 429 "too_many_conversions" "The tenant has 4 OTLP or Loki requests being converted at once; retry after `Retry-After` seconds.",
    TooManyUploads = 429 "too_many_uploads" "The tenant has 2 plugin uploads in flight (one compiling, one waiting); retry after `Retry-After` seconds.",
    TooManyReads = 429 "too_many_reads" "The tenant has 16 reads (lists, searches, details, stats) running at once; retry after `Retry-After` seconds, or send fewer together.",
    RateLimited = 429 "rate_limited" "The tenant is over its plan's ingest rate; the message names the limit. Retry after `Retry-After` seconds.",
    DailyQuotaExceeded = 429 "daily_quota_exceeded" "The tenant used its plan's daily volume (`daily_logs` or `daily_bytes`, named in the message); ingest resumes at 00:00 UTC (`Retry-After`) or when the operator moves it to a larger plan.",
    UnsupportedMediaType = 415 "unsupported_media_type" "Send application/json, application/x-ndjson or text/plain.",
    UnsupportedEncoding = 415 "unsupported_encoding" "A `Content-Encoding` other than gzip, zstd, deflate or identity.",
    Rejected = 422 "rejected" "A backend refused the request's data for good; sending it again will not help.",
    Internal = 500 "internal" "Something failed inside LoggerHub; the server log has the cause.",
    QueueFull = 503 "queue_full" "The queue is full; retry after `Retry-After` seconds.",
    BackendUnavailable = 503 "backend_unavailable" "A backend the request needs is down; retry after `Retry-After` seconds.",
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'static str,
    message: &'a str,
}

/// Seconds a client waits before retrying a full queue.
const QUEUE_FULL_RETRY: u32 = 1;
/// Seconds a client waits before retrying while a backend is down.
const UNAVAILABLE_RETRY: u32 = 5;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        // The cause goes to the log; the client gets a stable code.
        tracing::error!(error = %e, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str(),
                message: &self.message,
            },
        };
        let mut resp = (self.code.status(), axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// A backend failure as the client sees it: the status follows the kind.
impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e.kind {
            ErrorKind::Full if e.backend == Backend::Queue => {
                ApiError::new(ErrorCode::QueueFull, "the queue is full; retry later").retry_after(QUEUE_FULL_RETRY)
            }
            ErrorKind::Unavailable | ErrorKind::Full => {
                tracing::warn!(backend = %e.backend, error = %e, "backend unavailable");
                ApiError::new(
                    ErrorCode::BackendUnavailable,
                    format!("the {} is unavailable; retry later", e.backend),
                )
                .retry_after(UNAVAILABLE_RETRY)
            }
            ErrorKind::NotFound => ApiError::not_found(format!("not found in the {}", e.backend)),
            ErrorKind::Rejected => ApiError::new(
                ErrorCode::Rejected,
                format!("the {} refused the data: {}", e.backend, e.source_message()),
            ),
            ErrorKind::Corrupt => ApiError::internal(e),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::BadRequest(m) => ApiError::new(ErrorCode::InvalidBody, m),
            IngestError::Queue(b) => b.into(),
            e @ IngestError::WrongTenant { .. } => ApiError::new(ErrorCode::WrongTenant, e.to_string()),
            e @ IngestError::Suspended(_) => ApiError::new(ErrorCode::TenantSuspended, e.to_string()),
            e @ IngestError::OutOfWindow { .. } => ApiError::new(ErrorCode::TimestampOutOfRange, e.to_string()),
            e @ IngestError::UnsupportedMediaType(_) => ApiError::new(ErrorCode::UnsupportedMediaType, e.to_string()),
            e @ IngestError::RateLimited { retry_after_secs, .. } => {
                ApiError::new(ErrorCode::RateLimited, e.to_string()).retry_after(retry_after_secs)
            }
            e @ IngestError::DailyQuota { retry_after_secs, .. } => {
                ApiError::new(ErrorCode::DailyQuotaExceeded, e.to_string()).retry_after(retry_after_secs)
            }
        }
    }
}

impl From<EncodingError> for ApiError {
    fn from(e: EncodingError) -> Self {
        let code = match e {
            EncodingError::Unsupported(_) => ErrorCode::UnsupportedEncoding,
            EncodingError::Corrupt { .. } => ErrorCode::InvalidBody,
            EncodingError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        let code = match e {
            TenantError::Store(b) => return b.into(),
            TenantError::BadSlug(_) => ErrorCode::InvalidSlug,
            TenantError::Exists(_) => ErrorCode::TenantExists,
            TenantError::NoTenant(_) => ErrorCode::TenantNotFound,
            TenantError::BadScope(_) => ErrorCode::InvalidScope,
            TenantError::NoKey(_) => ErrorCode::KeyNotFound,
            TenantError::Plan(_) => ErrorCode::InvalidPlan,
            TenantError::Deleting(_) => ErrorCode::TenantDeleting,
            TenantError::BadState => ErrorCode::InvalidState,
            TenantError::BadSavedName(_) => ErrorCode::BadRequest,
            TenantError::NoSavedSearch(_) => ErrorCode::NotFound,
            TenantError::TooManySavedSearches(_) => ErrorCode::PlanLimit,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let code = match &e {
            RegistryError::BadName(_) => ErrorCode::InvalidPluginName,
            RegistryError::Invalid { .. } => ErrorCode::InvalidPlugin,
            RegistryError::BadPipeline(_) => ErrorCode::InvalidPipeline,
            RegistryError::Reserved(_) => ErrorCode::ReservedPluginName,
            RegistryError::InUse(_) => ErrorCode::PluginInUse,
            RegistryError::OverPlan(_) => ErrorCode::PlanLimit,
            RegistryError::NotFound { .. } => ErrorCode::PluginNotFound,
            RegistryError::NoVersion { .. } => ErrorCode::VersionNotFound,
            RegistryError::Io(_) | RegistryError::Runtime(_) => return ApiError::internal(e),
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        ApiError::new(ErrorCode::InvalidQuery, e.to_string())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::new(ErrorCode::InvalidParameter, e.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        ApiError::new(ErrorCode::BadRequest, e.body_text())
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::new(ErrorCode::InvalidJson, e.body_text())
    }
}

/// The table as docs/API.md shows it.
pub fn markdown_table() -> String {
    let mut out = String::from("| status | code | meaning |\n|---|---|---|\n");
    for c in ErrorCode::ALL {
        out.push_str(&format!(
            "| {} | `{}` | {} |\n",
            c.status().as_u16(),
            c.as_str(),
            c.doc()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{} twice", c.as_str());
            assert!(c.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(c.status().is_client_error() || c.status().is_server_error());
            assert!(!c.doc().is_empty());
        }
        let docs = include_str!("../../../docs/API.md");
        assert!(
            docs.contains(&markdown_table()),
            "docs/API.md must hold the error table exactly as api::error::markdown_table renders it:\n{}",
            markdown_table()
        );
    }

    #[test]
    fn backend_kinds_decide_the_status() {
        let e = |backend, kind| ApiError::from(BackendError::new(backend, kind, "x"));
        assert_eq!(e(Backend::Queue, ErrorKind::Full).code, ErrorCode::QueueFull);
        assert_eq!(e(Backend::Queue, ErrorKind::Full).retry_after, Some(QUEUE_FULL_RETRY));
        let down = e(Backend::Metadata, ErrorKind::Unavailable);
        assert_eq!(
            (down.code, down.retry_after),
            (ErrorCode::BackendUnavailable, Some(UNAVAILABLE_RETRY))
        );
        assert_eq!(down.message, "the metadata store is unavailable; retry later");
        assert_eq!(e(Backend::Index, ErrorKind::Full).code, ErrorCode::BackendUnavailable);
        assert_eq!(e(Backend::Index, ErrorKind::NotFound).code, ErrorCode::NotFound);
        assert_eq!(e(Backend::Metadata, ErrorKind::Rejected).code, ErrorCode::Rejected);
        assert_eq!(e(Backend::Raw, ErrorKind::Corrupt).code, ErrorCode::Internal);
    }
}
