//! Acks and the watermark: acked entries forgotten, the lowest unacked
//! sequence number kept in `acked`, segments behind it deleted.

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;

use super::LocalQueue;
use crate::error::BackendError;
use crate::queue::{corrupt, io};

impl LocalQueue {
    fn persist_watermark(&self, watermark: u64) -> Result<(), BackendError> {
        // One writer at a time (two acks at once renamed one file twice,
        // and the second failed), and never backwards.
        let mut persisted = self.persisted.lock();
        if watermark <= *persisted {
            return Ok(());
        }
        *persisted = watermark;
        // No fsync: a stale watermark only means redelivery, which the
        // stores absorb.
        let tmp = self.dir.join("acked.tmp");
        fs::write(&tmp, watermark.to_le_bytes()).map_err(io)?;
        fs::rename(tmp, self.dir.join("acked")).map_err(io)?;
        Ok(())
    }

    /// Forgets acked entries and moves the watermark past them.
    pub(super) fn settle(&self, tokens: &[u64]) -> Result<(), BackendError> {
        let watermark = {
            let mut st = self.state.lock();
            for t in tokens {
                st.in_flight.remove(t);
                if let Some(slot) = st.pending.remove(t) {
                    st.bytes -= slot.size;
                    if slot.entry.is_some() {
                        st.resident -= slot.size;
                    }
                    self.reserved.fetch_sub(slot.size, Ordering::Relaxed);
                }
            }
            // Everything below the first pending entry is acked.
            let next = st.pending.keys().next().copied().unwrap_or(st.published);
            if next == st.watermark {
                return Ok(());
            }
            st.watermark = next;
            next
        };
        self.persist_watermark(watermark)?;
        self.gc_segments();
        Ok(())
    }

    pub(super) fn gc_segments(&self) {
        let mut st = self.state.lock();
        // A segment can go once the next one starts at or below the
        // watermark: all its frames are acked. The newest always stays.
        while st.segments.len() > 1 && st.segments[1].0 <= st.watermark {
            let (_, path) = st.segments.remove(0);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete acked segment");
            }
        }
    }
}

pub(super) fn read_watermark(dir: &Path) -> Result<u64, BackendError> {
    match fs::read(dir.join("acked")) {
        Ok(b) if b.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b);
            Ok(u64::from_le_bytes(a))
        }
        Ok(_) => Err(corrupt("acked watermark file has a bad size")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io(e)),
    }
}
