//! What this consumer holds: the entries it took, by token, and those
//! handed back (or claimed) to deliver again first, per tenant.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use parking_lot::Mutex;
use redis::streams::StreamId;
use tokio::sync::Notify;

use super::RedisQueue;
use crate::queue::{Delivery, QueueEntry};

/// What the signal reader task shares with the queue.
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) notify: Notify,
}

impl Shared {
    pub(super) fn changed(&self) {
        self.state.lock().version += 1;
        self.notify.notify_waiters();
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) next_token: u64,
    /// token → the entry taken and not acked.
    pub(super) taken: HashMap<u64, Taken>,
    /// Per tenant: entries handed back (`nack`, `release`) or claimed from
    /// a silent consumer, to deliver again first. They stay pending on this
    /// consumer meanwhile.
    pub(super) handed_back: HashMap<String, VecDeque<(String, bool)>>,
    pub(super) last_claim: Option<Instant>,
    pub(super) version: u64,
}

pub(super) struct Taken {
    pub(super) tenant: String,
    pub(super) id: String,
    pub(super) size: u64,
    pub(super) redelivered: bool,
}

impl RedisQueue {
    pub(super) fn deliveries(
        &self,
        tenant: &str,
        ids: Vec<StreamId>,
        redelivered: impl Fn(&str) -> bool,
    ) -> Vec<Delivery> {
        let mut state = self.shared.state.lock();
        let mut out = Vec::with_capacity(ids.len());
        for sid in ids {
            let Some(bytes) = sid.get::<Vec<u8>>("e") else {
                // Not ours (or trimmed): nothing to process.
                tracing::warn!(id = %sid.id, "stream entry without a payload; skipped");
                continue;
            };
            match QueueEntry::decode(&bytes) {
                Ok(entry) => {
                    state.next_token += 1;
                    let token = state.next_token;
                    let again = redelivered(&sid.id);
                    state.taken.insert(
                        token,
                        Taken {
                            tenant: tenant.to_string(),
                            id: sid.id,
                            size: bytes.len() as u64,
                            redelivered: again,
                        },
                    );
                    out.push(Delivery {
                        token,
                        entry,
                        redelivered: again,
                    });
                }
                Err(e) => tracing::error!(id = %sid.id, error = %e, "corrupt stream entry; left pending"),
            }
        }
        out
    }

    /// Still pending on this consumer: delivered again by the next take of
    /// their lane, or claimed by another consumer if this one dies.
    pub(super) fn hand_back(&self, tokens: &[u64], redelivered: bool) {
        {
            let mut state = self.shared.state.lock();
            let mut back: Vec<Taken> = tokens.iter().filter_map(|t| state.taken.remove(t)).collect();
            // Stream ids sort by time: hand back oldest first.
            back.sort_by(|a, b| stream_order(&a.id, &b.id));
            for t in back.into_iter().rev() {
                let lane = state.handed_back.entry(t.tenant).or_default();
                lane.push_front((t.id, redelivered || t.redelivered));
            }
        }
        self.shared.changed();
    }
}

/// Orders stream ids (`ms-seq`) numerically.
fn stream_order(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        (ms.parse::<u64>().unwrap_or(0), seq.parse::<u64>().unwrap_or(0))
    };
    parse(a).cmp(&parse(b))
}
