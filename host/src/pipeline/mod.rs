//! The processor: takes queue entries in batches, runs each tenant's
//! pipeline (parse → enrich → route, all WebAssembly), writes the stores,
//! then acks. One readable function per step; see `process_tenant`.

mod dead_letter;
pub mod hot_reload;
pub mod ids;
pub mod registry;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use tokio::sync::watch;

pub use dead_letter::DeadLetters;
use loggerhub_codec::{self as codec, Record};
pub use registry::{PipelineSpec, Registry, RegistryError};

use crate::config::ProcessorConfig;
use crate::model::LogRecord;
use crate::queue::{Delivery, Queue};
use crate::runtime::{Instance, Route, RuntimeError};
use crate::search::{IndexRow, SearchIndex};
use crate::stores::raw::RawStore;
use crate::stores::{MetaRow, MetadataStore, StoreError};
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
    #[error("plugin output: {0}")]
    Decode(#[from] codec::DecodeError),
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

/// One tenant's live instances, owned by one worker, for one generation
/// of the tenant's pipeline.
struct TenantInstances {
    generation: u64,
    json: Instance,
    text: Instance,
    enrichers: Vec<Instance>,
    router: Instance,
}

impl TenantInstances {
    fn poisoned(&self) -> bool {
        self.json.is_poisoned()
            || self.text.is_poisoned()
            || self.router.is_poisoned()
            || self.enrichers.iter().any(Instance::is_poisoned)
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
        match self.process_tenant(&mut slot, &tenant, &entries).await {
            Ok(clean) => {
                if clean {
                    self.registry.record_success(&tenant);
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

    async fn instances<'w>(
        &self,
        slot: &'w mut Option<TenantInstances>,
        tenant: &str,
    ) -> Result<&'w mut TenantInstances, PipelineError> {
        let resolved = self.registry.resolve(tenant).await?;
        // A new generation (upload, rollback, pipeline change, file change)
        // takes effect here, between batches.
        let stale = slot
            .as_ref()
            .is_none_or(|t| t.generation != resolved.generation || t.poisoned());
        if stale {
            let rt = self.registry.runtime();
            let r = &resolved;
            let mut enrichers = Vec::with_capacity(r.enrichers.len());
            for e in &r.enrichers {
                enrichers.push(rt.instantiate(e, tenant, r.config_of(e.name()), r.limits).await?);
            }
            let t = TenantInstances {
                generation: r.generation,
                json: rt
                    .instantiate(&r.json, tenant, r.config_of(r.json.name()), r.limits)
                    .await?,
                text: rt
                    .instantiate(&r.text, tenant, r.config_of(r.text.name()), r.limits)
                    .await?,
                enrichers,
                router: rt
                    .instantiate(&r.router, tenant, r.config_of(r.router.name()), r.limits)
                    .await?,
            };
            *slot = Some(t);
        }
        slot.as_mut().ok_or_else(|| {
            PipelineError::Runtime(RuntimeError::Instantiate {
                plugin: "pipeline".into(),
                message: "instances vanished".into(),
            })
        })
    }

    /// One tenant's entries: run the pipeline over all of them at once; if a
    /// plugin fails, run each entry alone so only the failing ones are
    /// dead-lettered. Store failures bubble up (the entries are retried).
    async fn process_tenant(
        &self,
        slot: &mut Option<TenantInstances>,
        tenant: &str,
        entries: &[&Delivery],
    ) -> Result<bool, PipelineError> {
        // Whether every entry went through (none was dead-lettered).
        let mut clean = true;
        let routed = match self.run_pipeline(slot, tenant, entries).await {
            Ok(r) => r,
            Err(e @ (PipelineError::Runtime(_) | PipelineError::Decode(_))) if entries.len() > 1 => {
                tracing::warn!(tenant, error = %e, entries = entries.len(), "pipeline failed; isolating entries");
                let mut all = Vec::new();
                for e in entries {
                    match self.run_isolated(slot, tenant, e).await? {
                        Some(r) => all.extend(r),
                        None => clean = false,
                    }
                }
                all
            }
            Err(PipelineError::Runtime(_) | PipelineError::Decode(_)) => {
                match self.run_isolated(slot, tenant, entries[0]).await? {
                    Some(r) => r,
                    None => {
                        clean = false;
                        Vec::new()
                    }
                }
            }
            Err(other) => return Err(other),
        };
        self.write_stores(tenant, entries, routed).await?;
        Ok(clean)
    }

    /// Runs one entry alone, retrying; dead-letters it when it keeps failing.
    async fn run_isolated(
        &self,
        slot: &mut Option<TenantInstances>,
        tenant: &str,
        delivery: &Delivery,
    ) -> Result<Option<Vec<RoutedRecord>>, PipelineError> {
        let mut last = None;
        for _ in 0..PLUGIN_ATTEMPTS {
            match self.run_pipeline(slot, tenant, &[delivery]).await {
                Ok(r) => return Ok(Some(r)),
                Err(PipelineError::Runtime(e)) => last = Some(e),
                Err(PipelineError::Decode(e)) => {
                    last = Some(RuntimeError::BadOutput {
                        plugin: "pipeline".into(),
                        message: e.to_string(),
                    })
                }
                Err(other) => return Err(other),
            }
        }
        if let Some(e) = last {
            let entry = &delivery.entry;
            self.metrics.error(e.kind());
            self.metrics.dead_lettered();
            tracing::error!(tenant, batch = %entry.batch_id, error = %e, "dead-lettering queue entry");
            self.dead_letters
                .put(entry, e.plugin(), e.kind(), &e.to_string())
                .await?;
            if self.registry.record_failure(tenant, e.plugin(), &e.to_string()).await {
                self.metrics.plugin_disabled();
            }
        }
        Ok(None)
    }

    /// parse → enrich → route over `entries`. Nothing is written.
    async fn run_pipeline(
        &self,
        slot: &mut Option<TenantInstances>,
        tenant: &str,
        entries: &[&Delivery],
    ) -> Result<Vec<RoutedRecord>, PipelineError> {
        let inst = self.instances(slot, tenant).await?;
        let mut records: Vec<Record> = Vec::new();
        // Which entry each record came from: its raw object.
        let mut origin: HashMap<String, usize> = HashMap::new();
        // Ids the host just made for a first delivery cannot be in any store
        // yet: the index skips its dedupe lookup for them.
        let mut new_ids: HashSet<String> = HashSet::new();
        for (i, delivery) in entries.iter().enumerate() {
            let entry = &delivery.entry;
            let fresh = !delivery.redelivered && !entry.idempotent;
            let parser = if is_text(&entry.content_type) {
                &mut inst.text
            } else {
                &mut inst.json
            };
            let started = Instant::now();
            let out = parser
                .parse(&entry.content_type, entry.service.as_deref(), &entry.body)
                .await;
            self.metrics.stage("parse", parser.plugin(), started.elapsed());
            let parsed = codec::decode(&out?)?;
            for (j, mut r) in parsed.into_iter().enumerate() {
                r.tenant = tenant.to_string();
                if r.id.is_empty() {
                    r.id = ids::record_id(entry.batch_id, j).to_string();
                    if fresh {
                        new_ids.insert(r.id.clone());
                    }
                }
                if r.timestamp == 0 {
                    r.timestamp = entry.received_at;
                }
                origin.insert(r.id.clone(), i);
                records.push(r);
            }
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }

        let mut batch = codec::encode(&records);
        for enricher in &mut inst.enrichers {
            let started = Instant::now();
            let enriched = enricher.enrich(batch).await;
            self.metrics.stage("enrich", enricher.plugin(), started.elapsed());
            batch = enriched?;
        }
        let mut records = codec::decode(&batch)?;

        let started = Instant::now();
        let routes = inst.router.route(codec::encode(&records), records.len()).await;
        self.metrics.stage("route", inst.router.plugin(), started.elapsed());
        let routes = routes?;

        Ok(records
            .drain(..)
            .zip(routes)
            .filter(|(_, route)| route.metadata || route.raw || route.index)
            .map(|(mut r, route)| {
                // A plugin cannot move a record to another tenant, nor give it
                // an id that would collide across batches.
                r.tenant = tenant.to_string();
                let entry = origin.get(&r.id).copied().unwrap_or(0);
                if r.id.is_empty() || r.id.len() > 64 {
                    r.id = ulid::Ulid::new().to_string();
                }
                let received_at = entries[entry].entry.received_at;
                RoutedRecord {
                    entry,
                    may_exist: !new_ids.contains(&r.id),
                    route,
                    record: to_log_record(r, received_at),
                }
            })
            .collect())
    }

    /// raw (one object per entry), then index and metadata together: the
    /// raw path must be known before either records it. The entries are
    /// acked only after all three committed.
    async fn write_stores(
        &self,
        tenant: &str,
        entries: &[&Delivery],
        mut routed: Vec<RoutedRecord>,
    ) -> Result<(), PipelineError> {
        if routed.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut raw_writes = Vec::new();
        for (i, delivery) in entries.iter().enumerate() {
            let entry = &delivery.entry;
            let recs: Vec<&LogRecord> = routed
                .iter()
                .filter(|r| r.entry == i && r.route.raw)
                .map(|r| &r.record)
                .collect();
            if !recs.is_empty() {
                raw_writes.push(async move {
                    let key = self.raw.put_batch(tenant, entry.batch_id, &recs).await?;
                    Ok::<_, StoreError>((i, key))
                });
            }
        }
        let keys: HashMap<usize, String> = try_join_all(raw_writes).await?.into_iter().collect();
        let mut line: HashMap<usize, usize> = HashMap::new();
        for r in routed.iter_mut().filter(|r| r.route.raw) {
            let n = line.entry(r.entry).or_insert(0);
            *n += 1;
            if let Some(key) = keys.get(&r.entry) {
                r.record.raw_path = Some(format!("{key}#{n}"));
            }
        }
        self.metrics.store_write("raw", started.elapsed());

        // Index and metadata are independent once raw paths are known: write
        // them side by side (each store uses its own thread).
        let to_index: Vec<IndexRow<'_>> = routed
            .iter()
            .filter(|r| r.route.index)
            .map(|r| IndexRow {
                record: &r.record,
                may_exist: r.may_exist,
            })
            .collect();
        let index_write = async {
            let started = Instant::now();
            if !to_index.is_empty() {
                self.index.index(tenant, &to_index).await?;
            }
            self.metrics.store_write("index", started.elapsed());
            Ok::<_, PipelineError>(())
        };
        let rows: Vec<MetaRow<'_>> = routed
            .iter()
            .filter(|r| r.route.metadata)
            .map(|r| MetaRow {
                record: &r.record,
                indexed: r.route.index,
            })
            .collect();
        let meta_write = async {
            let started = Instant::now();
            if !rows.is_empty() {
                self.meta.insert_logs(&rows).await?;
            }
            self.metrics.store_write("metadata", started.elapsed());
            Ok::<_, PipelineError>(())
        };
        tokio::try_join!(index_write, meta_write)?;
        self.metrics.logs_processed(routed.len());
        Ok(())
    }
}

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
