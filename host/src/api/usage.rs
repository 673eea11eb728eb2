//! GET /v1/usage: the tenant's consumption against its plan, today and
//! over the last 30 days (UTC), from the counters every process adds to.

use axum::Json;
use axum::extract::State;

use super::AppState;
use super::auth::{Search, Tenant};
use super::error::ApiError;
use super::openapi::TenantErrors;
use super::wire::{DayJson, UsageJson, UsageLimits};
use crate::model;

/// Days of history the answer carries, today included.
const HISTORY_DAYS: i64 = 30;

/// The tenant's consumption against its plan. Scope: `search`.
#[utoipa::path(get, path = "/v1/usage", tag = "logs", security(("tenant_key" = [])),
    responses((status = 200, body = UsageJson), TenantErrors))]
pub async fn usage(State(state): State<AppState>, caller: Tenant<Search>) -> Result<Json<UsageJson>, ApiError> {
    let plan = state.tenants.plan(&caller.plan).clone();
    let today = model::day_of(model::now_ns());
    let mut days = state.meta.usage(&caller.tenant, today - (HISTORY_DAYS - 1)).await?;
    // Today as this process counts it: the store's figure plus what is not
    // flushed yet.
    let now = state.meter.today(&caller.tenant).await;
    match days.iter_mut().find(|d| d.day == today) {
        Some(d) => d.used = now,
        None => days.push(crate::usage::UsageDay {
            day: today,
            used: now,
            stored: None,
        }),
    }
    let stored = days.iter().rev().find_map(|d| d.stored);
    let mut exhausted = Vec::new();
    if now.logs.max(now.stored_logs) >= plan.daily_logs {
        exhausted.push("daily_logs");
    }
    if now.bytes.max(now.stored_bytes) >= plan.daily_bytes {
        exhausted.push("daily_bytes");
    }
    if now.plugin_cpu_us >= plan.plugin_cpu_seconds_per_day.saturating_mul(1_000_000) {
        exhausted.push("plugin_cpu");
    }
    Ok(Json(UsageJson {
        tenant: caller.tenant,
        plan: caller.plan,
        today: DayJson::from(*days.last().unwrap_or(&crate::usage::UsageDay::default())),
        limits: UsageLimits::from(&plan),
        exhausted,
        stored: stored.map(Into::into),
        days: days.into_iter().map(DayJson::from).collect(),
    }))
}
