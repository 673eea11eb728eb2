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
use crate::stores::raw::BatchName;
use crate::usage::Usage;
use loggerhub_codec::Record;

/// Small entries of one turn go to the raw store together, up to this many
/// bytes of records an object: an entry a record (what SDKs send) was a
/// file and an fsync a record (5,383 logs/s, issue 23). Entries larger
/// than this stay an object each, which keeps a detail read from the raw
/// store small.
const RAW_OBJECT_BYTES: usize = 1024 * 1024;

/// A turn's entries in raw objects, from the bytes of the records each
/// sends there (what its plugins made, not its body: a parser may make
/// more than it was given): runs of consecutive entries, each run under
/// `RAW_OBJECT_BYTES` (an entry alone may be more); the object each entry
/// goes to, by entry.
pub fn raw_groups(sizes: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut group = 0;
    let mut bytes = 0;
    sizes
        .into_iter()
        .enumerate()
        .map(|(i, len)| {
            if i > 0 && bytes + len > RAW_OBJECT_BYTES {
                group += 1;
                bytes = 0;
            }
            bytes += len;
            group
        })
        .collect()
}

impl Processor {
    /// raw (small entries together, `raw_groups`), then index and metadata
    /// together: the raw path must be known before either records it. The
    /// entries are acked only after all three committed.
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
        let mut sizes = vec![0; entries.len()];
        for r in routed.iter().filter(|r| r.route.raw) {
            if let Some(n) = sizes.get_mut(r.entry) {
                *n += r.record.size();
            }
        }
        let group_of = raw_groups(sizes);
        let groups = group_of.last().map_or(0, |g| g + 1);
        // One pass: each group's records in routed order (their lines) and
        // its entries' batch ids in entry order (its name).
        let mut recs: Vec<Vec<&LogRecord>> = vec![Vec::new(); groups];
        for r in routed.iter().filter(|r| r.route.raw) {
            if let Some(g) = group_of.get(r.entry) {
                recs[*g].push(&r.record);
            }
        }
        let mut batches: Vec<Vec<ulid::Ulid>> = vec![Vec::new(); groups];
        for (d, g) in entries.iter().zip(&group_of) {
            batches[*g].push(d.entry.batch_id);
        }
        let raw_writes = recs
            .into_iter()
            .zip(batches)
            .enumerate()
            .filter(|(_, (recs, _))| !recs.is_empty())
            .map(|(g, (recs, batches))| async move {
                let name = BatchName::of_group(&batches);
                let key = cpu::measured(cpu::Stage::Raw, self.raw.put_batch(tenant, name, &recs)).await?;
                Ok::<_, BackendError>((g, key))
            });
        let keys: HashMap<usize, String> = try_join_all(raw_writes).await?.into_iter().collect();
        let mut line: HashMap<usize, usize> = HashMap::new();
        for r in routed.iter_mut().filter(|r| r.route.raw) {
            let Some(g) = group_of.get(r.entry) else {
                continue;
            };
            let n = line.entry(*g).or_insert(0);
            *n += 1;
            if let Some(key) = keys.get(g) {
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
                may_exist: r.may_exist,
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

    /// Small entries share objects up to the bound; a large one is alone.
    #[test]
    fn small_entries_share_a_raw_object_and_large_ones_do_not() {
        let kib = 1024;
        assert_eq!(raw_groups([300; 5]), [0; 5]);
        assert_eq!(raw_groups([] as [usize; 0]), Vec::<usize>::new());
        let many = raw_groups(std::iter::repeat_n(300, 10_000));
        assert_eq!(many.last(), Some(&((10_000 * 300) / RAW_OBJECT_BYTES)));
        assert_eq!(raw_groups([600 * kib, 600 * kib, 2048 * kib, 10, 10]), [0, 1, 2, 3, 3]);
    }

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
