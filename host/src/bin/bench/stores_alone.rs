//! The stores alone: the run's records written straight into fresh
//! embedded stores, as the pipeline's sink writes them (raw, then index and
//! metadata side by side), in the same entries and turns, with no HTTP,
//! queue, WASM or scheduler. End to end is reported as a share of it.

use std::time::Instant;

use loggerhub::model::LogRecord;
use loggerhub::search::IndexRow;
use loggerhub::stores::MetaRow;
use loggerhub::stores::raw::BatchName;

use crate::probe::proc_stat;
use crate::records::record;

/// Bytes of entries one turn takes (`pipeline::TURN_BODY_BYTES`).
const TURN_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What the stores alone did: seconds, and CPU seconds of this process.
pub struct Baseline {
    pub secs: f64,
    pub cpu: f64,
}

/// One queue entry's worth: its batch id, tenant and records.
struct Entry {
    batch_id: ulid::Ulid,
    tenant: usize,
    records: Vec<LogRecord>,
}

/// Writes `total` records, made as the run's were, into fresh embedded
/// stores under `dir`: entries of `batch` records (each its own raw
/// object), dealt to `tenants` in turn as the run's requests were; a turn
/// takes one tenant's entries, as many as the pipeline takes (4 MiB), and
/// the turns go round the tenants. The records are built before the clock
/// starts.
pub async fn stores_alone(
    dir: &std::path::Path,
    tenants: &[String],
    total: u64,
    batch: usize,
) -> anyhow::Result<Baseline> {
    let backends = loggerhub::config::Backends::embedded(dir);
    let loggerhub::stores::Metadata { accounts, logs: meta } =
        loggerhub::stores::open_metadata(&backends.metadata).await?;
    let raw = loggerhub::stores::raw::RawStore::open(&backends.raw)?;
    let index = loggerhub::search::open(&backends.index)?;
    for t in tenants {
        accounts.create_tenant(t, "unlimited").await?;
    }
    let now = loggerhub::model::now_ns();
    let mut lanes: Vec<Vec<Entry>> = tenants.iter().map(|_| Vec::new()).collect();
    let mut entry_bytes = 0;
    for (b, first) in (0..total).step_by(batch).enumerate() {
        let tenant = b % tenants.len();
        let batch_id = ulid::Ulid::new();
        let lines: Vec<String> = (first..(first + batch as u64).min(total)).map(record).collect();
        entry_bytes = lines.iter().map(|l| l.len() + 1).sum();
        let parsed = loggerhub_codec::payload::parse_json(lines.join("\n").as_bytes())
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let records = parsed
            .into_iter()
            .enumerate()
            .map(|(j, r)| LogRecord {
                id: loggerhub::model::ids::record_id(batch_id, j).to_string(),
                tenant: tenants[tenant].clone(),
                service: r.service,
                level: r.level,
                timestamp: r.timestamp,
                received_at: now,
                message: r.message,
                full_log: r.full_log,
                language: r.language,
                attributes: r.attributes,
                raw_path: None,
            })
            .collect();
        lanes[tenant].push(Entry {
            batch_id,
            tenant,
            records,
        });
    }
    // The processor's turns: 4 MiB of bodies, and no more entries than
    // it takes at once.
    let max_entries = loggerhub::config::ProcessorConfig::default().max_entries;
    let per_turn = (TURN_BODY_BYTES / entry_bytes.max(1)).clamp(1, max_entries);
    let mut turns: Vec<Vec<Entry>> = Vec::new();
    let mut lanes: Vec<std::vec::IntoIter<Entry>> = lanes.into_iter().map(Vec::into_iter).collect();
    loop {
        let before = turns.len();
        for lane in &mut lanes {
            let turn: Vec<Entry> = lane.by_ref().take(per_turn).collect();
            if !turn.is_empty() {
                turns.push(turn);
            }
        }
        if turns.len() == before {
            break;
        }
    }
    let (cpu0, _) = proc_stat(std::process::id())?;
    let started = Instant::now();
    for mut turn in turns {
        let tenant = tenants[turn[0].tenant].as_str();
        // Small entries share raw objects as the pipeline's do.
        let group_of =
            loggerhub::pipeline::raw_groups(turn.iter().map(|e| e.records.iter().map(LogRecord::size).sum()));
        let groups = group_of.last().map_or(0, |g| g + 1);
        let keys = futures::future::try_join_all((0..groups).map(|g| {
            let (raw, turn, group_of) = (&raw, &turn, &group_of);
            async move {
                let members = || turn.iter().zip(group_of).filter(|(_, eg)| **eg == g).map(|(e, _)| e);
                let refs: Vec<&LogRecord> = members().flat_map(|e| e.records.iter()).collect();
                let batches: Vec<ulid::Ulid> = members().map(|e| e.batch_id).collect();
                raw.put_batch(tenant, BatchName::of_group(&batches), &refs).await
            }
        }))
        .await?;
        let mut lines = vec![0; groups];
        for (e, g) in turn.iter_mut().zip(&group_of) {
            for r in &mut e.records {
                lines[*g] += 1;
                r.raw_path = Some(format!("{}#{}", keys[*g], lines[*g]));
            }
        }
        let all: Vec<&LogRecord> = turn.iter().flat_map(|e| e.records.iter()).collect();
        let rows: Vec<IndexRow<'_>> = all
            .iter()
            .map(|r| IndexRow {
                record: r,
                may_exist: false,
            })
            .collect();
        let metas: Vec<MetaRow<'_>> = all
            .iter()
            .map(|r| MetaRow {
                record: r,
                indexed: true,
                may_exist: false,
            })
            .collect();
        let (indexed, stored) = tokio::join!(index.index(tenant, &rows), meta.insert_logs(&metas));
        indexed?;
        stored?;
    }
    let secs = started.elapsed().as_secs_f64();
    let (cpu1, _) = proc_stat(std::process::id())?;
    Ok(Baseline { secs, cpu: cpu1 - cpu0 })
}
