//! The embedded queue: an append-only log of segment files in the data dir.
//!
//! Frames are `len:u32 crc32:u32 seq:u64 payload`, the CRC covering seq and
//! payload. One writer thread appends what concurrent `push` calls sent and
//! syncs once for all of them (group commit), then wakes them: a 202 costs
//! a share of one fdatasync, not one each. Unacked entries also stay in
//! memory up to `RESIDENT_BYTES`, so taking them usually needs no disk
//! read; past that they are read back from their segment when taken, so a
//! deep backlog costs disk, not memory.
//! `acked` holds the lowest sequence number not yet acked; on open, every
//! frame from there on is delivered again and a torn tail is cut off.
//! Waiting entries are kept in one lane per tenant (sequence numbers in
//! order), so taking one tenant's entries never scans another's.
//!
//! A lane that waits (its tenant suspended, or its pipeline held to its
//! plan) would keep the watermark, and every segment after it, for as long
//! as it waits: disk that grows with everyone's traffic, and a restart
//! that hands every acked entry above it back to the pipeline. So once the
//! oldest segment holds the watermark with two more behind it, and what
//! waits in it is at most an eighth of it (a waiting lane, not a backlog),
//! its waiting entries are carried forward: written again at the tail (idempotent,
//! since their records may have been stored: ids are made from the batch
//! id) and the old frames acked (`carry_forward`). A carried entry may then
//! be processed after entries its tenant sent later.
//!
//! One concept a file: `segments` (segment files, frames, recovery),
//! `writer` (group commit), `lanes` (the in-memory index of what waits),
//! `watermark` (acks, the `acked` file, deleting acked segments) and
//! `carry` (carrying a waiting lane forward).

mod carry;
mod lanes;
mod segments;
#[cfg(test)]
mod tests;
mod watermark;
mod writer;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Notify;

use self::carry::CARRY_IDLE;
use self::lanes::{State, Taken};
use self::segments::recover_segment;
use self::watermark::read_watermark;
use self::writer::{WriteReq, writer_loop};
use super::{Delivery, Depth, Lane, Lanes, Queue, QueueEntry, closed, io};
use crate::error::BackendError;

/// A new segment starts past this size, so acked data is deleted in pieces.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Unacked entries kept in memory; the rest wait on disk only.
const RESIDENT_BYTES: u64 = 64 * 1024 * 1024;

pub struct LocalQueue {
    dir: PathBuf,
    max_bytes: u64,
    /// A new segment starts past this size (`SEGMENT_BYTES`).
    segment_bytes: u64,
    /// Entries carried forward so far (`carry_forward`).
    carried: AtomicU64,
    /// The watermark last written to `acked`.
    persisted: Mutex<u64>,
    /// Bytes pushed but not yet acked, including those still being written.
    reserved: AtomicU64,
    state: Mutex<State>,
    notify: Notify,
    writer: Mutex<Option<std_mpsc::Sender<WriteReq>>>,
}

impl LocalQueue {
    /// Opens (or creates) the queue in `dir` and recovers unacked entries.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Arc<LocalQueue>, BackendError> {
        Self::open_with_budget(dir, max_bytes, RESIDENT_BYTES)
    }

    /// As `open`, holding at most `resident_budget` bytes of entries in
    /// memory.
    pub fn open_with_budget(dir: &Path, max_bytes: u64, resident_budget: u64) -> Result<Arc<LocalQueue>, BackendError> {
        Self::open_with(dir, max_bytes, resident_budget, SEGMENT_BYTES)
    }

    fn open_with(
        dir: &Path,
        max_bytes: u64,
        resident_budget: u64,
        segment_bytes: u64,
    ) -> Result<Arc<LocalQueue>, BackendError> {
        fs::create_dir_all(dir).map_err(io)?;
        let watermark = read_watermark(dir)?;
        let mut state = State {
            watermark,
            budget: resident_budget,
            ..State::default()
        };
        let mut next_seq = watermark;
        let mut seg_paths: Vec<(u64, PathBuf)> = fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let seq = name.strip_prefix("segment-")?.strip_suffix(".log")?.parse().ok()?;
                Some((seq, e.path()))
            })
            .collect();
        seg_paths.sort();
        for (first, path) in seg_paths {
            let last = recover_segment(&path, watermark, &mut state)?;
            next_seq = next_seq.max(last.map_or(first, |l| l + 1));
            state.segments.push((first, path));
        }
        state.published = next_seq;
        let waiting: Vec<(u64, Arc<str>)> = state
            .pending
            .iter()
            .map(|(s, slot)| (*s, slot.tenant.clone()))
            .collect();
        for (seq, tenant) in waiting {
            state.lanes.entry(tenant).or_default().push_back(seq);
        }
        state.bytes = state.pending.values().map(|s| s.size).sum();
        let reserved = state.bytes;
        let recovered = state.pending.len();

        let queue = Arc::new(LocalQueue {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes,
            carried: AtomicU64::new(0),
            persisted: Mutex::new(watermark),
            reserved: AtomicU64::new(reserved),
            state: Mutex::new(state),
            notify: Notify::new(),
            writer: Mutex::new(None),
        });
        queue.gc_segments();
        let (tx, rx) = std_mpsc::channel();
        *queue.writer.lock() = Some(tx);
        let weak = Arc::downgrade(&queue);
        std::thread::Builder::new()
            .name("queue-writer".into())
            .spawn(move || writer_loop(weak, rx, next_seq))
            .map_err(io)?;
        tracing::info!(dir = %dir.display(), recovered, "queue opened");
        Ok(queue)
    }

    /// Turns taken slots into deliveries, reading from disk those past the
    /// memory budget; on a read error every taken entry is handed back.
    async fn materialize(&self, taken: Vec<Taken>) -> Result<Vec<Delivery>, BackendError> {
        let tokens: Vec<u64> = taken.iter().map(|(t, _, _)| *t).collect();
        let mut out = Vec::with_capacity(taken.len());
        for (token, redelivered, got) in taken {
            let entry = match got {
                Ok(e) => Ok(e),
                Err(loc) => Self::read_entry(&loc),
            };
            match entry {
                Ok(entry) => out.push(Delivery {
                    token,
                    entry,
                    redelivered,
                }),
                Err(e) => {
                    self.release(&tokens).await?;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Queue for LocalQueue {
    /// Stops the writer thread; entries already durable stay on disk.
    fn close(&self) {
        self.writer.lock().take();
    }

    async fn ping(&self) -> Result<(), BackendError> {
        if self.writer.lock().is_some() {
            Ok(())
        } else {
            Err(closed())
        }
    }

    async fn push(&self, entry: QueueEntry) -> Result<(), BackendError> {
        self.write(entry, true).await
    }

    async fn lanes(&self) -> Result<Lanes, BackendError> {
        let st = self.state.lock();
        let mut ready: Vec<(u64, Lane)> = st
            .lanes
            .iter()
            .filter_map(|(tenant, seqs)| {
                let first = *seqs.front()?;
                let lane = Lane {
                    tenant: tenant.to_string(),
                    entries: seqs.len() as u64,
                };
                Some((first, lane))
            })
            .collect();
        // Oldest first, so `take` keeps the order of arrival across lanes.
        ready.sort_unstable_by_key(|(first, _)| *first);
        Ok(Lanes {
            ready: ready.into_iter().map(|(_, lane)| lane).collect(),
            mark: st.version,
        })
    }

    async fn take_lane(&self, tenant: &str, max: usize, max_bytes: usize) -> Result<Vec<Delivery>, BackendError> {
        let taken: Vec<Taken> = {
            let mut st = self.state.lock();
            let st = &mut *st;
            if !st.lanes.contains_key(tenant) {
                return Ok(Vec::new());
            }
            let name = st.tenant(tenant);
            let now = std::time::Instant::now();
            if st.taken_at.len() > 10_000 {
                st.taken_at.retain(|_, at| now.duration_since(*at) < CARRY_IDLE);
            }
            st.taken_at.insert(name, now);
            let Some(lane) = st.lanes.get_mut(tenant) else {
                return Ok(Vec::new());
            };
            let mut out = Vec::with_capacity(max.min(lane.len()));
            let mut bytes = 0usize;
            while out.len() < max && bytes < max_bytes {
                let Some(seq) = lane.pop_front() else { break };
                let Some(slot) = st.pending.get(&seq) else { continue };
                bytes = bytes.saturating_add(slot.size as usize);
                let got = slot.entry.clone().ok_or_else(|| slot.loc.clone());
                st.in_flight.insert(seq);
                out.push((seq, slot.redelivered, got));
            }
            if lane.is_empty() {
                st.lanes.remove(tenant);
            }
            out
        };
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        self.materialize(taken).await
    }

    async fn wait(&self, mark: u64, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            if self.state.lock().version != mark {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    async fn ack(&self, tokens: &[u64]) -> Result<(), BackendError> {
        self.settle(tokens)?;
        self.carry_forward().await
    }

    async fn nack(&self, tokens: &[u64]) -> Result<(), BackendError> {
        self.state.lock().hand_back(tokens, true);
        self.notify.notify_waiters();
        Ok(())
    }

    async fn release(&self, tokens: &[u64]) -> Result<(), BackendError> {
        self.state.lock().hand_back(tokens, false);
        self.notify.notify_waiters();
        Ok(())
    }

    fn depth(&self) -> Depth {
        let st = self.state.lock();
        Depth {
            entries: st.pending.len() as u64,
            bytes: st.bytes,
        }
    }
}
