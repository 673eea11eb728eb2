//! A queue left by a version with one stream (`<name>:stream`), moved
//! into the tenants' lanes when it is opened.

use redis::AsyncCommands;
use redis::streams::StreamRangeReply;

use super::{GROUP, RedisQueue, err};
use crate::error::BackendError;
use crate::queue::QueueEntry;

/// Entries moved per call from a one-stream queue of an older version.
const MIGRATE_BATCH: usize = 100;

impl RedisQueue {
    /// Moves what a queue of an older version left in its single stream
    /// into the tenants' lanes (an entry some old consumer was processing
    /// may run twice; the stores absorb that).
    pub(super) async fn migrate_single_stream(&self) -> Result<(), BackendError> {
        let old = self.key("stream");
        let mut conn = self.conn.clone();
        let mut moved = 0usize;
        loop {
            let batch: StreamRangeReply = conn.xrange_count(&old, "-", "+", MIGRATE_BATCH).await.map_err(err)?;
            if batch.ids.is_empty() {
                break;
            }
            for sid in batch.ids {
                let payload = sid.get::<Vec<u8>>("e").unwrap_or_default();
                let Ok(entry) = QueueEntry::decode(&payload) else {
                    tracing::error!(id = %sid.id, "corrupt entry in the old queue stream; left there");
                    return Ok(());
                };
                let _: i64 = self
                    .scripts
                    .migrate
                    .key(&old)
                    .key(self.lane(&entry.tenant))
                    .key(self.key("ready"))
                    .key(self.key("lanes"))
                    .key(self.key("signal"))
                    .arg(&sid.id)
                    .arg(payload)
                    .arg(&entry.tenant)
                    .arg(GROUP)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(err)?;
                moved += 1;
            }
        }
        if moved > 0 {
            let _: i64 = conn.del(&old).await.map_err(err)?;
            tracing::info!(entries = moved, "moved the single-stream queue into per-tenant lanes");
        }
        Ok(())
    }
}
