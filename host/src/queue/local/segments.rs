//! Segment files: frames (`len:u32 crc32:u32 seq:u64 payload`) appended,
//! an entry read back from its frame, a segment recovered on open.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::LocalQueue;
use super::lanes::{Loc, Slot, State};
use crate::error::BackendError;
use crate::queue::{QueueEntry, io};

const FRAME_HEADER: usize = 16;

impl LocalQueue {
    pub(super) fn read_entry(loc: &Loc) -> Result<QueueEntry, BackendError> {
        use std::io::{Seek, SeekFrom};
        let mut f = File::open(loc.path.as_ref()).map_err(io)?;
        f.seek(SeekFrom::Start(loc.offset)).map_err(io)?;
        let mut buf = vec![0u8; loc.len];
        f.read_exact(&mut buf).map_err(io)?;
        QueueEntry::decode(&buf)
    }
}

/// Loads the frames of one segment at or past `watermark`; truncates a torn
/// tail. Returns the last sequence number seen.
pub(super) fn recover_segment(path: &Path, watermark: u64, state: &mut State) -> Result<Option<u64>, BackendError> {
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

pub(super) struct Segment {
    pub(super) file: BufWriter<File>,
    pub(super) size: u64,
    pub(super) path: Arc<PathBuf>,
}

pub(super) fn open_segment(dir: &Path, first_seq: u64) -> std::io::Result<(Segment, PathBuf)> {
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

/// Appends one frame per payload, numbered from `first_seq`, and syncs
/// once.
pub(super) fn append_group(seg: &mut Segment, payloads: &[&[u8]], first_seq: u64) -> std::io::Result<Vec<Loc>> {
    let mut locs = Vec::with_capacity(payloads.len());
    for (i, payload) in payloads.iter().enumerate() {
        let seq = (first_seq + i as u64).to_le_bytes();
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&seq);
        hasher.update(payload);
        let len = u32::try_from(payload.len()).map_err(std::io::Error::other)?;
        seg.file.write_all(&len.to_le_bytes())?;
        seg.file.write_all(&hasher.finalize().to_le_bytes())?;
        seg.file.write_all(&seq)?;
        seg.file.write_all(payload)?;
        locs.push(Loc {
            path: seg.path.clone(),
            offset: seg.size + FRAME_HEADER as u64,
            len: payload.len(),
        });
        seg.size += (FRAME_HEADER + payload.len()) as u64;
    }
    seg.file.flush()?;
    seg.file.get_ref().sync_data()?;
    Ok(locs)
}
