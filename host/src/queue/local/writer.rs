//! Group commit: one writer thread appends what concurrent pushes sent
//! and syncs once for all of them, then wakes them.

use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;

use tokio::sync::oneshot;

use super::LocalQueue;
use super::lanes::{Loc, Slot};
use super::segments::{Segment, append_group, open_segment};
use crate::error::BackendError;
use crate::queue::{QueueEntry, closed, full, io};

pub(super) struct WriteReq {
    pub(super) entry: QueueEntry,
    pub(super) frame_payload: Vec<u8>,
    pub(super) done: oneshot::Sender<Result<(), BackendError>>,
}

impl LocalQueue {
    /// Appends `entry`; `limited`: refused when the queue is full (a
    /// carried entry replaces one already counted, and is not).
    pub(super) async fn write(&self, entry: QueueEntry, limited: bool) -> Result<(), BackendError> {
        let size = entry.encoded_len() as u64;
        let before = self.reserved.fetch_add(size, Ordering::Relaxed);
        if limited && before + size > self.max_bytes {
            self.reserved.fetch_sub(size, Ordering::Relaxed);
            return Err(full(before));
        }
        let (done, wait) = oneshot::channel();
        let req = WriteReq {
            frame_payload: entry.encode(),
            entry,
            done,
        };
        let sent = self.writer.lock().as_ref().map(|tx| tx.send(req).is_ok());
        if sent != Some(true) {
            self.reserved.fetch_sub(size, Ordering::Relaxed);
            return Err(closed());
        }
        wait.await.map_err(|_| closed())?
    }
}

/// After a group this large, the writer waits this long for more before
/// the next sync: each sync is a disk flush, and the VM's flush cost most
/// of the writer's CPU with one record a request (64 connections).
const BUSY_GROUP: usize = 8;
const GATHER: std::time::Duration = std::time::Duration::from_micros(250);

pub(super) fn writer_loop(queue: std::sync::Weak<LocalQueue>, rx: std_mpsc::Receiver<WriteReq>, mut next_seq: u64) {
    let mut segment: Option<Segment> = None;
    let mut busy = false;
    while let Ok(first) = rx.recv() {
        if busy {
            std::thread::sleep(GATHER);
        }
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
            if group.len() >= 4096 {
                break;
            }
        }
        busy = group.len() >= BUSY_GROUP;
        let Some(q) = queue.upgrade() else { return };
        let first_seq = next_seq;
        let result = write_group(&q, &mut segment, &group, first_seq);
        match result {
            Ok(locs) => {
                next_seq += group.len() as u64;
                {
                    let mut st = q.state.lock();
                    st.published = next_seq;
                    for (i, (req, loc)) in group.iter().zip(locs).enumerate() {
                        let seq = first_seq + i as u64;
                        let size = req.entry.encoded_len() as u64;
                        st.bytes += size;
                        let resident = st.resident + size <= st.budget;
                        if resident {
                            st.resident += size;
                        }
                        let entry = resident.then(|| req.entry.clone());
                        let tenant = st.tenant(&req.entry.tenant);
                        st.lanes.entry(tenant.clone()).or_default().push_back(seq);
                        let slot = Slot {
                            tenant,
                            size,
                            loc,
                            entry,
                            redelivered: false,
                        };
                        st.pending.insert(seq, slot);
                    }
                    st.version += 1;
                }
                q.notify.notify_waiters();
                for req in group {
                    let _ = req.done.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "queue write failed");
                // write_group cut the segment back (or left it, torn, to
                // recovery) and closed it. The group's sequence numbers are
                // not used again: the next segment gets a name of its own,
                // so nothing acknowledged is ever appended behind bytes
                // recovery would stop at.
                next_seq += group.len() as u64;
                q.state.lock().published = next_seq;
                for req in group {
                    q.reserved.fetch_sub(req.entry.encoded_len() as u64, Ordering::Relaxed);
                    let _ = req.done.send(Err(io(std::io::Error::new(e.kind(), e.to_string()))));
                }
            }
        }
    }
}

fn write_group(
    q: &LocalQueue,
    segment: &mut Option<Segment>,
    group: &[WriteReq],
    first_seq: u64,
) -> std::io::Result<Vec<Loc>> {
    if segment.as_ref().is_none_or(|s| s.size >= q.segment_bytes) {
        let (seg, path) = open_segment(&q.dir, first_seq)?;
        q.state.lock().segments.push((first_seq, path));
        *segment = Some(seg);
    }
    let Some(seg) = segment.as_mut() else {
        return Err(std::io::Error::other("no segment"));
    };
    let start = seg.size;
    let payloads: Vec<&[u8]> = group.iter().map(|req| req.frame_payload.as_slice()).collect();
    let written = append_group(seg, &payloads, first_seq);
    if written.is_err()
        && let Some(seg) = segment.take()
    {
        // A full disk takes part of a group: cut the segment back to where
        // the group began, without flushing what is still buffered.
        let (file, _unwritten) = seg.file.into_parts();
        if let Err(e) = file.set_len(start).and_then(|()| file.sync_data()) {
            tracing::error!(error = %e, "could not cut a failed queue write back; recovery will");
        }
    }
    written
}
