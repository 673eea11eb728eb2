//! `POST /loki/api/v1/push`: Loki's push API, as Promtail, Grafana Alloy
//! and the Loki logging clients send it (protobuf + snappy, or JSON).
//! Answered 204 as Loki does; lines the payload decoder refuses are
//! counted in `X-LoggerHub-Rejected` (Loki's API has no per-line answer).

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
use crate::ingest::loki;

/// Loki push (`PushRequest`). Scope: `ingest`.
#[utoipa::path(post, path = "/loki/api/v1/push", tag = "shippers", security(("tenant_key" = []), ("basic_key" = []), ("elastic_api_key" = [])),
    params(("X-Scope-OrgID" = Option<String>, Header, description = "When sent, the key's tenant")),
    request_body(description = "Streams of lines with labels", content(
        (Vec<u8> = "application/x-protobuf"),
        (Object = "application/json"),
    )),
    responses((status = 204, description = "Stored; `X-LoggerHub-Rejected` counts lines refused"), IngestErrors))]
pub async fn push(
    State(state): State<AppState>,
    caller: Tenant<Ingest>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Loki's tenant header: the key already names the tenant, so another
    // name is a request for someone else's data.
    if let Some(org) = header_str(&headers, "x-scope-orgid")
        && org != caller.tenant
    {
        return Err(ApiError::new(
            ErrorCode::WrongTenant,
            format!(
                "X-Scope-OrgID names {org:?}, but the key belongs to {:?}",
                caller.tenant
            ),
        ));
    }
    let encoding = WireFormat::from_content_type(
        header_str(&headers, header::CONTENT_TYPE.as_str()),
        Some(WireFormat::Protobuf),
    )
    .ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Loki push takes application/x-protobuf (snappy) or application/json",
        )
    })?;
    let converting = state.conversions.enter(&caller.tenant)?;
    let Admitted { body, admission } = admitted_body(&state, &caller, &headers, body).await?;
    let (len, tenant, window, max_inflated) = (
        body.len(),
        caller.tenant.clone(),
        admission.window,
        state.max_body_bytes,
    );
    let decoded = converting
        .run_blocking(move || loki::decode(&body, encoding, &tenant, max_inflated, window))
        .await?;
    let mut decoded = match decoded {
        Ok(d) => d,
        Err(e) => {
            state.ingest.charge_refused(&admission, len).await;
            let code = if e.0.starts_with(loki::INFLATES_PAST_THE_LIMIT) {
                ErrorCode::PayloadTooLarge
            } else {
                ErrorCode::InvalidBody
            };
            return Err(ApiError::new(code, e.to_string()));
        }
    };
    queue_converted(&state, &admission, &mut decoded).await?;
    if decoded.count == 0
        && let Some(reason) = decoded.first_error
    {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("no line could be taken: {reason}"),
        ));
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert("x-loggerhub-rejected", HeaderValue::from(decoded.rejected));
    Ok(resp)
}
