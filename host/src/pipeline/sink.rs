//! The sinks: raw store first (its object keys become the records' raw
//! paths), then the index and the metadata store side by side. The queue
//! entries are acked by the caller only after all three committed.
//!
//! A record the metadata store refuses for good (`ErrorKind::Rejected`) is
//! found by splitting the batch, and dead-lettered alone with the store's
//! reason; the rest of the batch is stored. Ingest's field limits keep such
//! records rare; this is what keeps the rest flowing when one gets through.

use std::collections::HashMap;
use std::time::Instant;

use futures::future::try_join_all;

use super::{PipelineError, Processor, RoutedRecord, dead_letter};
use crate::cpu;
use crate::error::{BackendError, ErrorKind};
use crate::model::LogRecord;
use crate::queue::Delivery;
use crate::search::IndexRow;
use crate::stores::MetaRow;
use crate::usage::Usage;
use loggerhub_codec::Record;

impl Processor {
    /// raw (one object per entry), then index and metadata together: the
    /// raw path must be known before either records it. The entries are
    /// acked only after all three committed.
    pub(super) async fn write_stores(
        &self,
        tenant: &str,
        entries: &[Delivery],
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
                    let key = cpu::measured(cpu::Stage::Raw, self.raw.put_batch(tenant, entry.batch_id, &recs)).await?;
                    Ok::<_, BackendError>((i, key))
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
        let index_write = cpu::measured(cpu::Stage::Index, async {
            let started = Instant::now();
            if !to_index.is_empty() {
                let rejected = self.index.index(tenant, &to_index).await?;
                if let Some(first) = rejected.first() {
                    self.metrics.index_rejected(rejected.len());
                    tracing::warn!(
                        tenant,
                        count = rejected.len(),
                        id = %first.id,
                        reason = %first.reason,
                        "index refused records; they stay in the metadata and raw stores"
                    );
                }
            }
            self.metrics.store_write("index", started.elapsed());
            Ok::<_, PipelineError>(())
        });
        let rows: Vec<MetaRow<'_>> = routed
            .iter()
            .filter(|r| r.route.metadata)
            .map(|r| MetaRow {
                record: &r.record,
                indexed: r.route.index,
            })
            .collect();
        let meta_write = cpu::measured(cpu::Stage::Metadata, async {
            let started = Instant::now();
            let refused = if rows.is_empty() {
                Vec::new()
            } else {
                isolate_refused(rows, |part| async move { self.meta.insert_logs(&part).await.map(drop) }).await?
            };
            self.metrics.store_write("metadata", started.elapsed());
            Ok::<_, PipelineError>(refused)
        });
        // Both run to the end even if one fails: with the index down, the
        // list view still shows the records (a retry re-inserts nothing).
        let (indexed, stored) = tokio::join!(index_write, meta_write);
        indexed?;
        let refused = stored?;
        for (row, e) in &refused {
            self.dead_letter_refused(tenant, entries, &routed, row.record, e)
                .await?;
        }
        self.metrics.logs_processed(routed.len() - refused.len());
        Ok(())
    }

    /// Dead-letters one record a store refused, under the entry it came from.
    async fn dead_letter_refused(
        &self,
        tenant: &str,
        entries: &[Delivery],
        routed: &[RoutedRecord],
        record: &LogRecord,
        e: &BackendError,
    ) -> Result<(), PipelineError> {
        let entry = routed.iter().find(|r| r.record.id == record.id).map_or(0, |r| r.entry);
        let Some(delivery) = entries.get(entry) else {
            return Ok(());
        };
        tracing::error!(tenant, id = record.id, error = %e, "the metadata store refused a record; dead-lettering it");
        self.dead_letters
            .put(dead_letter::of_records(
                &delivery.entry,
                vec![delivery.entry.batch_id.to_string()],
                &[to_record(record)],
                &e.backend.to_string(),
                "rejected",
                &e.source_message(),
            ))
            .await?;
        self.metrics.error("rejected");
        self.metrics.dead_lettered();
        self.meter.record(
            tenant,
            Usage {
                dead_letters: 1,
                ..Usage::default()
            },
        );
        Ok(())
    }
}

fn to_record(r: &LogRecord) -> Record {
    Record {
        id: r.id.clone(),
        tenant: r.tenant.clone(),
        service: r.service.clone(),
        level: r.level,
        timestamp: r.timestamp,
        message: r.message.clone(),
        full_log: r.full_log.clone(),
        language: r.language.clone(),
        attributes: r.attributes.clone(),
    }
}

/// Writes `items` with `write`; when the store refuses a part for good,
/// splits it until each refused item stands alone, and returns those with
/// the store's error. Any other failure ends the write (the caller retries
/// the whole batch: writes are idempotent by id). A batch of n with k
/// refused items costs O(k log n) writes.
async fn isolate_refused<T, F, Fut>(items: Vec<T>, mut write: F) -> Result<Vec<(T, BackendError)>, BackendError>
where
    T: Clone,
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<(), BackendError>>,
{
    let mut refused = Vec::new();
    let mut stack = vec![items];
    while let Some(mut part) = stack.pop() {
        match write(part.clone()).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::Rejected => {
                if part.len() == 1 {
                    refused.push((part.remove(0), e));
                } else {
                    let right = part.split_off(part.len() / 2);
                    stack.push(right);
                    stack.push(part);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Backend;
    use std::cell::RefCell;

    #[tokio::test]
    async fn refused_items_are_found_alone_and_the_rest_written() {
        for bad in [
            vec![],
            vec![0],
            vec![99],
            vec![3, 4, 50],
            (0..100).step_by(7).collect::<Vec<u32>>(),
        ] {
            let written = RefCell::new(Vec::new());
            let calls = RefCell::new(0);
            let refused = isolate_refused((0..100u32).collect(), |part: Vec<u32>| {
                *calls.borrow_mut() += 1;
                let bad = &bad;
                let written = &written;
                async move {
                    if part.iter().any(|i| bad.contains(i)) {
                        // A refused write stores nothing (one transaction).
                        Err(BackendError::new(Backend::Metadata, ErrorKind::Rejected, "too long"))
                    } else {
                        written.borrow_mut().extend(part);
                        Ok(())
                    }
                }
            })
            .await
            .expect("only refusals");
            let refused: Vec<u32> = refused.into_iter().map(|(i, _)| i).collect();
            let mut sorted = refused.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, bad);
            let mut written = written.into_inner();
            written.sort_unstable();
            assert_eq!(written, (0..100).filter(|i| !bad.contains(i)).collect::<Vec<_>>());
            // O(k log n): at most 1 + 2·k·⌈log2 n⌉ writes.
            assert!(calls.into_inner() <= 1 + 2 * bad.len() * 7, "{bad:?}");
        }
        // Anything but a refusal ends the write at once.
        let down = isolate_refused(vec![1, 2, 3], |_| async {
            Err::<(), _>(BackendError::new(Backend::Metadata, ErrorKind::Unavailable, "down"))
        })
        .await;
        assert!(matches!(down, Err(e) if e.kind == ErrorKind::Unavailable));
    }
}
