//! What every ingest route does before it reads its format: the tenant's
//! plan checks (daily volume, rate) before the body is read, then the body,
//! inflated per `Content-Encoding`, under the body limit as inflated.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;

use super::AppState;
use super::auth::{Ingest, RequiredScope, Tenant};
use super::error::{ApiError, ErrorCode};
use crate::ingest::encoding::{self, Encoding};
use crate::ingest::rate::Rate;
use crate::ingest::{Admission, Converted, Daily, Sender};

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A body the gate let in (`Ingest::gate`), with the admission its
/// records are queued under.
pub struct Admitted {
    pub body: Bytes,
    pub admission: Admission,
}

/// The caller as the gate sees it: its plan's limits and its state.
pub fn sender(state: &AppState, caller: &Tenant<impl RequiredScope>) -> Sender {
    let plan = state.tenants.plan(&caller.plan);
    Sender {
        tenant: caller.tenant.clone(),
        suspended: caller.suspended,
        rate: Rate {
            logs_per_second: plan.logs_per_second,
            bytes_per_second: plan.bytes_per_second,
            burst_seconds: plan.burst_seconds,
        },
        daily: Daily {
            logs: plan.daily_logs,
            bytes: plan.daily_bytes,
        },
        retention: plan.retention(),
    }
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
    let admission = state.ingest.gate(&sender(state, caller), content_length).await?;
    let encoding = Encoding::parse(header_str(headers, header::CONTENT_ENCODING.as_str()))?;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    // The limit holds for what the body inflates to, not only for what
    // came over the wire.
    Ok(Admitted {
        body: encoding::decode(encoding, body, limit)?,
        admission,
    })
}

/// Queues the records a shipper protocol converted (`ingest::Converted`),
/// if any, under `admission` (`Ingest::ingest_converted`); a request whose records went
/// past the conversion's bound is refused whole (413), nothing queued.
pub async fn queue_converted(
    state: &AppState,
    admission: &Admission,
    converted: &mut Converted,
) -> Result<(), ApiError> {
    // Building records that are not taken cost the server as much as the
    // taken ones: charged to the tenant's bytes rate, refused or not.
    let taken: usize = converted.count_bytes();
    let waste = converted.spent().saturating_sub(taken);
    if let Err(e) = converted.check_budget() {
        state.ingest.charge_refused(admission, converted.spent()).await;
        return Err(ApiError::new(ErrorCode::PayloadTooLarge, e.to_string()));
    }
    if waste > 0 {
        state.ingest.charge_refused(admission, waste).await;
    }
    if converted.count == 0 {
        return Ok(());
    }
    state
        .ingest
        .ingest_converted(admission, None, converted.entries())
        .await?;
    Ok(())
}
