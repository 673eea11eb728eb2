//! One tenant's pass over the entries a worker gathered for it. Each entry
//! is parsed on its own with the parser its content type calls for (a
//! parser that keeps failing dead-letters its whole entry: the parser is
//! what makes records of it); then all records are enriched and routed in
//! one batch, halving around plugin failures (`halving`) so that only the
//! failing records are dead-lettered and the rest flow on. Backend
//! failures end the pass: the caller hands the entries back.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use loggerhub_codec::{self as codec, Record, limits};

use super::halving::{self, Halving, Settled};
use super::instances::TenantInstances;
use super::{PipelineError, Processor, RoutedRecord, dead_letter};
use crate::cpu;
use crate::model::window::{ORIGINAL_TIMESTAMP, Placed, TimeWindow};
use crate::model::{LogRecord, ids};
use crate::queue::{Delivery, QueueEntry};
use crate::runtime::{Instance, Route, RuntimeError, Stage};
use crate::usage::Usage;

/// A parser that fails is tried this many times before its entry is
/// dead-lettered: a trap may come from the instance's state, and a fresh
/// instance is made after one.
const PARSE_ATTEMPTS: usize = 2;

/// Longest record id kept as the plugins left it; a longer or empty one, or
/// one with a control character, is replaced (ids are keys in every store).
const MAX_ID_LEN: usize = 64;

/// What one tenant's entries came to.
pub(super) struct Outcome {
    /// Entries run: the first `ran` of the turn's; the others were not
    /// started before the turn's deadline.
    pub ran: usize,
    /// The records to store, each with its destinations.
    pub routed: Vec<RoutedRecord>,
    /// Records that went through every plugin (stored or dropped by the
    /// router on purpose).
    pub passed: usize,
    /// Each dead letter written: the plugin blamed and why.
    pub failures: Vec<(String, String)>,
}

pub(super) struct TenantRun<'a> {
    processor: &'a Processor,
    tenant: &'a str,
    entries: &'a [Delivery],
    instances: &'a mut Option<TenantInstances>,
    /// No entry is started past this (the first always is).
    deadline: Instant,
    /// How long the tenant's plan keeps logs: records stamped older are
    /// not stored, those too far ahead are stored at their arrival
    /// (`model::window`). `None` when the tenant could not be looked up.
    retention: Option<Duration>,
    ran: usize,
    /// Which entry (index into `entries`) each record id came from.
    origin: HashMap<String, usize>,
    /// Ids the host just made for a first delivery: they cannot be in any
    /// store yet, so the index skips its dedupe lookup for them.
    new_ids: HashSet<String>,
    failures: Vec<(String, String)>,
}

/// Bytes of records one turn's parsers may make before it starts no more
/// entries: four times the bodies it takes. A parser may return more than
/// it was given (16 records and 64 KiB over its input a call) and a turn
/// may run 4,096 small entries: unbounded, 1-byte requests and a padding
/// parser made 256 MiB in one turn.
const TURN_RECORD_BYTES: usize = 4 * super::TURN_BODY_BYTES;

/// About what a parsed record holds, in bytes.
fn record_bytes(r: &Record) -> usize {
    r.id.len()
        + r.service.len()
        + r.message.len()
        + r.full_log.len()
        + r.language.as_ref().map_or(0, String::len)
        + r.attributes.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
}

impl<'a> TenantRun<'a> {
    pub fn new(
        processor: &'a Processor,
        tenant: &'a str,
        entries: &'a [Delivery],
        instances: &'a mut Option<TenantInstances>,
        deadline: Instant,
        retention: Option<Duration>,
    ) -> Self {
        TenantRun {
            processor,
            tenant,
            entries,
            instances,
            deadline,
            retention,
            ran: 0,
            origin: HashMap::new(),
            new_ids: HashSet::new(),
            failures: Vec::new(),
        }
    }

    /// parse → enrich → route; plugin failures end in dead letters, backend
    /// failures in an error.
    pub async fn run(mut self) -> Result<Outcome, PipelineError> {
        let records = self.parse_entries().await?;
        let passed = self.enrich_and_route(records).await?;
        Ok(self.outcome(passed))
    }

    async fn instances(&mut self) -> Result<&mut TenantInstances, PipelineError> {
        Ok(TenantInstances::current(
            self.instances,
            &self.processor.registry,
            &self.processor.budget,
            self.tenant,
        )
        .await?)
    }

    async fn parse_entries(&mut self) -> Result<Vec<Record>, PipelineError> {
        let mut records = Vec::new();
        let mut made = 0;
        for (i, delivery) in self.entries.iter().enumerate() {
            if i > 0 && (Instant::now() >= self.deadline || made >= TURN_RECORD_BYTES) {
                break;
            }
            self.ran = i + 1;
            let entry = &delivery.entry;
            let mut last = None;
            let mut parsed = None;
            for _ in 0..PARSE_ATTEMPTS {
                match self.parse(entry).await {
                    Ok(r) => {
                        parsed = Some(r);
                        break;
                    }
                    Err(PipelineError::Runtime(e)) => last = Some(e),
                    Err(other) => return Err(other),
                }
            }
            let Some(parsed) = parsed else {
                if let Some(e) = last {
                    tracing::error!(tenant = self.tenant, batch = %entry.batch_id, error = %e, "dead-lettering queue entry");
                    self.processor
                        .dead_letters
                        .put(dead_letter::of_entry(entry, e.plugin(), e.kind(), &e.to_string()))
                        .await?;
                    self.count_dead_letter(&e);
                }
                continue;
            };
            let (parser, parsed) = parsed;
            made += parsed.iter().map(record_bytes).sum::<usize>();
            let fresh = !delivery.redelivered && !entry.idempotent;
            let window = self.retention.map(|r| TimeWindow::at(entry.received_at, r));
            let mut unstorable = Vec::new();
            let mut out_of_window = Vec::new();
            for (j, mut r) in parsed.into_iter().enumerate() {
                r.tenant = self.tenant.to_string();
                if r.id.is_empty() {
                    r.id = ids::record_id(entry.batch_id, j).to_string();
                    if fresh {
                        self.new_ids.insert(r.id.clone());
                    }
                }
                if r.timestamp == 0 {
                    r.timestamp = entry.received_at;
                }
                self.origin.insert(r.id.clone(), i);
                r.attributes.iter_mut().for_each(|(_, v)| crate::model::settle_attr(v));
                match limits::check_record(&r) {
                    Ok(()) => match window.map(|w| w.check(r.timestamp)) {
                        Some(Err(e)) => out_of_window.push((r, e)),
                        _ => {
                            if let Some(w) = &window {
                                place(w, &mut r);
                            }
                            records.push(r)
                        }
                    },
                    Err(e) => unstorable.push((r, e)),
                }
            }
            // A time the tenant may not store (a text line stamped before
            // the plan's retention): kept as a dead letter that says so,
            // never stored to be deleted at the next sweep. The parser did
            // its job: this counts against no plugin. (Replaying it cannot
            // store it either: the letter is there to be read.)
            if let Some((_, first)) = out_of_window.first() {
                let reason = format!(
                    "{} record(s) stamped outside what the tenant may store; the first: {first}",
                    out_of_window.len()
                );
                let part: Vec<Record> = out_of_window.into_iter().map(|(r, _)| r).collect();
                self.dead_letter_out_of_window(i, &part, &parser, &reason).await?;
            }
            // A parser's record that no store can keep is dead-lettered
            // alone; the entry's other records flow on.
            if let Some((_, first)) = unstorable.first() {
                let e = RuntimeError::BadOutput {
                    plugin: parser,
                    message: format!("{} record(s) no store can keep; the first: {first}", unstorable.len()),
                };
                let part: Vec<Record> = unstorable.into_iter().map(|(r, _)| r).collect();
                self.dead_letter_records(&part, &e).await?;
            }
        }
        Ok(records)
    }

    /// The entry's records, with the name of the parser that made them.
    async fn parse(&mut self, entry: &QueueEntry) -> Result<(String, Vec<Record>), PipelineError> {
        let (processor, tenant) = (self.processor, self.tenant);
        let inst = self.instances().await?;
        let parser = if entry.content_type.starts_with("text/") {
            &mut inst.text
        } else {
            &mut inst.json
        };
        let started = Instant::now();
        let out = cpu::measured(
            cpu::Stage::Wasm,
            parser.parse(&entry.content_type, entry.service.as_deref(), &entry.body),
        )
        .await;
        let took = started.elapsed();
        let records = out.and_then(|b| codec::decode(&b).map_err(|e| bad_output(parser, e)));
        let returned = records.as_ref().ok().map(Vec::len);
        processor.called(tenant, Stage::Parser, parser.plugin(), took, 1, returned);
        Ok((parser.plugin().to_string(), records?))
    }

    /// Enriches and routes `records`, halving around failures until the
    /// failing records are found; those are dead-lettered. Returns every
    /// record that went through, with its route.
    async fn enrich_and_route(&mut self, records: Vec<Record>) -> Result<Vec<(Record, Route)>, PipelineError> {
        let mut out = Vec::with_capacity(records.len());
        let mut halving = Halving::new(records, halving::BUDGET);
        while let Some(part) = halving.next() {
            let started = Instant::now();
            let failure = match self.enrich_route_once(part).await {
                Ok(done) => {
                    out.extend(done);
                    None
                }
                Err(PipelineError::Runtime(e)) => Some(e),
                Err(other) => return Err(other),
            };
            let Some(e) = failure else {
                halving.report(Ok(()));
                continue;
            };
            match halving.report(Err(started.elapsed())) {
                Settled::Failed(part) => self.dead_letter_records(&part, &e).await?,
                Settled::Pending => {
                    tracing::warn!(tenant = self.tenant, error = %e, "plugin failed; narrowing the batch down")
                }
                Settled::Passed(_) => {}
            }
        }
        Ok(out)
    }

    /// One try at enrich → route over `records`.
    async fn enrich_route_once(&mut self, records: &[Record]) -> Result<Vec<(Record, Route)>, PipelineError> {
        let (processor, tenant) = (self.processor, self.tenant);
        let window = self.window();
        let inst = self.instances().await?;
        let mut batch = codec::encode(records);
        for enricher in &mut inst.enrichers {
            let started = Instant::now();
            let enriched = cpu::measured(cpu::Stage::Wasm, enricher.enrich(&batch)).await;
            // What it returned is counted from the batch's header; a batch
            // that does not decode fails below, on the last enricher.
            let returned = enriched.as_ref().ok().map(|b| codec::batch_len(b).unwrap_or(0));
            let given = codec::batch_len(&batch).unwrap_or(0);
            processor.called(
                tenant,
                Stage::Enricher,
                enricher.plugin(),
                started.elapsed(),
                given,
                returned,
            );
            batch = enriched?;
        }
        let records = match inst.enrichers.last() {
            Some(last) => {
                let mut records = codec::decode(&batch).map_err(|e| bad_output(last, e))?;
                // What an enricher made that no store can keep fails it
                // like any bad output: halving finds the record and
                // dead-letters it alone.
                for r in &mut records {
                    let bad = |r: &Record, e: &dyn std::fmt::Display| RuntimeError::BadOutput {
                        plugin: last.plugin().to_string(),
                        message: format!("record {}: {e}", r.id.chars().take(64).collect::<String>()),
                    };
                    // An enricher may not move a record before the
                    // tenant's retention either; one it moves ahead is
                    // placed at the arrival, as a parser's is.
                    if let Some(w) = &window {
                        w.check(r.timestamp).map_err(|e| bad(r, &e))?;
                        place(w, r);
                    }
                    r.attributes.iter_mut().for_each(|(_, v)| crate::model::settle_attr(v));
                    limits::check_record(r).map_err(|e| bad(r, &e))?;
                }
                records
            }
            None => records.to_vec(),
        };
        let started = Instant::now();
        let routes = cpu::measured(cpu::Stage::Wasm, inst.router.route(&batch, records.len())).await;
        let returned = routes.as_ref().ok().map(Vec::len);
        processor.called(
            tenant,
            Stage::Router,
            inst.router.plugin(),
            started.elapsed(),
            records.len(),
            returned,
        );
        Ok(records.into_iter().zip(routes?).collect())
    }

    /// The times this turn's records may carry: from the first entry's
    /// arrival back by the retention to the last one's grace ahead.
    fn window(&self) -> Option<TimeWindow> {
        let arrivals = self.entries.iter().map(|d| d.entry.received_at);
        let (first, last) = (arrivals.clone().min()?, arrivals.max()?);
        Some(TimeWindow::spanning(first, last, self.retention?))
    }

    async fn dead_letter_records(&mut self, part: &[Record], e: &RuntimeError) -> Result<(), PipelineError> {
        tracing::error!(tenant = self.tenant, records = part.len(), error = %e, "dead-lettering records");
        let first = part.first().and_then(|r| self.origin.get(&r.id)).copied().unwrap_or(0);
        let mut batches: Vec<String> = part
            .iter()
            .filter_map(|r| self.origin.get(&r.id))
            .map(|&i| self.entries[i].entry.batch_id.to_string())
            .collect();
        batches.dedup();
        self.processor
            .dead_letters
            .put(dead_letter::of_records(
                &self.entries[first].entry,
                batches,
                part,
                e.plugin(),
                e.kind(),
                &e.to_string(),
            ))
            .await?;
        self.count_dead_letter(e);
        Ok(())
    }

    /// Dead-letters records of entry `entry` whose time the tenant may not
    /// store: kind `timestamp_out_of_range`, blaming no plugin's health.
    async fn dead_letter_out_of_window(
        &mut self,
        entry: usize,
        part: &[Record],
        parser: &str,
        reason: &str,
    ) -> Result<(), PipelineError> {
        const KIND: &str = "timestamp_out_of_range";
        tracing::warn!(
            tenant = self.tenant,
            records = part.len(),
            reason,
            "dead-lettering records"
        );
        let entry = &self.entries[entry].entry;
        self.processor
            .dead_letters
            .put(dead_letter::of_records(
                entry,
                vec![entry.batch_id.to_string()],
                part,
                parser,
                KIND,
                reason,
            ))
            .await?;
        self.processor.metrics.error(KIND);
        self.count_letter();
        Ok(())
    }

    fn count_dead_letter(&mut self, e: &RuntimeError) {
        self.processor.metrics.error(e.kind());
        self.count_letter();
        self.failures.push((e.plugin().to_string(), e.to_string()));
    }

    fn count_letter(&self) {
        self.processor.metrics.dead_lettered();
        self.processor.meter.record(
            self.tenant,
            Usage {
                dead_letters: 1,
                ..Usage::default()
            },
        );
    }

    /// The records to store: those the router sent somewhere, with the
    /// tenant the host says and the entry they came from.
    fn outcome(self, passed: Vec<(Record, Route)>) -> Outcome {
        let count = passed.len();
        let routed = passed
            .into_iter()
            .filter(|(_, route)| route.metadata || route.raw || route.index)
            .map(|(mut r, route)| {
                // A plugin cannot move a record to another tenant, nor give
                // it an id that would collide across batches.
                r.tenant = self.tenant.to_string();
                let entry = self.origin.get(&r.id).copied().unwrap_or(0);
                if r.id.is_empty() || r.id.len() > MAX_ID_LEN || r.id.chars().any(char::is_control) {
                    r.id = ulid::Ulid::new().to_string();
                }
                let received_at = self.entries[entry].entry.received_at;
                RoutedRecord {
                    entry,
                    may_exist: !self.new_ids.contains(&r.id),
                    route,
                    record: to_log_record(r, received_at),
                }
            })
            .collect();
        Outcome {
            ran: self.ran,
            routed,
            passed: count,
            failures: self.failures,
        }
    }
}

/// A time too far ahead goes to the window's arrival; the one the record
/// carried is kept as `ORIGINAL_TIMESTAMP`, where the attributes have room.
fn place(w: &TimeWindow, r: &mut Record) {
    if let Placed::Clamped(to) = w.place(r.timestamp) {
        let original = crate::model::format_ts(r.timestamp);
        r.timestamp = to;
        if r.attributes.len() < limits::MAX_ATTRIBUTES {
            r.attributes.retain(|(k, _)| k != ORIGINAL_TIMESTAMP);
            r.attributes.push((ORIGINAL_TIMESTAMP.to_string(), original));
        }
    }
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

fn bad_output(plugin: &Instance, e: codec::DecodeError) -> RuntimeError {
    RuntimeError::BadOutput {
        plugin: plugin.plugin().to_string(),
        message: e.to_string(),
    }
}
