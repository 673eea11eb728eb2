//! The signal reader: one task per process blocks on `<name>:signal`,
//! which every push touches, and wakes `wait`.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use redis::streams::StreamReadOptions;

use super::RedisQueue;

/// How long the signal reader blocks per call (it loops).
const SIGNAL_BLOCK: Duration = Duration::from_secs(1);

impl RedisQueue {
    /// Starts, once, the task that wakes `wait` when any process pushes.
    pub(super) fn start_signal_reader(&self) {
        self.signal_reader.call_once(|| {
            let shared = Arc::downgrade(&self.shared);
            let mut reader = self.reader.clone();
            let signal = self.key("signal");
            tokio::spawn(async move {
                let mut last = "$".to_string();
                let opts = StreamReadOptions::default()
                    .count(1)
                    .block(SIGNAL_BLOCK.as_millis() as usize);
                loop {
                    let reply: Result<Option<redis::streams::StreamReadReply>, _> =
                        reader.xread_options(&[&signal], &[&last], &opts).await;
                    let Some(shared) = shared.upgrade() else { return };
                    match reply {
                        Ok(Some(r)) => {
                            if let Some(id) = r.keys.into_iter().flat_map(|k| k.ids).last() {
                                last = id.id;
                            }
                            shared.changed();
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "queue signal read failed");
                            // Wake the scheduler anyway: it looks at the lanes.
                            shared.changed();
                            tokio::time::sleep(SIGNAL_BLOCK).await;
                        }
                    }
                }
            });
        });
    }
}
