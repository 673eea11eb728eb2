//! Metering: what each tenant uses per day (UTC) — logs and bytes
//! accepted, plugin CPU, dead letters — added up in the process and
//! flushed to the metadata store every second (`Meter::run`), where every
//! process of a deployment adds to the same rows. The daily limits read
//! today's figure from there (at most `FRESH_FOR` old) plus what this
//! process has not flushed yet, so the counters survive restarts and hold
//! across processes, give or take a second of another process's traffic.
//!
//! Each count also goes to the tenant's series in `/metrics`.
//!
//! **Invariant:** usage depends on `model`, `error`, `stores` and
//! `telemetry` alone;
//! a store that cannot be read or written never stops ingest (the figures
//! are kept and retried).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::model;
use crate::stores::MetadataStore;
pub use crate::stores::{Stored, Usage, UsageDay};
use crate::telemetry::Metrics;

/// Between two flushes to the metadata store.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long today's stored figure of a tenant is trusted.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// Tenants whose figures a process keeps at once (the cache of stored
/// figures is cleared past it; pending figures are flushed every second).
const MAX_CACHED: usize = 100_000;

pub struct Meter {
    store: Arc<dyn MetadataStore>,
    metrics: Arc<Metrics>,
    /// Not yet flushed, by (tenant, day).
    pending: Mutex<HashMap<(String, i64), Usage>>,
    /// Today's stored figure per tenant, with when it was read.
    stored: Mutex<HashMap<String, (i64, Usage, Instant)>>,
}

impl Meter {
    pub fn new(store: Arc<dyn MetadataStore>, metrics: Arc<Metrics>) -> Self {
        Meter {
            store,
            metrics,
            pending: Mutex::new(HashMap::new()),
            stored: Mutex::new(HashMap::new()),
        }
    }

    /// Adds to the tenant's usage of today.
    pub fn record(&self, tenant: &str, used: Usage) {
        if used.is_zero() {
            return;
        }
        self.metrics
            .tenant_used(tenant, used.logs, used.bytes, used.plugin_cpu_us, used.dead_letters);
        let day = model::day_of(model::now_ns());
        self.pending
            .lock()
            .entry((tenant.to_string(), day))
            .or_default()
            .add(&used);
    }

    /// What the tenant used today, every process's as last flushed plus
    /// this one's since.
    pub async fn today(&self, tenant: &str) -> Usage {
        let day = model::day_of(model::now_ns());
        let cached = self
            .stored
            .lock()
            .get(tenant)
            .filter(|(d, _, at)| *d == day && at.elapsed() < FRESH_FOR)
            .map(|(_, u, _)| *u);
        let mut total = match cached {
            Some(u) => u,
            None => self.read(tenant, day).await,
        };
        if let Some(p) = self.pending.lock().get(&(tenant.to_string(), day)) {
            total.add(p);
        }
        total
    }

    async fn read(&self, tenant: &str, day: i64) -> Usage {
        match self.store.usage(tenant, day).await {
            Ok(days) => {
                let u = days.iter().find(|d| d.day == day).map(|d| d.used).unwrap_or_default();
                let mut stored = self.stored.lock();
                if stored.len() > MAX_CACHED {
                    stored.clear();
                }
                stored.insert(tenant.to_string(), (day, u, Instant::now()));
                u
            }
            Err(e) => {
                tracing::warn!(tenant, error = %e, "usage unreadable; counting from what this process saw");
                self.stored
                    .lock()
                    .get(tenant)
                    .filter(|(d, _, _)| *d == day)
                    .map(|(_, u, _)| *u)
                    .unwrap_or_default()
            }
        }
    }

    /// Writes what is pending; on failure it stays pending.
    pub async fn flush(&self) {
        let batch: Vec<(String, i64, Usage)> = {
            let mut pending = self.pending.lock();
            pending.drain().map(|((t, d), u)| (t, d, u)).collect()
        };
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.store.add_usage(&batch).await {
            tracing::warn!(error = %e, tenants = batch.len(), "usage not flushed; kept for the next try");
            let mut pending = self.pending.lock();
            for (t, d, u) in batch {
                pending.entry((t, d)).or_default().add(&u);
            }
            return;
        }
        // What was flushed is in the store now: the cached figures are
        // stale by exactly that much.
        let mut stored = self.stored.lock();
        for (t, d, u) in &batch {
            if let Some((day, total, _)) = stored.get_mut(t)
                && day == d
            {
                total.add(u);
            }
        }
    }

    /// Flushes every `FLUSH_EVERY` until `shutdown`, then once more.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(FLUSH_EVERY) => self.flush().await,
                _ = shutdown.changed() => break,
            }
        }
        self.flush().await;
    }
}

/// Seconds until the next UTC midnight, when daily limits start over.
pub fn seconds_to_midnight() -> u32 {
    let now = model::now_ns();
    let next = (model::day_of(now) + 1) * model::DAY_NS;
    u32::try_from((next - now) / 1_000_000_000 + 1).unwrap_or(86_400)
}
