//! What a tenant's state and plan make of its turns: its state as lately
//! looked up (`Deleting`: being deleted, suspended), its plan applied
//! (dead letters kept, plugin CPU, the day's volume), and the holds on its
//! lane while what its pipeline stored is unpaid.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Processor;
use crate::ingest::rate::{Rate, RateError};
use crate::stores::{AccountStore, Tenant, TenantState};
use crate::tenants::plans::Plan;
use crate::usage::Usage;

impl Processor {
    /// What the tenant's plan says for its turn: the dead letters it
    /// keeps, and whether it used its plugin CPU for today (then its own
    /// plugins are skipped and the built-ins take their stages, until
    /// midnight UTC or a larger plan). Returns the plan, and whether what
    /// the tenant's pipeline stored today used up its daily volume (its
    /// lane then waits until midnight UTC or a larger plan).
    pub(super) async fn apply_plan(&self, tenant: &str, plan: &str) -> (Plan, bool) {
        let plan = self.plans.resolve(plan);
        self.dead_letters
            .set_plan_cap(tenant, usize::try_from(plan.dead_letter_cap).unwrap_or(usize::MAX));
        let today = self.meter.today(tenant).await;
        let over = today.plugin_cpu_us >= plan.plugin_cpu_seconds_per_day.saturating_mul(1_000_000);
        self.registry.set_cpu_exhausted(tenant, over).await;
        let day_used = today.stored_logs >= plan.daily_logs || today.stored_bytes >= plan.daily_bytes;
        (plan.clone(), day_used)
    }

    /// Charges what a turn stored past what was sent (`sent`: records and
    /// bytes, as ingest charged them) to the tenant's rate, the buckets
    /// ingest takes from: the tenant's next requests wait for the debt,
    /// and its lane waits too while it is in debt. A pipeline that stores
    /// what it was sent charges nothing more, however fast it catches up.
    pub(super) async fn charge_stored(&self, tenant: &str, plan: &Plan, stored: &Usage, sent: (u64, u64)) {
        let (logs, bytes) = (
            stored.stored_logs.saturating_sub(sent.0),
            stored.stored_bytes.saturating_sub(sent.1),
        );
        if logs == 0 && bytes == 0 {
            return;
        }
        let rate = Rate {
            logs_per_second: plan.logs_per_second,
            bytes_per_second: plan.bytes_per_second,
            burst_seconds: plan.burst_seconds,
        };
        let _ = self.stored_rates.charge(tenant, rate, logs, bytes).await;
        if let Err(RateError::Limited { retry_after, .. }) = self.stored_rates.check(tenant, rate, 1, 1).await {
            self.metrics.tenant_refused(tenant, "stored_rate");
            tracing::debug!(tenant, ?retry_after, "stored past the plan's rate; the lane waits");
            self.hold(tenant, retry_after);
        }
    }

    pub(super) fn hold(&self, tenant: &str, wait: Duration) {
        let mut held = self.held.lock();
        if held.len() > 100_000 {
            let now = Instant::now();
            held.retain(|_, until| *until > now);
        }
        held.insert(tenant.to_string(), Instant::now() + wait);
    }

    pub(super) fn is_held(&self, tenant: &str) -> bool {
        self.held
            .lock()
            .get(tenant)
            .is_some_and(|until| *until > Instant::now())
    }
}

/// How long a tenant's state, once looked up, is trusted by a processor
/// (`upkeep::deletion` waits longer than this before removing anything).
const STATE_TTL: Duration = Duration::from_secs(2);

/// The tenants being deleted, per processor: their entries are dropped
/// instead of written to stores the deletion is emptying.
#[derive(Default)]
pub struct Deleting {
    seen: parking_lot::Mutex<HashMap<String, (Instant, Option<Tenant>)>>,
}

impl Deleting {
    /// The tenant as the metadata store lately said (None: no such tenant,
    /// or the store cannot answer; the turn's own writes then fail and
    /// retry).
    pub(super) async fn tenant(&self, accounts: &dyn AccountStore, tenant: &str) -> Option<Tenant> {
        if let Some((at, t)) = self.seen.lock().get(tenant)
            && at.elapsed() < STATE_TTL
        {
            return t.clone();
        }
        let t = accounts.get_tenant(tenant).await.ok().flatten();
        let mut seen = self.seen.lock();
        if seen.len() > 100_000 {
            seen.clear();
        }
        seen.insert(tenant.to_string(), (Instant::now(), t.clone()));
        t
    }

    /// Whether the tenant was lately found suspended: its lane is not
    /// picked until `SUSPENDED_RECHECK` has passed, then one turn looks
    /// again.
    pub(super) fn held(&self, tenant: &str) -> bool {
        self.seen.lock().get(tenant).is_some_and(|(at, t)| {
            at.elapsed() < SUSPENDED_RECHECK && t.as_ref().is_some_and(|t| t.state == TenantState::Suspended)
        })
    }
}

/// How long a suspended tenant's lane sits out before a turn looks at its
/// state again.
const SUSPENDED_RECHECK: Duration = Duration::from_secs(5);
