//! `POST /otlp/v1/logs`: OTLP/HTTP logs, in protobuf or JSON, as every
//! OpenTelemetry SDK and the Collector send them (an exporter's endpoint
//! `http://HOST:8080/otlp`). Answered as OTLP asks: 200 with an empty
//! response, or a partial success naming the records refused.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::{Ingest, Tenant};
use super::error::{ApiError, ErrorCode};
use super::intake::{Admitted, admitted_body, header_str, queue_converted};
use super::openapi::IngestErrors;
use crate::ingest::WireFormat;
use crate::ingest::otlp;

/// OTLP/HTTP logs (`ExportLogsServiceRequest`). Scope: `ingest`.
#[utoipa::path(post, path = "/otlp/v1/logs", tag = "shippers", security(("tenant_key" = []), ("basic_key" = []), ("elastic_api_key" = [])),
    request_body(description = "An ExportLogsServiceRequest", content(
        (Vec<u8> = "application/x-protobuf"),
        (Object = "application/json"),
    )),
    responses(
        (status = 200, description = "An ExportLogsServiceResponse: empty, or a `partial_success` counting the records refused", content(
            (Vec<u8> = "application/x-protobuf"),
            (Object = "application/json"),
        )),
        IngestErrors,
    ))]
pub async fn logs(
    State(state): State<AppState>,
    caller: Tenant<Ingest>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let encoding = WireFormat::from_content_type(header_str(&headers, header::CONTENT_TYPE.as_str()), None)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "OTLP/HTTP takes application/x-protobuf or application/json",
            )
        })?;
    let converting = state.conversions.enter(&caller.tenant)?;
    let Admitted { body, admission } = admitted_body(&state, &caller, &headers, body).await?;
    let (len, tenant, window) = (body.len(), caller.tenant.clone(), admission.window);
    let decoded = converting
        .run_blocking(move || otlp::decode(&body, encoding, &tenant, window))
        .await?;
    let mut decoded = match decoded {
        Ok(d) => d,
        Err(e) => {
            state.ingest.charge_refused(&admission, len).await;
            return Err(ApiError::new(ErrorCode::InvalidBody, e.to_string()));
        }
    };
    queue_converted(&state, &admission, &mut decoded).await?;
    let content_type = match encoding {
        WireFormat::Protobuf => "application/x-protobuf",
        WireFormat::Json => "application/json",
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        otlp::response(encoding, &decoded),
    )
        .into_response())
}
