//! The gate every way in passes first, before a body is read: who sends
//! (`Sender`, as its key and plan say) and the `Admission` that only
//! `Ingest::gate` makes.

use super::rate::Rate;
use super::{Ingest, IngestError};
use crate::model::window::TimeWindow;

/// A tenant's daily volume, from its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daily {
    pub logs: u64,
    pub bytes: u64,
}

/// Who sends records, as its key and plan say: what the gate checks.
#[derive(Debug, Clone)]
pub struct Sender {
    pub tenant: String,
    pub suspended: bool,
    pub rate: Rate,
    pub daily: Daily,
    /// How long the tenant's plan keeps logs.
    pub retention: std::time::Duration,
}

/// Records may enter for a tenant now. Only `Ingest::gate` makes one; every
/// method that queues records takes one.
#[derive(Debug)]
pub struct Admission {
    pub(super) tenant: String,
    pub(super) rate: Rate,
    /// The times the records may carry, from their arrival.
    pub window: TimeWindow,
}

impl Admission {
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Ingest {
    /// The gate every way in passes first, before a body is read:
    /// refuses a suspended tenant, one that used up its daily volume, or
    /// one whose buckets cannot take one record and the body's announced
    /// length now. (The request that crosses the daily line is taken; the
    /// next one is refused.)
    pub async fn gate(&self, sender: &Sender, content_length: Option<usize>) -> Result<Admission, IngestError> {
        let (tenant, rate, daily) = (sender.tenant.as_str(), sender.rate, sender.daily);
        if sender.suspended {
            self.metrics.error("tenant_suspended");
            self.metrics.tenant_refused(tenant, "suspended");
            return Err(IngestError::Suspended(tenant.to_string()));
        }
        let today = self.meter.today(tenant).await;
        // What the tenant's plugins stored counts as much as what it sent:
        // a pipeline that makes more records than it was given uses the day
        // up sooner.
        let over = if today.logs.max(today.stored_logs) >= daily.logs {
            Some(("daily_logs", daily.logs))
        } else if today.bytes.max(today.stored_bytes) >= daily.bytes {
            Some(("daily_bytes", daily.bytes))
        } else {
            None
        };
        if let Some((limit, quota)) = over {
            self.metrics.error("daily_quota");
            self.metrics.tenant_refused(tenant, "daily_quota");
            return Err(IngestError::DailyQuota {
                limit,
                quota,
                retry_after_secs: crate::usage::seconds_to_midnight(),
            });
        }
        let bytes = content_length.unwrap_or(0) as u64;
        if let Err(e) = self.rates.check(tenant, rate, 1, bytes).await {
            self.metrics.error("rate_limited");
            self.metrics.tenant_refused(tenant, "rate_limited");
            return Err(e.into());
        }
        Ok(Admission {
            tenant: tenant.to_string(),
            rate,
            window: TimeWindow::now(sender.retention),
        })
    }
}
