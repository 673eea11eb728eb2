//! Carrying a waiting lane forward: the waiting entries of a sparse oldest
//! segment written again at the tail, so it does not hold the watermark.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::LocalQueue;
use super::lanes::Taken;
use crate::error::BackendError;
use crate::queue::Queue;

/// A lane taken from within this long is being worked through: its
/// entries are not carried forward, however long they wait.
pub(super) const CARRY_IDLE: Duration = Duration::from_secs(10);

impl LocalQueue {
    /// Moves the waiting entries of the oldest segment to the tail when
    /// that segment holds the watermark with two more behind it and is
    /// sparse (what still waits in it is at most an eighth of a segment):
    /// a lane that waits, not a backlog being worked through, which would
    /// only be written again and again. They leave their lanes while they
    /// move, so no worker takes them twice, and are written as one group
    /// (one sync); those not written go back to their lanes.
    pub(super) async fn carry_forward(&self) -> Result<(), BackendError> {
        let moving: Vec<Taken> = {
            let mut st = self.state.lock();
            let st = &mut *st;
            if st.segments.len() < 3 {
                return Ok(());
            }
            let end = st.segments[1].0;
            let mut out = Vec::new();
            let mut waiting = 0u64;
            let now = std::time::Instant::now();
            for (seq, slot) in st.pending.range(..end) {
                let worked = st
                    .taken_at
                    .get(&slot.tenant)
                    .is_some_and(|at| now.duration_since(*at) < CARRY_IDLE);
                if st.in_flight.contains(seq) || worked {
                    // Being worked on, or next in a lane being worked
                    // through: its ack will free the segment.
                    return Ok(());
                }
                waiting += slot.size;
                if waiting > self.segment_bytes / 8 {
                    return Ok(());
                }
                out.push((
                    *seq,
                    slot.redelivered,
                    slot.entry.clone().ok_or_else(|| slot.loc.clone()),
                ));
            }
            if out.is_empty() {
                return Ok(());
            }
            let seqs: HashSet<u64> = out.iter().map(|(seq, _, _)| *seq).collect();
            st.lanes.retain(|_, lane| {
                lane.retain(|seq| !seqs.contains(seq));
                !lane.is_empty()
            });
            st.in_flight.extend(seqs);
            out
        };
        tracing::info!(entries = moving.len(), "carrying waiting queue entries forward");
        let mut read = Vec::with_capacity(moving.len());
        let mut failed = None;
        for (seq, _, got) in moving {
            match got.or_else(|loc| Self::read_entry(&loc)) {
                Ok(mut entry) => {
                    entry.idempotent = true;
                    read.push((seq, entry));
                }
                Err(e) => {
                    self.release(&[seq]).await?;
                    failed.get_or_insert(e);
                }
            }
        }
        let seqs: Vec<u64> = read.iter().map(|(seq, _)| *seq).collect();
        let written = futures::future::join_all(read.into_iter().map(|(_, entry)| self.write(entry, false))).await;
        let mut carried = Vec::new();
        for (seq, result) in seqs.into_iter().zip(written) {
            match result {
                Ok(()) => carried.push(seq),
                Err(e) => {
                    self.release(&[seq]).await?;
                    failed.get_or_insert(e);
                }
            }
        }
        self.carried.fetch_add(carried.len() as u64, Ordering::Relaxed);
        self.settle(&carried)?;
        failed.map_or(Ok(()), Err)
    }
}
