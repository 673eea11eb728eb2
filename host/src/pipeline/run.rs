//! One tenant's entries through its pipeline: each entry is parsed on its
//! own, then all their records are enriched and routed in one batch. When a
//! plugin fails, the records are split in halves until the failing ones are
//! found: only those are dead-lettered (a parser failure takes its whole
//! entry, since the parser is what makes records of it) and the rest flow on.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use loggerhub_codec::{self as codec, Record};

use super::{PLUGIN_ATTEMPTS, PipelineError, Processor, RoutedRecord, ids, is_text, to_log_record};
use crate::queue::{Delivery, QueueEntry};
use crate::runtime::{Instance, Route, RuntimeError};

/// What one batch may spend narrowing failures down. Finding k bad records
/// among n takes about k·(log2(n/k) + 2) failed calls (24 for 3 in 200), but
/// a plugin that fails on everything would take two per record, and one
/// that loops burns its whole CPU budget on each. Past either bound, a part
/// that still fails is dead-lettered as it stands.
const SPLIT_MAX_FAILED_CALLS: usize = 64;
const SPLIT_MAX_FAILING_TIME: Duration = Duration::from_secs(30);

/// One tenant's live instances, owned by one worker, for one generation
/// of the tenant's pipeline.
pub(super) struct TenantInstances {
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

/// What one tenant's entries came to.
pub(super) struct Outcome {
    /// The records to store, each with its destinations.
    pub routed: Vec<RoutedRecord>,
    /// Records that went through every plugin (stored or dropped by the
    /// router on purpose).
    pub passed: usize,
    /// Each dead letter written: the plugin blamed and why.
    pub failures: Vec<(String, String)>,
}

/// The records parsed out of a tenant's entries.
#[derive(Default)]
struct Parsed {
    records: Vec<Record>,
    /// Which entry (index into the entries) each record id came from.
    origin: HashMap<String, usize>,
    /// Ids the host just made for a first delivery: they cannot be in any
    /// store yet, so the index skips its dedupe lookup for them.
    new_ids: HashSet<String>,
}

impl Processor {
    pub(super) async fn instances<'w>(
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

    /// Runs the pipeline over one tenant's entries. Plugin failures end in
    /// dead letters; store and queue failures bubble up (the entries are
    /// retried whole).
    pub(super) async fn run_tenant(
        &self,
        slot: &mut Option<TenantInstances>,
        tenant: &str,
        entries: &[&Delivery],
    ) -> Result<Outcome, PipelineError> {
        let mut failures = Vec::new();
        let Parsed {
            records,
            origin,
            new_ids,
        } = self.parse_entries(slot, tenant, entries, &mut failures).await?;
        let passed = self
            .enrich_and_route(slot, tenant, entries, &origin, records, &mut failures)
            .await?;
        let count = passed.len();
        let routed = passed
            .into_iter()
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
            .collect();
        Ok(Outcome {
            routed,
            passed: count,
            failures,
        })
    }

    /// Parses each entry with the parser its content type calls for,
    /// retrying; an entry whose parser keeps failing is dead-lettered whole.
    async fn parse_entries(
        &self,
        slot: &mut Option<TenantInstances>,
        tenant: &str,
        entries: &[&Delivery],
        failures: &mut Vec<(String, String)>,
    ) -> Result<Parsed, PipelineError> {
        let mut out = Parsed::default();
        for (i, delivery) in entries.iter().enumerate() {
            let entry = &delivery.entry;
            let mut parsed = None;
            let mut last = None;
            for _ in 0..PLUGIN_ATTEMPTS {
                match self.parse(slot, tenant, entry).await {
                    Ok(records) => {
                        parsed = Some(records);
                        break;
                    }
                    Err(PipelineError::Runtime(e)) => last = Some(e),
                    Err(other) => return Err(other),
                }
            }
            let Some(parsed) = parsed else {
                if let Some(e) = last {
                    tracing::error!(tenant, batch = %entry.batch_id, error = %e, "dead-lettering queue entry");
                    self.dead_letters
                        .put(entry, e.plugin(), e.kind(), &e.to_string())
                        .await?;
                    self.count_dead_letter(&e, failures);
                }
                continue;
            };
            let fresh = !delivery.redelivered && !entry.idempotent;
            for (j, mut r) in parsed.into_iter().enumerate() {
                r.tenant = tenant.to_string();
                if r.id.is_empty() {
                    r.id = ids::record_id(entry.batch_id, j).to_string();
                    if fresh {
                        out.new_ids.insert(r.id.clone());
                    }
                }
                if r.timestamp == 0 {
                    r.timestamp = entry.received_at;
                }
                out.origin.insert(r.id.clone(), i);
                out.records.push(r);
            }
        }
        Ok(out)
    }

    async fn parse(
        &self,
        slot: &mut Option<TenantInstances>,
        tenant: &str,
        entry: &QueueEntry,
    ) -> Result<Vec<Record>, PipelineError> {
        let inst = self.instances(slot, tenant).await?;
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
        Ok(codec::decode(&out?).map_err(|e| bad_output(parser, e))?)
    }

    /// Enriches and routes `records`, halving the batch around failures
    /// until the failing records are found; those are dead-lettered. Returns
    /// every record that went through, with its route.
    async fn enrich_and_route(
        &self,
        slot: &mut Option<TenantInstances>,
        tenant: &str,
        entries: &[&Delivery],
        origin: &HashMap<String, usize>,
        records: Vec<Record>,
        failures: &mut Vec<(String, String)>,
    ) -> Result<Vec<(Record, Route)>, PipelineError> {
        let mut out = Vec::with_capacity(records.len());
        if records.is_empty() {
            return Ok(out);
        }
        let mut failed_calls = 0;
        let mut failing_time = Duration::ZERO;
        let mut parts = vec![records];
        while let Some(mut part) = parts.pop() {
            let mut attempts = 0;
            loop {
                let started = Instant::now();
                let e = match self.enrich_route_once(slot, tenant, &part).await {
                    Ok(done) => {
                        out.extend(done);
                        break;
                    }
                    Err(PipelineError::Runtime(e)) => e,
                    Err(other) => return Err(other),
                };
                failed_calls += 1;
                failing_time += started.elapsed();
                attempts += 1;
                let budget_left = failed_calls <= SPLIT_MAX_FAILED_CALLS && failing_time <= SPLIT_MAX_FAILING_TIME;
                if part.len() > 1 && budget_left {
                    tracing::warn!(tenant, error = %e, records = part.len(), "plugin failed; splitting the batch");
                    let back = part.split_off(part.len() / 2);
                    parts.push(back);
                    parts.push(part);
                    break;
                }
                if part.len() == 1 && budget_left && attempts < PLUGIN_ATTEMPTS {
                    continue;
                }
                tracing::error!(tenant, records = part.len(), error = %e, "dead-lettering records");
                let first = part.first().and_then(|r| origin.get(&r.id)).copied().unwrap_or(0);
                let mut batches: Vec<String> = part
                    .iter()
                    .filter_map(|r| origin.get(&r.id))
                    .map(|&i| entries[i].entry.batch_id.to_string())
                    .collect();
                batches.dedup();
                self.dead_letters
                    .put_records(
                        &entries[first].entry,
                        batches,
                        &part,
                        e.plugin(),
                        e.kind(),
                        &e.to_string(),
                    )
                    .await?;
                self.count_dead_letter(&e, failures);
                break;
            }
        }
        Ok(out)
    }

    /// One try at enrich → route over `records`.
    async fn enrich_route_once(
        &self,
        slot: &mut Option<TenantInstances>,
        tenant: &str,
        records: &[Record],
    ) -> Result<Vec<(Record, Route)>, PipelineError> {
        let inst = self.instances(slot, tenant).await?;
        let mut batch = codec::encode(records);
        for enricher in &mut inst.enrichers {
            let started = Instant::now();
            let enriched = enricher.enrich(&batch).await;
            self.metrics.stage("enrich", enricher.plugin(), started.elapsed());
            batch = enriched?;
        }
        let records = match inst.enrichers.last() {
            Some(last) => codec::decode(&batch).map_err(|e| bad_output(last, e))?,
            None => records.to_vec(),
        };
        let started = Instant::now();
        let routes = inst.router.route(&batch, records.len()).await;
        self.metrics.stage("route", inst.router.plugin(), started.elapsed());
        Ok(records.into_iter().zip(routes?).collect())
    }

    fn count_dead_letter(&self, e: &RuntimeError, failures: &mut Vec<(String, String)>) {
        self.metrics.error(e.kind());
        self.metrics.dead_lettered();
        failures.push((e.plugin().to_string(), e.to_string()));
    }
}

fn bad_output(plugin: &Instance, e: codec::DecodeError) -> RuntimeError {
    RuntimeError::BadOutput {
        plugin: plugin.plugin().to_string(),
        message: e.to_string(),
    }
}
