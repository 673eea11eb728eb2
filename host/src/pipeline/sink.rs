//! The sinks: raw store first (its object keys become the records' raw
//! paths), then the index and the metadata store side by side. The queue
//! entries are acked by the caller only after all three committed.

use std::collections::HashMap;
use std::time::Instant;

use futures::future::try_join_all;

use super::{PipelineError, Processor, RoutedRecord};
use crate::error::BackendError;
use crate::model::LogRecord;
use crate::queue::Delivery;
use crate::search::IndexRow;
use crate::stores::MetaRow;

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
                    let key = self.raw.put_batch(tenant, entry.batch_id, &recs).await?;
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
        let index_write = async {
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
        // Both run to the end even if one fails: with the index down, the
        // list view still shows the records (a retry re-inserts nothing).
        let (indexed, stored) = tokio::join!(index_write, meta_write);
        indexed.and(stored)?;
        self.metrics.logs_processed(routed.len());
        Ok(())
    }
}
