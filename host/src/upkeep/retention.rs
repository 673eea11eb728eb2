//! Retention: a tenant's logs older than its plan keeps them go from every
//! store. A record's age is counted from its own timestamp (the time the
//! list, search and stats show), so a record sent with an old timestamp
//! goes at the next sweep.
//!
//! Each store is swept in bounded batches with a pause between them, so a
//! tenant with a year of expired logs (a plan change, a long outage) never
//! holds the stores for long; the rest waits for the next sweep. The index
//! goes first and the raw objects last, so a record still listed never
//! points at a deleted object.

use std::time::Duration;

use super::Upkeep;
use crate::error::BackendError;
use crate::model;
use crate::stores::Tenant;

/// Records one batch deletes from the index or the metadata store.
const RECORD_BATCH: usize = 5_000;
/// Raw objects one batch deletes (each holds one queue entry's records).
const OBJECT_BATCH: usize = 500;
/// Batches per tenant and sweep: at most 100k records a sweep, a minute
/// apart by default, is 144M a day, well past any plan's daily volume.
const BATCHES_PER_SWEEP: usize = 20;
/// Between two batches: the stores' other writers (ingest's pipeline)
/// get their turn.
const BATCH_PAUSE: Duration = Duration::from_millis(20);

pub(super) async fn sweep(up: &Upkeep, t: &Tenant) -> Result<(), BackendError> {
    let retention = up.plans.resolve(&t.plan).retention();
    let before = model::now_ns().saturating_sub(i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX));
    for batch in 0..BATCHES_PER_SWEEP {
        if batch > 0 {
            tokio::time::sleep(BATCH_PAUSE).await;
        }
        let index = up.index.delete_before(&t.slug, before, RECORD_BATCH).await?;
        let meta = up.meta.delete_logs_before(&t.slug, before, RECORD_BATCH).await?;
        let raw = up.raw.delete_expired(&t.slug, before, OBJECT_BATCH).await?;
        up.metrics.expired("index", index);
        up.metrics.expired("metadata", meta);
        up.metrics.expired("raw", raw as u64);
        if index + meta + raw as u64 > 0 {
            tracing::debug!(tenant = t.slug, index, meta, raw, "expired logs deleted");
        }
        let more = index >= RECORD_BATCH as u64 || meta >= RECORD_BATCH as u64 || raw >= OBJECT_BATCH;
        if !more {
            break;
        }
    }
    Ok(())
}
