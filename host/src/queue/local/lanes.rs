//! The in-memory index of what waits: a slot per unacked entry (in
//! memory while the budget allows), a lane of sequence numbers per tenant.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use crate::queue::QueueEntry;

/// Where an entry's payload sits on disk (`segments` writes and reads it).
#[derive(Clone)]
pub(super) struct Loc {
    pub(super) path: Arc<PathBuf>,
    pub(super) offset: u64,
    pub(super) len: usize,
}

/// A taken entry: token, redelivered, and the entry or where to read it.
pub(super) type Taken = (u64, bool, Result<QueueEntry, Loc>);

/// An unacked entry: on disk always, in memory while the budget allows.
pub(super) struct Slot {
    pub(super) tenant: Arc<str>,
    pub(super) size: u64,
    pub(super) loc: Loc,
    pub(super) entry: Option<QueueEntry>,
    /// Taken before (recovered at open, or nacked).
    pub(super) redelivered: bool,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) pending: BTreeMap<u64, Slot>,
    /// Bytes of entries held in memory, and the most it may be.
    pub(super) resident: u64,
    pub(super) budget: u64,
    /// Sequence numbers waiting to be taken, per tenant, in order.
    pub(super) lanes: HashMap<Arc<str>, VecDeque<u64>>,
    /// When each lane was last taken from: a lane taken lately is being
    /// worked through, not waiting (`carry_forward`).
    pub(super) taken_at: HashMap<Arc<str>, std::time::Instant>,
    pub(super) in_flight: HashSet<u64>,
    /// Raised whenever an entry becomes ready, for `wait`.
    pub(super) version: u64,
    /// (first seq, path) of every segment on disk, oldest first.
    pub(super) segments: Vec<(u64, PathBuf)>,
    pub(super) watermark: u64,
    /// One past the last durable sequence number.
    pub(super) published: u64,
    pub(super) bytes: u64,
}

impl State {
    /// The lane's shared name, so a deep backlog holds one copy of it.
    pub(super) fn tenant(&self, tenant: &str) -> Arc<str> {
        match self.lanes.get_key_value(tenant) {
            Some((name, _)) => name.clone(),
            None => Arc::from(tenant),
        }
    }

    /// Puts taken entries back into their lanes, in order.
    pub(super) fn hand_back(&mut self, tokens: &[u64], redelivered: bool) {
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
