//! What every ingest route does before it reads its format: the tenant's
//! plan checks (daily volume, rate) before the body is read, then the body,
//! inflated per `Content-Encoding`, under the body limit as inflated.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;

use super::AppState;
use super::auth::{Ingest, Tenant};
use super::error::{ApiError, ErrorCode};
use crate::ingest::encoding::{self, Encoding};
use crate::ingest::rate::Rate;
use crate::ingest::{CheckedBatch, Converted, Daily};
use crate::model::window::TimeWindow;

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A body the caller's plan let in, with what the plan says of its records.
pub struct Admitted {
    pub body: Bytes,
    /// The plan's rate, which the records are charged to.
    pub rate: Rate,
    /// The times the records may carry (the plan's retention).
    pub window: TimeWindow,
}

/// The caller's body, once its plan lets it in.
pub async fn admitted_body(
    state: &AppState,
    caller: &Tenant<Ingest>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Admitted, ApiError> {
    let limit = state.max_body_bytes;
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("body is over the limit of {limit} bytes; send smaller batches"),
        )
    };
    let content_length = header_str(headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    if content_length.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let plan = state.tenants.plan(&caller.plan);
    let rate = Rate {
        logs_per_second: plan.logs_per_second,
        bytes_per_second: plan.bytes_per_second,
        burst_seconds: plan.burst_seconds,
    };
    let daily = Daily {
        logs: plan.daily_logs,
        bytes: plan.daily_bytes,
    };
    state.ingest.admit(&caller.tenant, rate, daily, content_length).await?;
    let encoding = Encoding::parse(header_str(headers, header::CONTENT_ENCODING.as_str()))?;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    // The limit holds for what the body inflates to, not only for what
    // came over the wire.
    Ok(Admitted {
        body: encoding::decode(encoding, body, limit)?,
        rate,
        window: TimeWindow::now(plan.retention()),
    })
}

/// Queues the records a shipper protocol converted (`ingest::Converted`),
/// if any, as one batch charged to `rate`; a request whose records went
/// past the conversion's bound is refused whole (413), nothing queued.
pub async fn queue_converted(
    state: &AppState,
    caller: &Tenant<Ingest>,
    rate: Rate,
    converted: &mut Converted,
) -> Result<(), ApiError> {
    converted
        .check_budget()
        .map_err(|e| ApiError::new(ErrorCode::PayloadTooLarge, e.to_string()))?;
    if converted.count == 0 {
        return Ok(());
    }
    state
        .ingest
        .ingest_checked(CheckedBatch {
            tenant: &caller.tenant,
            batch_id: ulid::Ulid::new(),
            service: None,
            body: std::mem::take(&mut converted.body).into(),
            count: converted.count,
            has_ids: false,
            rate,
            received_at: converted.received_at(),
        })
        .await?;
    Ok(())
}
