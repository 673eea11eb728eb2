//! Upkeep: the background job every processor runs. Each sweep walks the
//! tenants and, for each,
//! - deletes what its plan's retention has let expire, from the index,
//!   the metadata store and the raw store (`retention`);
//! - carries on deleting a tenant being deleted, one bounded step at a
//!   time, then removes the tenant itself (`deletion`);
//! - now and then measures what its data takes in each store, for
//!   `GET /v1/usage` and the metrics.
//!
//! Every step is idempotent and bounded, so a sweep cut short by a restart
//! (or run by two processors at once) resumes where the stores say it is.
//!
//! **Invariant:** upkeep only deletes; it never writes a record. It reads
//! a tenant's plan and state from the metadata store at every sweep.

mod deletion;
mod retention;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::model;
use crate::plugins::Registry;
use crate::queue::Queue;
use crate::search::SearchIndex;
use crate::stores::dead_letters::DeadLetters;
use crate::stores::raw::RawStore;
use crate::stores::{AccountStore, MetadataStore, Stored, Tenant, TenantState};
use crate::telemetry::Metrics;
use crate::tenants::plans::Plans;

/// What a tenant's stored bytes are measured every this many sweeps (ten
/// minutes at the default interval): a raw store's size is a listing of
/// every object.
const MEASURE_EVERY_SWEEPS: u64 = 10;

pub struct Upkeep {
    pub meta: Arc<dyn MetadataStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub raw: RawStore,
    pub index: Arc<dyn SearchIndex>,
    pub queue: Arc<dyn Queue>,
    pub registry: Arc<Registry>,
    pub dead_letters: Arc<DeadLetters>,
    pub plans: Arc<Plans>,
    pub metrics: Arc<Metrics>,
    /// The rate buckets, which forget a deleted tenant.
    pub rates: Arc<dyn crate::ingest::rate::RateLimiter>,
    /// Between two sweeps.
    pub interval: Duration,
}

impl Upkeep {
    /// Sweeps every `interval`, the first one an interval after the start
    /// (a process that starts does not need to delete anything at once),
    /// until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut sweep = 0u64;
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
            self.sweep(sweep.is_multiple_of(MEASURE_EVERY_SWEEPS)).await;
            sweep += 1;
        }
    }

    /// One pass over every tenant; failures are logged and retried at the
    /// next sweep.
    pub async fn sweep(&self, measure: bool) {
        let tenants = match self.accounts.list_tenants().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "upkeep: cannot list tenants");
                return;
            }
        };
        for t in tenants {
            let result = match t.state {
                TenantState::Deleting => deletion::step(self, &t).await.map(|done| {
                    if done {
                        self.metrics.tenant_deleted(&t.slug);
                        tracing::info!(tenant = t.slug, "tenant deleted");
                    }
                }),
                TenantState::Active | TenantState::Suspended => {
                    let swept = retention::sweep(self, &t).await;
                    match swept {
                        Ok(()) if measure => self.measure(&t).await,
                        other => other,
                    }
                }
            };
            if let Err(e) = result {
                tracing::warn!(tenant = t.slug, error = %e, "upkeep step failed; retried at the next sweep");
            }
        }
    }

    /// What the tenant's data takes in each store, kept as today's figure.
    async fn measure(&self, t: &Tenant) -> Result<(), crate::error::BackendError> {
        let stored = Stored {
            metadata: self.meta.stored_bytes(&t.slug).await?,
            raw: self.raw.stored_bytes(&t.slug).await?,
            index: self.index.stored_bytes(&t.slug).await?,
        };
        self.metrics
            .tenant_stored(&t.slug, stored.metadata, stored.raw, stored.index);
        self.meta
            .set_stored(&t.slug, model::day_of(model::now_ns()), stored)
            .await
    }
}
