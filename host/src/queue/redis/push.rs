//! Pushes that arrive together go to Redis in one script call, as the
//! local queue's writer shares one flush between them.
//!
//! One push a call cost Redis about 50 µs of CPU (the script's seven
//! commands, its call and its reply): at one record a request, Redis took
//! more of the machine than the server. A gatherer task takes what the
//! handlers queued, calls the script once for all of it while further
//! pushes queue behind, and answers each handler, so a busy intake makes
//! bigger calls and an idle one waits for nothing.

use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::{GROUP, err};
use crate::error::BackendError;

/// Entries of one call at most: the script runs alone in Redis, and a call
/// of this many ~3 KB entries is about a millisecond there.
const MAX_ENTRIES: usize = 256;

/// Payload bytes past which no more entries join a call (Redis buffers a
/// whole call; one entry larger than this still goes, alone).
const MAX_BYTES: usize = 4 << 20;

/// Pushes waiting for the gatherer at most: past it a handler waits to
/// queue its push (ingest's own bounds keep this far away).
const WAITING: usize = 4_096;

/// What the script made of one entry: added, or refused because the queue
/// held this many bytes.
pub(super) type Pushed = Result<(), u64>;

struct Pending {
    lane: String,
    tenant: String,
    payload: Vec<u8>,
    reply: oneshot::Sender<Result<Pushed, BackendError>>,
}

/// The handlers' side of the gatherer.
pub(super) struct Pusher {
    tx: mpsc::Sender<Pending>,
}

/// The keys and bound every call names.
pub(super) struct Target {
    pub(super) conn: ConnectionManager,
    pub(super) script: Script,
    pub(super) bytes: String,
    pub(super) ready: String,
    pub(super) lanes: String,
    pub(super) signal: String,
    pub(super) max_bytes: u64,
}

impl Pusher {
    /// Starts the gatherer; it ends when the pusher is dropped.
    pub(super) fn start(target: Target) -> Pusher {
        let (tx, rx) = mpsc::channel(WAITING);
        tokio::spawn(gather(target, rx));
        Pusher { tx }
    }

    pub(super) async fn push(&self, lane: String, tenant: String, payload: Vec<u8>) -> Result<Pushed, BackendError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            lane,
            tenant,
            payload,
            reply,
        };
        self.tx.send(pending).await.map_err(|_| crate::queue::closed())?;
        answer.await.map_err(|_| crate::queue::closed())?
    }
}

async fn gather(mut target: Target, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut bytes = first.payload.len();
        let mut group = vec![first];
        while group.len() < MAX_ENTRIES && bytes < MAX_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.payload.len();
                    group.push(p);
                }
                Err(_) => break,
            }
        }
        match call(&mut target, &group).await {
            Ok((held, added)) => {
                for (p, added) in group.into_iter().zip(added) {
                    let _ = p.reply.send(Ok(if added == 1 { Ok(()) } else { Err(held) }));
                }
            }
            Err(e) => {
                for p in group {
                    let each = BackendError::new(e.backend, e.kind, e.source_message());
                    let _ = p.reply.send(Err(each));
                }
            }
        }
    }
}

/// One script call for `group`: the bytes held after it, and 1 or 0 for
/// each entry.
async fn call(target: &mut Target, group: &[Pending]) -> Result<(u64, Vec<i64>), BackendError> {
    let mut invocation = target.script.prepare_invoke();
    invocation
        .key(&target.bytes)
        .key(&target.ready)
        .key(&target.lanes)
        .key(&target.signal)
        .arg(target.max_bytes)
        .arg(GROUP);
    for p in group {
        invocation
            .key(&p.lane)
            .arg(&p.tenant)
            .arg(p.payload.len())
            .arg(&p.payload);
    }
    let reply: Vec<i64> = invocation.invoke_async(&mut target.conn).await.map_err(err)?;
    let Some((&held, added)) = reply.split_first() else {
        return Err(crate::queue::corrupt("the push script answered nothing"));
    };
    if added.len() != group.len() {
        return Err(crate::queue::corrupt(format!(
            "the push script answered {} entries for {}",
            added.len(),
            group.len()
        )));
    }
    Ok((u64::try_from(held).unwrap_or(0), added.to_vec()))
}
