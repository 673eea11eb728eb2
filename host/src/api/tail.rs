//! `GET /v1/tail`: the live tail as server-sent events. Each new log that
//! matches the query is sent as it lands (`search::tail` reads the store
//! once per tenant, however many watch).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query as QueryParams, State};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use super::AppState;
use super::auth::{Search, Tenant};
use super::error::{ApiError, ErrorCode};
use super::openapi::TailErrors;
use super::params::ListParams;
use super::wire::{RecordJson, TailEvent};
use crate::model::LogFilter;
use crate::search::Query;
use crate::search::tail::{MAX_TAIL, TailError, Watch};

/// A comment sent this often keeps proxies from closing a quiet tail.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TailParams {
    /// The search syntax; matched against the message as stored in the
    /// metadata store (its first 500 characters).
    pub q: Option<String>,
    pub service: Option<String>,
    /// trace, debug, info, warn, error or fatal.
    pub level: Option<String>,
}

/// Follow new logs as they arrive.
///
/// Server-sent events: `logs` with `{"hits": [record…], "dropped": n}`,
/// oldest first, for each batch of new logs that match; `lagged` with
/// `{"batches": n}` when this client read too slowly and skipped some.
/// Tailed are logs whose own time is within the last minute when they
/// land. A tail ends after ten minutes; clients reconnect (the key is
/// checked again then). Scope: `search`.
#[utoipa::path(get, path = "/v1/tail", tag = "logs", security(("tenant_key" = [])),
    params(TailParams),
    responses(
        (status = 200, content_type = "text/event-stream", body = TailEvent, description = "A stream of `logs` and `lagged` events"),
        TailErrors,
    ))]
pub async fn tail(
    State(state): State<AppState>,
    caller: Tenant<Search>,
    params: Result<QueryParams<TailParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let QueryParams(p) = params?;
    let query = Query::parse(p.q.as_deref().unwrap_or_default())?;
    let filter = ListParams {
        service: p.service,
        level: p.level,
        ..ListParams::default()
    }
    .filter()?;
    let watch = state.tail.watch(&caller.tenant).map_err(|e| {
        let code = match e {
            TailError::TenantBusy => ErrorCode::RateLimited,
            TailError::Busy => ErrorCode::BackendUnavailable,
        };
        ApiError::new(code, e.to_string()).retry_after(5)
    })?;
    let until = tokio::time::Instant::now() + MAX_TAIL;
    let stream = futures::stream::unfold((watch, query, filter), move |(mut w, query, filter)| async move {
        let event = tokio::time::timeout_at(until, next_event(&mut w, &query, &filter))
            .await
            .ok()??;
        Some((Ok::<_, Infallible>(event), (w, query, filter)))
    });
    // A proxy must pass each event on as it comes (nginx reads this).
    Ok((
        [("x-accel-buffering", "no")],
        Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)),
    ))
}

/// The next event for this watcher; `None` ends the stream.
async fn next_event(w: &mut Watch, query: &Query, filter: &LogFilter) -> Option<Event> {
    loop {
        let received = tokio::select! {
            r = w.batches.recv() => r,
            _ = w.closing.wait_for(|closing| *closing) => return None,
        };
        match received {
            Ok(batch) => {
                let hits: Vec<RecordJson> = batch
                    .records
                    .iter()
                    .filter(|r| {
                        filter.service.as_ref().is_none_or(|s| r.service == *s)
                            && filter.level.is_none_or(|l| r.level == l)
                            && query.matches(r)
                    })
                    .map(|r| RecordJson::from(r.clone()))
                    .collect();
                if hits.is_empty() && batch.dropped == 0 {
                    continue;
                }
                let body = TailEvent {
                    hits,
                    dropped: batch.dropped,
                };
                return Event::default().event("logs").json_data(body).ok();
            }
            Err(RecvError::Lagged(n)) => {
                return Event::default()
                    .event("lagged")
                    .json_data(serde_json::json!({ "batches": n }))
                    .ok();
            }
            Err(RecvError::Closed) => return None,
        }
    }
}
