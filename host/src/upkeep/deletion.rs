//! Deleting a tenant, after `DELETE /v1/admin/tenants/{slug}` marked it:
//! its keys stopped working at once; once every process can have seen the
//! mark (`GRACE`), each sweep takes bounded steps through the queue, the
//! plugins, the dead letters, the index, the raw store and the metadata
//! store, and the tenant itself goes last. A restart resumes from whatever
//! is left, since each step only removes what is still there.

use std::time::Duration;

use super::Upkeep;
use crate::error::BackendError;
use crate::model;
use crate::stores::Tenant;

/// Between the mark and the first removal: other processes trust a key
/// they looked up for 5 s (`tenants::AUTH_CACHE_TTL`) and processors check
/// a tenant's state every 2 s, and a turn started before may still be
/// writing (twice the turn budget). Entries accepted meanwhile are in the
/// queue when the lane is emptied.
const GRACE: Duration = Duration::from_secs(10);
/// Queue entries dropped per step.
const ENTRY_BATCH: usize = 1_000;
/// Raw objects and records removed per step.
const OBJECT_BATCH: usize = 1_000;
const RECORD_BATCH: usize = 10_000;

/// One step; true once the tenant is gone.
pub(super) async fn step(up: &Upkeep, t: &Tenant) -> Result<bool, BackendError> {
    let since = model::now_ns().saturating_sub(t.state_since);
    if since < i64::try_from(GRACE.as_nanos()).unwrap_or(i64::MAX) {
        return Ok(false);
    }
    let tenant = t.slug.as_str();
    loop {
        let taken = up.queue.take_lane(tenant, ENTRY_BATCH, usize::MAX).await?;
        if taken.is_empty() {
            break;
        }
        let tokens: Vec<u64> = taken.iter().map(|d| d.token).collect();
        up.queue.ack(&tokens).await?;
    }
    if let Err(e) = up.registry.purge_tenant(tenant).await {
        // What the registry could not remove one by one went with the
        // tenant's plugin directory.
        tracing::warn!(tenant, error = %e, "deleting the tenant's plugins");
    }
    up.dead_letters.purge(tenant).await?;
    up.index.drop_tenant(tenant).await?;
    if up.raw.purge(tenant, OBJECT_BATCH).await? > 0 {
        return Ok(false);
    }
    // Its debts go with it: a new tenant of the name starts with full
    // buckets.
    if let Err(e) = up.rates.forget(tenant).await {
        tracing::warn!(tenant, error = %e, "forgetting the tenant's rate buckets");
        return Ok(false);
    }
    up.meta.purge_tenant(tenant, RECORD_BATCH).await
}
