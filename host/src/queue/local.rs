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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};

use super::{Delivery, Depth, Lane, Lanes, Queue, QueueEntry, closed, corrupt, full, io};
use crate::error::BackendError;

/// A new segment starts past this size, so acked data is deleted in pieces.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const FRAME_HEADER: usize = 16;
/// A lane taken from within this long is being worked through: its
/// entries are not carried forward, however long they wait.
const CARRY_IDLE: Duration = Duration::from_secs(10);
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

struct WriteReq {
    entry: QueueEntry,
    frame_payload: Vec<u8>,
    done: oneshot::Sender<Result<(), BackendError>>,
}

/// A taken entry: token, redelivered, and the entry or where to read it.
type Taken = (u64, bool, Result<QueueEntry, Loc>);

/// Where an entry's payload sits on disk.
#[derive(Clone)]
struct Loc {
    path: Arc<PathBuf>,
    offset: u64,
    len: usize,
}

/// An unacked entry: on disk always, in memory while the budget allows.
struct Slot {
    tenant: Arc<str>,
    size: u64,
    loc: Loc,
    entry: Option<QueueEntry>,
    /// Taken before (recovered at open, or nacked).
    redelivered: bool,
}

#[derive(Default)]
struct State {
    pending: BTreeMap<u64, Slot>,
    /// Bytes of entries held in memory, and the most it may be.
    resident: u64,
    budget: u64,
    /// Sequence numbers waiting to be taken, per tenant, in order.
    lanes: HashMap<Arc<str>, VecDeque<u64>>,
    /// When each lane was last taken from: a lane taken lately is being
    /// worked through, not waiting (`carry_forward`).
    taken_at: HashMap<Arc<str>, std::time::Instant>,
    in_flight: HashSet<u64>,
    /// Raised whenever an entry becomes ready, for `wait`.
    version: u64,
    /// (first seq, path) of every segment on disk, oldest first.
    segments: Vec<(u64, PathBuf)>,
    watermark: u64,
    /// One past the last durable sequence number.
    published: u64,
    bytes: u64,
}

impl State {
    /// The lane's shared name, so a deep backlog holds one copy of it.
    fn tenant(&self, tenant: &str) -> Arc<str> {
        match self.lanes.get_key_value(tenant) {
            Some((name, _)) => name.clone(),
            None => Arc::from(tenant),
        }
    }

    /// Puts taken entries back into their lanes, in order.
    fn hand_back(&mut self, tokens: &[u64], redelivered: bool) {
        for t in tokens {
            if !self.in_flight.remove(t) {
                continue;
            }
            let Some(slot) = self.pending.get_mut(t) else { continue };
            slot.redelivered |= redelivered;
            let lane = self.lanes.entry(slot.tenant.clone()).or_default();
            let at = lane.partition_point(|s| s < t);
            lane.insert(at, *t);
        }
        self.version += 1;
    }
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

    fn read_entry(loc: &Loc) -> Result<QueueEntry, BackendError> {
        use std::io::{Seek, SeekFrom};
        let mut f = File::open(loc.path.as_ref()).map_err(io)?;
        f.seek(SeekFrom::Start(loc.offset)).map_err(io)?;
        let mut buf = vec![0u8; loc.len];
        f.read_exact(&mut buf).map_err(io)?;
        QueueEntry::decode(&buf)
    }

    /// Appends `entry`; `limited`: refused when the queue is full (a
    /// carried entry replaces one already counted, and is not).
    async fn write(&self, entry: QueueEntry, limited: bool) -> Result<(), BackendError> {
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

    /// Moves the waiting entries of the oldest segment to the tail when
    /// that segment holds the watermark with two more behind it and is
    /// sparse (what still waits in it is at most an eighth of a segment):
    /// a lane that waits, not a backlog being worked through, which would
    /// only be written again and again. They leave their lanes while they
    /// move, so no worker takes them twice, and are written as one group
    /// (one sync); those not written go back to their lanes.
    async fn carry_forward(&self) -> Result<(), BackendError> {
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

    /// Forgets acked entries and moves the watermark past them.
    fn settle(&self, tokens: &[u64]) -> Result<(), BackendError> {
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

    fn gc_segments(&self) {
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

fn read_watermark(dir: &Path) -> Result<u64, BackendError> {
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

/// Loads the frames of one segment at or past `watermark`; truncates a torn
/// tail. Returns the last sequence number seen.
fn recover_segment(path: &Path, watermark: u64, state: &mut State) -> Result<Option<u64>, BackendError> {
    let mut buf = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut buf)).map_err(io)?;
    let shared_path = Arc::new(path.to_path_buf());
    let mut pos = 0usize;
    let mut last = None;
    while pos + FRAME_HEADER <= buf.len() {
        let h = &buf[pos..pos + FRAME_HEADER];
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let end = pos + FRAME_HEADER + len;
        if end > buf.len() {
            break;
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&h[8..16]);
        hasher.update(&buf[pos + FRAME_HEADER..end]);
        if hasher.finalize() != crc {
            break;
        }
        let mut s = [0u8; 8];
        s.copy_from_slice(&h[8..16]);
        let seq = u64::from_le_bytes(s);
        if seq >= watermark {
            let entry = QueueEntry::decode(&buf[pos + FRAME_HEADER..end])?;
            let size = entry.encoded_len() as u64;
            let resident = state.resident + size <= state.budget;
            if resident {
                state.resident += size;
            }
            let loc = Loc {
                path: shared_path.clone(),
                offset: (pos + FRAME_HEADER) as u64,
                len,
            };
            let tenant = state.tenant(&entry.tenant);
            state.pending.insert(
                seq,
                Slot {
                    tenant,
                    size,
                    loc,
                    entry: resident.then_some(entry),
                    redelivered: true,
                },
            );
        }
        last = Some(seq);
        pos = end;
    }
    if pos < buf.len() {
        tracing::warn!(path = %path.display(), at = pos, dropped = buf.len() - pos, "truncating torn queue segment tail");
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(pos as u64))
            .map_err(io)?;
    }
    Ok(last)
}

struct Segment {
    file: BufWriter<File>,
    size: u64,
    path: Arc<PathBuf>,
}

fn open_segment(dir: &Path, first_seq: u64) -> std::io::Result<(Segment, PathBuf)> {
    let path = dir.join(format!("segment-{first_seq:020}.log"));
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    let size = file.metadata()?.len();
    // Make the new file's directory entry durable too.
    File::open(dir)?.sync_all()?;
    Ok((
        Segment {
            file: BufWriter::with_capacity(1 << 20, file),
            size,
            path: Arc::new(path.clone()),
        },
        path,
    ))
}

fn writer_loop(queue: std::sync::Weak<LocalQueue>, rx: std_mpsc::Receiver<WriteReq>, mut next_seq: u64) {
    let mut segment: Option<Segment> = None;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
            if group.len() >= 4096 {
                break;
            }
        }
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
    let written = append_group(seg, group, first_seq);
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

fn append_group(seg: &mut Segment, group: &[WriteReq], first_seq: u64) -> std::io::Result<Vec<Loc>> {
    let mut locs = Vec::with_capacity(group.len());
    for (i, req) in group.iter().enumerate() {
        let seq = (first_seq + i as u64).to_le_bytes();
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&seq);
        hasher.update(&req.frame_payload);
        let len = u32::try_from(req.frame_payload.len()).map_err(std::io::Error::other)?;
        seg.file.write_all(&len.to_le_bytes())?;
        seg.file.write_all(&hasher.finalize().to_le_bytes())?;
        seg.file.write_all(&seq)?;
        seg.file.write_all(&req.frame_payload)?;
        locs.push(Loc {
            path: seg.path.clone(),
            offset: seg.size + FRAME_HEADER as u64,
            len: req.frame_payload.len(),
        });
        seg.size += (FRAME_HEADER + req.frame_payload.len()) as u64;
    }
    seg.file.flush()?;
    seg.file.get_ref().sync_data()?;
    Ok(locs)
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(i: usize) -> QueueEntry {
        QueueEntry {
            tenant: "acme".into(),
            batch_id: ulid::Ulid::new(),
            received_at: i as i64,
            content_type: "application/json".into(),
            service: None,
            idempotent: false,
            body: Bytes::from(format!("{{\"message\":\"{i}\"}}")),
        }
    }

    #[tokio::test]
    async fn unacked_entries_survive_reopen_and_acked_ones_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let q = LocalQueue::open(dir.path(), 1 << 30).expect("open");
            for i in 0..10 {
                q.push(entry(i)).await.expect("push");
            }
            let got = q.take(4, Duration::from_millis(10)).await.expect("take");
            assert_eq!(got.len(), 4);
            assert!(got.iter().all(|d| !d.redelivered));
            q.ack(&[got[0].token, got[1].token]).await.expect("ack");
            // got[2], got[3] taken but never acked: redelivered after reopen.
            q.close();
        }
        let q = LocalQueue::open(dir.path(), 1 << 30).expect("reopen");
        assert_eq!(q.depth().entries, 8);
        let got = q.take(100, Duration::from_millis(10)).await.expect("take");
        let seen: Vec<i64> = got.iter().map(|d| d.entry.received_at).collect();
        assert_eq!(seen, (2..10).collect::<Vec<_>>());
        // After a restart any entry may have been processed already.
        assert!(got.iter().all(|d| d.redelivered));
        q.ack(&got.iter().map(|d| d.token).collect::<Vec<_>>())
            .await
            .expect("ack");
        assert_eq!(q.depth(), Depth::default());
        q.push(entry(10)).await.expect("push after ack");
        q.close();
        drop(q);
        let q = LocalQueue::open(dir.path(), 1 << 30).expect("reopen again");
        let got = q.take(100, Duration::from_millis(10)).await.expect("take");
        assert_eq!(got.iter().map(|d| d.entry.received_at).collect::<Vec<_>>(), vec![10]);
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let q = LocalQueue::open(dir.path(), 1 << 30).expect("open");
            for i in 0..3 {
                q.push(entry(i)).await.expect("push");
            }
            q.close();
        }
        let seg = fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with("segment-"))
            .expect("segment");
        let len = seg.metadata().expect("meta").len();
        OpenOptions::new()
            .write(true)
            .open(seg.path())
            .expect("open")
            .set_len(len - 3)
            .expect("truncate");
        let q = LocalQueue::open(dir.path(), 1 << 30).expect("reopen");
        assert_eq!(q.depth().entries, 2);
    }

    #[tokio::test]
    async fn entries_past_the_memory_budget_are_read_back_from_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = entry(0).encoded_len() as u64;
        let q = LocalQueue::open_with_budget(dir.path(), 1 << 30, one * 3).expect("open");
        for i in 0..10 {
            q.push(entry(i)).await.expect("push");
        }
        assert_eq!(q.state.lock().resident, one * 3);
        let got = q.take(100, Duration::from_millis(10)).await.expect("take");
        let seen: Vec<i64> = got.iter().map(|d| d.entry.received_at).collect();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(got[9].entry.body, entry(9).body);
        q.ack(&got.iter().map(|d| d.token).collect::<Vec<_>>())
            .await
            .expect("ack");
        assert_eq!(q.state.lock().resident, 0);
        assert_eq!(q.depth(), Depth::default());
    }

    /// A lane that waits does not keep everyone's acked segments on disk,
    /// nor have them all handed back after a restart: its entries are
    /// carried to the tail, idempotent, in order.
    #[tokio::test]
    async fn a_waiting_lane_does_not_pin_the_segments_behind_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segments = |dir: &Path| {
            fs::read_dir(dir)
                .expect("ls")
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("segment-"))
                .count()
        };
        {
            let q = LocalQueue::open_with(dir.path(), 1 << 30, 1 << 20, 2048).expect("open");
            for i in 0..2 {
                let mut held = entry(i);
                held.tenant = "held".into();
                q.push(held).await.expect("push");
            }
            // Another tenant's traffic, each entry taken and acked.
            for i in 0..200 {
                let mut busy = entry(100 + i);
                busy.tenant = "busy".into();
                q.push(busy).await.expect("push");
                let got = q.take_lane("busy", 10, 1 << 20).await.expect("take");
                q.ack(&got.iter().map(|d| d.token).collect::<Vec<_>>())
                    .await
                    .expect("ack");
            }
            assert!(segments(dir.path()) <= 3, "{} segments kept", segments(dir.path()));
            assert_eq!(q.depth().entries, 2);
            q.close();
        }
        let q = LocalQueue::open(dir.path(), 1 << 30).expect("reopen");
        let got = q.take(100, Duration::from_millis(10)).await.expect("take");
        let seen: Vec<(String, i64, bool)> = got
            .iter()
            .map(|d| (d.entry.tenant.clone(), d.entry.received_at, d.entry.idempotent))
            .collect();
        assert_eq!(seen[..2], [("held".into(), 0, true), ("held".into(), 1, true)]);
        // What a restart hands back of the others' acked entries is at
        // most what the last two segments hold (about thirty entries of 70
        // bytes to a segment of 2 KiB), not all 200.
        let again = seen.iter().filter(|(t, _, _)| t == "busy").count();
        assert!(again <= 60, "{again} acked entries handed back");
    }

    /// A lane taken from lately is being worked through: even sparse, its
    /// entries stay where they are.
    #[tokio::test]
    async fn a_lane_being_worked_is_not_carried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = LocalQueue::open_with(dir.path(), 1 << 30, 1 << 20, 2048).expect("open");
        let mut next = entry(0);
        next.tenant = "worked".into();
        q.push(next).await.expect("push");
        assert!(q.take_lane("worked", 0, 1 << 20).await.expect("take").is_empty());
        for i in 0..200 {
            let mut busy = entry(100 + i);
            busy.tenant = "busy".into();
            q.push(busy).await.expect("push");
            let got = q.take_lane("busy", 10, 1 << 20).await.expect("take");
            q.ack(&got.iter().map(|d| d.token).collect::<Vec<_>>())
                .await
                .expect("ack");
        }
        assert_eq!(q.carried.load(Ordering::Relaxed), 0);
    }

    /// A backlog being worked through is not a waiting lane: segments full
    /// of waiting entries are never written again, however many pile up.
    #[tokio::test]
    async fn a_backlog_is_not_carried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = LocalQueue::open_with(dir.path(), 1 << 30, 1 << 20, 1024).expect("open");
        for i in 0..100 {
            let mut waiting = entry(i);
            waiting.tenant = if i % 2 == 0 { "slow" } else { "fast" }.into();
            q.push(waiting).await.expect("push");
        }
        // The fast tenant's half is worked through; the slow one's waits,
        // half of every segment.
        let got = q.take_lane("fast", 100, 1 << 20).await.expect("take");
        q.ack(&got.iter().map(|d| d.token).collect::<Vec<_>>())
            .await
            .expect("ack");
        assert_eq!(q.carried.load(Ordering::Relaxed), 0);
        assert_eq!(q.depth().entries, 50);
    }

    #[tokio::test]
    async fn full_queue_refuses_and_nack_redelivers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = entry(0).encoded_len() as u64;
        let q = LocalQueue::open(dir.path(), one * 2).expect("open");
        q.push(entry(0)).await.expect("push");
        q.push(entry(1)).await.expect("push");
        assert!(matches!(q.push(entry(2)).await, Err(e) if e.kind == crate::error::ErrorKind::Full));
        let got = q.take(1, Duration::from_millis(10)).await.expect("take");
        q.nack(&[got[0].token]).await.expect("nack");
        let again = q.take(1, Duration::from_millis(10)).await.expect("take");
        assert_eq!(again[0].token, got[0].token);
        assert!(!got[0].redelivered && again[0].redelivered);
        q.ack(&[again[0].token]).await.expect("ack");
        q.push(entry(3)).await.expect("room again");
    }
}
