//! The processor, the data path from the queue to the stores. Each worker
//! loops: gather entries (`gather`) → group them by tenant → run each
//! tenant's pipeline (`TenantRun`: parse → enrich → route, WebAssembly) →
//! write the stores (`sink`) → ack. Tenants gathered together run two at
//! a time, so one tenant's slow plugin does not hold up all the others of
//! its batch and the plugin memory in flight stays bounded. Plugin failures end in dead letters (`dead_letter`);
//! backend failures hand the tenant's entries back to the queue, to be
//! retried after a backoff chosen from the failure's kind (`backoff`).
//!
//! **Invariant:** the pipeline never chooses a record's tenant: the host
//! overwrites it after every stage. It knows plugins only through
//! `plugins::Registry` and `runtime`, the stores only through their traits.

mod dead_letter;
mod halving;
mod instances;
mod sink;
mod tenant_run;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use dead_letter::{DeadLetter, DeadLetters, LetterPage};
pub use instances::InstanceBudget;
use instances::TenantInstances;
use tenant_run::TenantRun;

use crate::config::ProcessorConfig;
use crate::error::{BackendError, ErrorKind};
use crate::model::LogRecord;
use crate::plugins::{Registry, RegistryError};
use crate::queue::{Delivery, Queue};
use crate::runtime::{Route, RuntimeError};
use crate::search::SearchIndex;
use crate::stores::MetadataStore;
use crate::stores::raw::RawStore;
use crate::telemetry::Metrics;

/// Before a tenant's entries are taken again after a backend was
/// unavailable (or the queue could not be read).
const RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// After a backend said it is over capacity: give it room.
const FULL_BACKOFF: Duration = Duration::from_secs(2);
/// After a backend refused the data or could not read what it holds:
/// trying again will rarely help, so the entries wait longer in the queue
/// (where they stay, counted in `/metrics`) instead of spinning.
const REFUSED_BACKOFF: Duration = Duration::from_secs(5);
/// Body bytes a worker gathers before it stops lingering for more: about
/// 14k records of 300 bytes, enough to amortise a commit per store.
const BATCH_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Entries taken per queue call while gathering: a deep queue cannot make
/// one batch (and the guests' linear memories) arbitrarily large.
const TAKE_CHUNK: usize = 8;
/// Tenants a worker runs at once: one tenant's slow plugin does not hold up
/// the others of its batch, and the plugin memory in flight stays bounded
/// (workers × this × one pipeline's instances; docs/OPERATIONS.md).
const TENANTS_IN_FLIGHT: usize = 2;
/// How long a worker waits on an empty queue before it looks at shutdown.
const TAKE_WAIT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("plugins: {0}")]
    Registry(#[from] RegistryError),
}

/// How long a worker waits before a failed tenant's entries are taken
/// again: the one place on the data path that decides from a failure's
/// kind. (Plugin failures never get here: they end in dead letters.)
fn backoff(e: &PipelineError) -> Duration {
    match e {
        PipelineError::Backend(b) => match b.kind {
            ErrorKind::Unavailable | ErrorKind::NotFound => RETRY_BACKOFF,
            ErrorKind::Full => FULL_BACKOFF,
            ErrorKind::Rejected | ErrorKind::Corrupt => REFUSED_BACKOFF,
        },
        PipelineError::Runtime(_) | PipelineError::Registry(_) => RETRY_BACKOFF,
    }
}

pub struct Processor {
    pub queue: Arc<dyn Queue>,
    pub registry: Arc<Registry>,
    pub meta: Arc<dyn MetadataStore>,
    pub raw: RawStore,
    pub index: Arc<dyn SearchIndex>,
    pub metrics: Arc<Metrics>,
    pub dead_letters: Arc<DeadLetters>,
    /// What the workers' plugin instances may hold, together.
    pub budget: Arc<InstanceBudget>,
    pub config: ProcessorConfig,
}

/// A record that went through the plugins, on its way to the stores.
pub(crate) struct RoutedRecord {
    /// Index of the entry it came from, in the tenant's group.
    entry: usize,
    may_exist: bool,
    route: Route,
    record: LogRecord,
}

impl Processor {
    /// Runs `config.workers` workers until `shutdown` turns true. Zero
    /// workers makes an ingest-only process: entries wait in the queue.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let workers: Vec<_> = (0..self.config.workers)
            .map(|n| tokio::spawn(self.clone().worker(n, shutdown.clone())))
            .collect();
        for w in workers {
            let _ = w.await;
        }
    }

    async fn worker(self: Arc<Self>, n: usize, mut shutdown: watch::Receiver<bool>) {
        // Each worker keeps its own instances of each tenant's plugins.
        let mut instances: HashMap<String, TenantInstances> = HashMap::new();
        tracing::debug!(worker = n, "processor worker started");
        while !*shutdown.borrow() {
            // Over the budget (someone else's pass marked ours) or idle.
            instances.retain(|_, t| !t.should_drop());
            let gathered = tokio::select! {
                g = self.gather() => g,
                _ = shutdown.changed() => break,
            };
            match gathered {
                Ok(deliveries) if deliveries.is_empty() => {}
                Ok(deliveries) => self.process(&mut instances, deliveries).await,
                Err(e) => {
                    tracing::error!(error = %e, "queue take failed");
                    tokio::time::sleep(backoff(&e.into())).await;
                }
            }
        }
    }

    /// Takes entries, lingering briefly so that one pipeline run and one
    /// commit per store serve many requests.
    async fn gather(&self) -> Result<Vec<Delivery>, BackendError> {
        let cfg = &self.config;
        let mut out = self.queue.take(TAKE_CHUNK, TAKE_WAIT).await?;
        if out.is_empty() {
            return Ok(out);
        }
        let deadline = Instant::now() + cfg.linger;
        let mut bytes: usize = out.iter().map(|d| d.entry.body.len()).sum();
        while out.len() < cfg.max_entries && bytes < BATCH_BODY_BYTES {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let want = TAKE_CHUNK.min(cfg.max_entries - out.len());
            let more = self.queue.take(want, left).await?;
            if more.is_empty() {
                break;
            }
            bytes += more.iter().map(|d| d.entry.body.len()).sum::<usize>();
            out.extend(more);
        }
        Ok(out)
    }

    /// Runs the tenants' groups, [`TENANTS_IN_FLIGHT`] at a time; each
    /// tenant's instances go with its group and come back when it is done.
    async fn process(&self, instances: &mut HashMap<String, TenantInstances>, deliveries: Vec<Delivery>) {
        use futures::StreamExt;
        let work: Vec<_> = group_by_tenant(deliveries)
            .into_iter()
            .map(|(tenant, group)| {
                let slot = instances.remove(&tenant);
                (tenant, group, slot)
            })
            .collect();
        let mut runs = futures::stream::iter(work)
            .map(|(tenant, group, slot)| self.process_tenant(tenant, group, slot))
            .buffer_unordered(TENANTS_IN_FLIGHT);
        // As each tenant is done: what its instances hold counts against
        // the budget at once, and whatever the budget marks goes at once.
        while let Some((tenant, slot)) = runs.next().await {
            if let Some(slot) = slot {
                slot.record_use();
                if !slot.should_drop() {
                    instances.insert(tenant, slot);
                }
            }
            instances.retain(|_, t| !t.should_drop());
        }
    }

    /// One tenant's group: run its pipeline, write the stores, then ack;
    /// on a backend failure, hand the entries back after a backoff.
    async fn process_tenant(
        &self,
        tenant: String,
        group: Vec<Delivery>,
        mut slot: Option<TenantInstances>,
    ) -> (String, Option<TenantInstances>) {
        let tokens: Vec<u64> = group.iter().map(|d| d.token).collect();
        let done = async {
            let outcome = TenantRun::new(self, &tenant, &group, &mut slot).run().await?;
            self.write_stores(&tenant, &group, outcome.routed).await?;
            Ok::<_, PipelineError>((outcome.passed, outcome.failures))
        }
        .await;
        match done {
            Ok((passed, failures)) => {
                // A plugin is disabled after failing on everything it was
                // given several times in a row; one bad record among good
                // ones does not count against it.
                if passed > 0 {
                    self.registry.record_success(&tenant);
                } else {
                    for (plugin, reason) in &failures {
                        if self.registry.record_failure(&tenant, plugin, reason).await {
                            self.metrics.plugin_disabled();
                        }
                    }
                }
                if let Err(e) = self.queue.ack(&tokens).await {
                    tracing::error!(error = %e, "queue ack failed");
                }
            }
            Err(e) => {
                self.metrics.error("store");
                tracing::warn!(tenant, error = %e, "batch failed; its entries will be retried");
                tokio::time::sleep(backoff(&e)).await;
                let _ = self.queue.nack(&tokens).await;
            }
        }
        (tenant, slot)
    }
}

/// Deliveries grouped by tenant, tenants and entries in arrival order.
fn group_by_tenant(deliveries: Vec<Delivery>) -> Vec<(String, Vec<Delivery>)> {
    let mut groups: Vec<(String, Vec<Delivery>)> = Vec::new();
    for d in deliveries {
        match groups.iter_mut().find(|(t, _)| *t == d.entry.tenant) {
            Some((_, group)) => group.push(d),
            None => groups.push((d.entry.tenant.clone(), vec![d])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Backend;
    use crate::queue::QueueEntry;

    fn delivery(token: u64, tenant: &str) -> Delivery {
        Delivery {
            token,
            entry: QueueEntry {
                tenant: tenant.into(),
                batch_id: ulid::Ulid::new(),
                received_at: 0,
                content_type: "application/json".into(),
                service: None,
                idempotent: false,
                body: bytes::Bytes::new(),
            },
            redelivered: false,
        }
    }

    #[test]
    fn groups_keep_arrival_order() {
        let groups = group_by_tenant(vec![
            delivery(1, "a"),
            delivery(2, "b"),
            delivery(3, "a"),
            delivery(4, "c"),
        ]);
        let shape: Vec<(String, Vec<u64>)> = groups
            .into_iter()
            .map(|(t, g)| (t, g.iter().map(|d| d.token).collect()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("a".to_string(), vec![1, 3]),
                ("b".to_string(), vec![2]),
                ("c".to_string(), vec![4])
            ]
        );
    }

    #[test]
    fn backoff_follows_the_kind() {
        let e = |kind| PipelineError::Backend(BackendError::new(Backend::Metadata, kind, "x"));
        assert_eq!(backoff(&e(ErrorKind::Unavailable)), RETRY_BACKOFF);
        assert_eq!(backoff(&e(ErrorKind::Full)), FULL_BACKOFF);
        assert_eq!(backoff(&e(ErrorKind::Rejected)), REFUSED_BACKOFF);
        assert_eq!(backoff(&e(ErrorKind::Corrupt)), REFUSED_BACKOFF);
    }
}
