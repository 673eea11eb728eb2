//! The processor: takes queue entries in batches, runs each tenant's
//! pipeline (parse → enrich → route, all WebAssembly), writes the stores,
//! then acks. One readable function per step; see `process_tenant`.

mod dead_letter;
pub mod hot_reload;
pub mod ids;
pub mod plugin_store;
pub mod registry;
mod run;
mod sink;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use dead_letter::DeadLetters;
use loggerhub_codec::Record;
pub use registry::{PipelineSpec, Registry, RegistryError};
use run::TenantInstances;

use crate::config::ProcessorConfig;
use crate::model::LogRecord;
use crate::queue::{Delivery, Queue};
use crate::runtime::{Route, RuntimeError};
use crate::search::SearchIndex;
use crate::stores::raw::RawStore;
use crate::stores::{MetadataStore, StoreError};
use crate::telemetry::Metrics;

/// How long a worker backs off after a store failed, before the entries
/// are taken again.
const STORE_RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// A queue entry's pipeline is retried this many times before it is
/// dead-lettered.
const PLUGIN_ATTEMPTS: usize = 2;
/// Body bytes a worker gathers before it stops lingering for more: about
/// 14k records of 300 bytes, enough to amortise a commit per store.
const BATCH_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Entries taken per queue call while gathering.
const TAKE_CHUNK: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("metadata/raw store: {0}")]
    Store(#[from] StoreError),
    #[error("index: {0}")]
    Index(#[from] crate::search::IndexError),
    #[error("queue: {0}")]
    Queue(#[from] crate::queue::QueueError),
    #[error("plugins: {0}")]
    Registry(#[from] RegistryError),
    #[error("dead letter: {0}")]
    DeadLetter(#[from] std::io::Error),
}

pub struct Processor {
    pub queue: Arc<dyn Queue>,
    pub registry: Arc<Registry>,
    pub meta: Arc<dyn MetadataStore>,
    pub raw: RawStore,
    pub index: Arc<dyn SearchIndex>,
    pub metrics: Arc<Metrics>,
    pub dead_letters: Arc<DeadLetters>,
    pub config: ProcessorConfig,
}

struct Worker {
    instances: HashMap<String, TenantInstances>,
}

impl Processor {
    /// Runs `config.workers` workers until `shutdown` turns true. Zero
    /// workers makes an ingest-only process: entries wait in the queue.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let mut tasks = Vec::new();
        for n in 0..self.config.workers {
            let this = self.clone();
            let shutdown = shutdown.clone();
            tasks.push(tokio::spawn(async move { this.worker(n, shutdown).await }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    async fn worker(&self, n: usize, mut shutdown: watch::Receiver<bool>) {
        let mut w = Worker {
            instances: HashMap::new(),
        };
        tracing::debug!(worker = n, "processor worker started");
        while !*shutdown.borrow() {
            let batch = tokio::select! {
                b = self.gather() => b,
                _ = shutdown.changed() => break,
            };
            let deliveries = match batch {
                Ok(d) if d.is_empty() => continue,
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "queue take failed");
                    tokio::time::sleep(STORE_RETRY_BACKOFF).await;
                    continue;
                }
            };
            self.process(&mut w, deliveries).await;
        }
    }

    /// Takes entries, lingering briefly so that one pipeline run and one
    /// commit per store serve many requests.
    async fn gather(&self) -> Result<Vec<Delivery>, PipelineError> {
        let cfg = &self.config;
        // Entries are taken a few at a time so that a deep queue cannot make
        // one batch (and the guests' linear memories) arbitrarily large.
        let mut out = self.queue.take(TAKE_CHUNK, Duration::from_millis(500)).await?;
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

    /// Processes deliveries, each tenant's concurrently so that one tenant's
    /// slow or failing plugin does not hold up the others gathered with it;
    /// acks what is done, hands back what hit a store failure.
    async fn process(&self, w: &mut Worker, deliveries: Vec<Delivery>) {
        let mut by_tenant: Vec<(String, Vec<Delivery>)> = Vec::new();
        for d in deliveries {
            match by_tenant.iter_mut().find(|(t, _)| *t == d.entry.tenant) {
                Some((_, v)) => v.push(d),
                None => by_tenant.push((d.entry.tenant.clone(), vec![d])),
            }
        }
        let jobs = by_tenant.into_iter().map(|(tenant, group)| {
            let slot = w.instances.remove(&tenant);
            self.process_group(tenant, group, slot)
        });
        for (tenant, slot) in futures::future::join_all(jobs).await {
            if let Some(inst) = slot {
                w.instances.insert(tenant, inst);
            }
        }
    }

    async fn process_group(
        &self,
        tenant: String,
        group: Vec<Delivery>,
        mut slot: Option<TenantInstances>,
    ) -> (String, Option<TenantInstances>) {
        let tokens: Vec<u64> = group.iter().map(|d| d.token).collect();
        let entries: Vec<&Delivery> = group.iter().collect();
        let result = match self.run_tenant(&mut slot, &tenant, &entries).await {
            Ok(outcome) => {
                let failures = outcome.failures;
                let passed = outcome.passed;
                self.write_stores(&tenant, &entries, outcome.routed)
                    .await
                    .map(|()| (passed, failures))
            }
            Err(e) => Err(e),
        };
        match result {
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
                tracing::warn!(tenant, error = %e, "store write failed; batch will be retried");
                tokio::time::sleep(STORE_RETRY_BACKOFF).await;
                let _ = self.queue.nack(&tokens).await;
            }
        }
        (tenant, slot)
    }
}

/// A record that went through the plugins, on its way to the stores.
struct RoutedRecord {
    entry: usize,
    may_exist: bool,
    route: Route,
    record: LogRecord,
}

fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/")
}

fn to_log_record(r: Record, received_at: i64) -> LogRecord {
    LogRecord {
        id: r.id,
        tenant: r.tenant,
        service: r.service,
        level: r.level,
        timestamp: r.timestamp,
        received_at,
        message: r.message,
        full_log: r.full_log,
        language: r.language,
        attributes: r.attributes,
        raw_path: None,
    }
}
