//! The OpenAPI 3.1 document served at `/openapi.json`.
//!
//! It is generated, never written: each handler carries a
//! `#[utoipa::path]` annotation and the router is built from those
//! annotations (`utoipa_axum::routes!`), so a route exists exactly when
//! it is documented. The error answers of each operation come from the
//! one error table (`error::ErrorCode`), grouped by status, through the
//! sets below.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi};

use super::error::ErrorCode;

/// The document's frame; `api::routes` adds every operation.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "LoggerHub",
        description = "A multi-tenant log platform. Tenant routes take a tenant API key \
            (`Authorization: Bearer lh_…`; the shippers' routes also take it as the basic-auth \
            password or as `ApiKey`); admin routes take the admin token. Every error is \
            `{\"error\": {\"code\", \"message\"}}` with a stable code. Any path answers 404 \
            `not_found` when no route matches and 405 `method_not_allowed` when the path \
            exists with other methods.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "logs", description = "Sending logs, and reading them back"),
        (name = "shippers", description = "The protocols shippers already speak: Elasticsearch bulk, OTLP/HTTP, Loki push"),
        (name = "plugins", description = "The tenant's WebAssembly pipeline and its dead letters"),
        (name = "admin", description = "Tenants, keys and plans (admin token)"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "dashboard", description = "The dashboard's page and assets, for browsers")
    )
)]
pub struct ApiDoc;

/// The security schemes operations refer to by name.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(what))
                    .build(),
            )
        };
        components.add_security_scheme(
            "tenant_key",
            bearer("A tenant API key (`lh_…`), with the scope the operation names."),
        );
        components.add_security_scheme("admin_token", bearer("The admin token (`LOGGERHUB_ADMIN_TOKEN`)."));
        components.add_security_scheme(
            "operator_token",
            bearer("The operator token (`LOGGERHUB_OPERATOR_TOKEN`), when one is set."),
        );
        components.add_security_scheme(
            "basic_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("A tenant API key as the password (any user name)."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "elastic_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`ApiKey <key>` or `ApiKey base64(id:key)`, as Elasticsearch clients send it.",
            ))),
        );
        components.schemas.insert("Error".to_string(), error_schema());
    }
}

/// Every error answer's body, its code one of the table's.
fn error_schema() -> RefOr<Schema> {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let code = string()
        .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
        .description(Some("A stable snake_case code from the error table."));
    let detail = ObjectBuilder::new()
        .property("code", code)
        .property("message", string().description(Some("What went wrong, for people.")))
        .required("code")
        .required("message");
    ObjectBuilder::new().property("error", detail).required("error").into()
}

/// Responses for the given codes, one per status, each listing its codes
/// and what they mean.
pub fn error_responses(codes: &[ErrorCode]) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for &c in codes.iter().chain(ALWAYS) {
        let v = by_status.entry(c.status().as_u16()).or_default();
        if !v.contains(&c) {
            v.push(c);
        }
    }
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let description = codes
                .iter()
                .map(|c| format!("`{}`: {}", c.as_str(), c.doc()))
                .collect::<Vec<_>>()
                .join("\n\n");
            let mut response = ResponseBuilder::new().description(description);
            if status == 429 || status == 503 {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::Integer))
                        .description(Some("Seconds to wait before retrying"))
                        .build(),
                );
            }
            let response = response
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Error")))
                        .build(),
                )
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// What any operation may answer.
const ALWAYS: &[ErrorCode] = &[ErrorCode::Internal];

/// Declares, per group of operations, the error codes they answer with.
macro_rules! error_sets {
    ($($(#[$doc:meta])* $name:ident = [$($code:ident),* $(,)?];)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                    error_responses(&[$(ErrorCode::$code),*])
                }
            }
        )*

        /// Every set, for the test that each code is documented somewhere.
        #[cfg(test)]
        pub const SETS: &[&[ErrorCode]] = &[$(&[$(ErrorCode::$code),*]),*];
    };
}

error_sets! {
    /// POST /v1/logs: a record outside the tenant's time window refuses
    /// the whole body (the shipper routes refuse it alone, in their
    /// answer's own form).
    LogsIngestErrors = [
        InvalidBody, TimestampOutOfRange, BadRequest, MissingApiKey, InvalidApiKey, InsufficientScope,
        WrongTenant, TenantSuspended, PayloadTooLarge, UnsupportedMediaType, UnsupportedEncoding,
        RateLimited, DailyQuotaExceeded, QueueFull, BackendUnavailable, WrongRole,
    ];
    /// Every shipper route.
    IngestErrors = [
        InvalidBody, BadRequest, MissingApiKey, InvalidApiKey, InsufficientScope, WrongTenant,
        TenantSuspended, PayloadTooLarge, UnsupportedMediaType, UnsupportedEncoding, RateLimited,
        TooManyConversions, DailyQuotaExceeded, QueueFull, BackendUnavailable, WrongRole,
    ];
    /// The Elasticsearch probes (`GET /`, health, license).
    ProbeErrors = [MissingApiKey, InvalidApiKey, InsufficientScope];
    /// The list view and stats.
    ReadErrors = [
        BadRequest, InvalidParameter, MissingApiKey, InvalidApiKey, InsufficientScope,
        TooManyReads, WrongRole, BackendUnavailable,
    ];
    /// Full-text search.
    SearchErrors = [
        BadRequest, InvalidParameter, InvalidQuery, MissingApiKey, InvalidApiKey,
        InsufficientScope, TooManyReads, WrongRole, BackendUnavailable,
    ];
    /// Saved searches: read and delete.
    SavedReadErrors = [
        BadRequest, MissingApiKey, InvalidApiKey, InsufficientScope, NotFound, TooManyReads, WrongRole,
        BackendUnavailable,
    ];
    /// Saving a search.
    SavedErrors = [
        BadRequest, InvalidJson, InvalidQuery, InvalidParameter, MissingApiKey, InvalidApiKey,
        InsufficientScope, NotFound, PlanLimit, WrongRole, BackendUnavailable,
    ];
    /// Counting by a field.
    AggregateErrors = [
        BadRequest, InvalidJson, InvalidParameter, InvalidQuery, MissingApiKey, InvalidApiKey,
        InsufficientScope, TooManyReads, WrongRole, BackendUnavailable,
    ];
    /// The live tail.
    TailErrors = [
        BadRequest, InvalidParameter, InvalidQuery, MissingApiKey, InvalidApiKey,
        InsufficientScope, RateLimited, BackendUnavailable, WrongRole,
    ];
    /// One log.
    DetailErrors = [
        BadRequest, MissingApiKey, InvalidApiKey, InsufficientScope, NotFound, TooManyReads,
        WrongRole, BackendUnavailable,
    ];
    /// A tenant route with nothing to go wrong but the key and the backends.
    TenantErrors = [MissingApiKey, InvalidApiKey, InsufficientScope, WrongRole, BackendUnavailable];
    /// A plugin upload.
    UploadErrors = [
        BadRequest, InvalidStage, InvalidPluginName, InvalidPlugin, MissingApiKey, InvalidApiKey,
        InsufficientScope, PlanLimit, ReservedPluginName, PayloadTooLarge, TooManyUploads, WrongRole,
    ];
    /// Removing a plugin.
    PluginDeleteErrors = [
        BadRequest, InvalidStage, InvalidPluginName, MissingApiKey, InvalidApiKey,
        InsufficientScope, PluginNotFound, ReservedPluginName, PluginInUse, WrongRole,
    ];
    /// Rolling a plugin back.
    RollbackErrors = [
        BadRequest, InvalidJson, InvalidStage, InvalidPluginName, MissingApiKey, InvalidApiKey,
        InsufficientScope, PluginNotFound, VersionNotFound, WrongRole,
    ];
    /// Setting the pipeline.
    PipelineErrors = [
        InvalidJson, InvalidPipeline, MissingApiKey, InvalidApiKey, InsufficientScope,
        PluginNotFound, WrongRole,
    ];
    /// The dead-letter list.
    LetterListErrors = [
        BadRequest, InvalidParameter, MissingApiKey, InvalidApiKey, InsufficientScope, WrongRole,
        BackendUnavailable,
    ];
    /// Replaying a dead letter.
    ReplayErrors = [
        InvalidId, MissingApiKey, InvalidApiKey, InsufficientScope, NotFound, TenantSuspended,
        RateLimited, DailyQuotaExceeded, QueueFull, BackendUnavailable, WrongRole,
    ];
    /// Creating a tenant.
    CreateTenantErrors = [
        InvalidJson, InvalidSlug, InvalidPlan, InvalidAdminToken, TenantExists, TenantDeleting,
        Rejected, BackendUnavailable, WrongRole,
    ];
    /// An admin route with nothing to go wrong but the token and the backends.
    AdminErrors = [InvalidAdminToken, BackendUnavailable, WrongRole];
    /// An admin route naming a tenant.
    AdminTenantErrors = [InvalidSlug, InvalidAdminToken, TenantNotFound, BackendUnavailable, WrongRole];
    /// Changing a tenant.
    UpdateTenantErrors = [
        InvalidJson, InvalidSlug, InvalidPlan, InvalidState, InvalidAdminToken, TenantNotFound,
        TenantDeleting, BackendUnavailable, WrongRole,
    ];
    /// Minting a key.
    CreateKeyErrors = [
        InvalidJson, InvalidSlug, InvalidScope, InvalidAdminToken, TenantNotFound, TenantDeleting,
        BackendUnavailable, WrongRole,
    ];
    /// Revoking a key.
    RevokeKeyErrors = [
        InvalidSlug, InvalidId, InvalidAdminToken, TenantNotFound, KeyNotFound, BackendUnavailable,
        WrongRole,
    ];
    /// `/metrics`.
    OperatorErrors = [InvalidOperatorToken];
    /// `/health`, `/ready`, this document.
    NoErrors = [];
    /// The dashboard's assets.
    AssetErrors = [NotFound];
}

/// The whole document.
pub fn build() -> utoipa::openapi::OpenApi {
    let mut doc = super::routes().into_openapi();
    name_operations(&mut doc);
    doc
}

/// Names each operation by its method and path (`get_v1_logs_id`):
/// handlers serve several methods and share names across modules
/// (`list`), and an operation id must be unique.
fn name_operations(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let slug: String = path
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let ops = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("options", &mut item.options),
            ("head", &mut item.head),
            ("patch", &mut item.patch),
            ("trace", &mut item.trace),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                let words = format!("{method}{slug}");
                let mut id = String::with_capacity(words.len());
                for part in words.split('_').filter(|p| !p.is_empty()) {
                    if !id.is_empty() {
                        id.push('_');
                    }
                    id.push_str(part);
                }
                op.operation_id = Some(id);
            }
        }
    }
}

/// The document as JSON, built once.
pub fn json() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| {
        // Serializing a document of plain strings and maps cannot fail.
        serde_json::to_vec(&build()).unwrap_or_default()
    })
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"), NoErrors))]
pub async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_answered_by_some_operation() {
        for c in ErrorCode::ALL {
            // 405 is the router's, for any path; the document says so once.
            if *c == ErrorCode::MethodNotAllowed {
                continue;
            }
            assert!(
                SETS.iter().any(|s| s.contains(c)) || ALWAYS.contains(c),
                "no operation documents `{}`",
                c.as_str()
            );
        }
    }

    /// A route added beside `routes!` would be served and not documented.
    #[test]
    fn every_route_is_added_through_the_document() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
        let bypasses: Vec<String> = ["route", "route_service", "nest", "nest_service"]
            .iter()
            .map(|m| format!(".{m}("))
            .chain([format!("{}::new()", "Router")])
            .collect();
        let mut files = 0;
        let mut dirs = vec![std::path::PathBuf::from(dir)];
        let mut sources = Vec::new();
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(&d).expect("src/api") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    sources.push(path);
                }
            }
        }
        for path in sources {
            let text = std::fs::read_to_string(&path).expect("source");
            files += 1;
            for b in &bypasses {
                assert!(
                    !text.contains(b.as_str()),
                    "{} calls `{b}`: add routes with `routes!` and a `#[utoipa::path]` on the handler",
                    path.display()
                );
            }
        }
        assert!(files > 10, "read {files} files of {dir}");
    }

    /// The operations in docs/API.md's table, as `(method, path)`.
    fn api_md_routes() -> Vec<(String, String)> {
        let md = include_str!("../../../docs/API.md");
        let mut out = Vec::new();
        for line in md.lines().filter(|l| l.starts_with("| `")) {
            let first = line.split(" | ").next().unwrap_or_default();
            let mut method: Option<String> = None;
            for chunk in first.split('`').skip(1).step_by(2) {
                let (m, p) = match chunk.split_once(' ') {
                    Some((m, p)) => (Some(m), p),
                    None if chunk.starts_with('/') => (None, chunk),
                    None => (Some(chunk), ""),
                };
                if let Some(m) = m {
                    method = Some(m.to_lowercase());
                }
                if let (Some(m), false) = (&method, p.is_empty()) {
                    out.push((m.clone(), p.to_string()));
                }
            }
        }
        out
    }

    #[test]
    fn every_route_of_the_api_docs_is_in_the_document() {
        let doc = serde_json::to_value(build()).expect("json");
        let routes = api_md_routes();
        assert!(routes.len() > 25, "{routes:?}");
        for (method, path) in routes {
            assert!(
                doc["paths"][&path][&method].is_object(),
                "docs/API.md lists {method} {path}; /openapi.json does not"
            );
        }
    }

    #[test]
    fn operations_have_unique_ids_and_document_their_errors() {
        let doc = serde_json::to_value(build()).expect("json");
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("item") {
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_string()), "{id} twice");
                assert!(
                    op["responses"]["500"].is_object(),
                    "{method} {path} lists no error answers"
                );
                assert!(op["summary"].is_string(), "{method} {path} has no summary");
            }
        }
    }

    #[test]
    fn error_answers_group_codes_by_status() {
        let r = error_responses(&[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::RateLimited,
        ]);
        assert_eq!(r.keys().collect::<Vec<_>>(), ["401", "429", "500"]);
        let RefOr::T(unauthorized) = &r["401"] else {
            panic!("inline responses");
        };
        assert!(unauthorized.description.contains("`missing_api_key`"));
        assert!(unauthorized.description.contains("`invalid_api_key`"));
    }
}
