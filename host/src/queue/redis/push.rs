//! Pushes that arrive together go to Redis in one script call, as the
//! local queue's writer shares one flush between them. Only small entries
//! are gathered: a call's cost is per call, and a large entry (a shipper's
//! batch of a thousand records) goes straight to Redis in a call of its
//! own, pipelined with the others on the connection, as before gathering.
//!
//! One push a call cost Redis a Lua call, seven commands and a reply per
//! request. A gatherer task takes what the handlers queued, calls the
//! script once for all of it while further pushes queue behind, and
//! answers each handler, so a busy intake makes bigger calls and an idle
//! one waits for nothing. The gatherer is the one way to Redis for every
//! tenant's pushes, so nothing in it may wait without a bound: a call has
//! a deadline, a failed call fails what waits with it (they would wait out
//! the same reconnect), and a full channel is a 503, not a wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::{GROUP, err};
use crate::error::{Backend, BackendError, ErrorKind};

/// Entries of one call at most: the script runs alone in Redis, and a call
/// of this many ~3 KB entries is about a millisecond there.
const MAX_ENTRIES: usize = 256;

/// Entries larger than this are not gathered: their call's cost is their
/// bytes, and gathering them would queue them one at a time behind the
/// gatherer instead of side by side on the connection.
const GATHERED_MAX_BYTES: usize = 16 << 10;

/// Payload bytes of one call at most; an entry larger than this goes in a
/// call of its own. Small: grouping pays for small entries (a call's cost
/// is per call), and Redis runs one call at a time, so a call of many
/// large entries would hold up the processors' takes and acks behind it
/// (with 4 MiB calls, a flood of 300 KB entries saw the timing test's
/// healthy tenant at 2.6 s p99 in one CI run, against its 2 s bound).
const MAX_BYTES: usize = 256 << 10;

/// Pushes waiting for the gatherer at most: past it ingest answers 503,
/// as for a full queue (Redis is that far behind).
const WAITING: usize = 4_096;

/// How long one call may take before its pushes are answered 503: a
/// call with `appendfsync always` takes milliseconds; a Redis that
/// does not answer for this long is down for the intake.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the script made of one entry: added, or refused because the queue
/// held this many bytes.
pub(super) type Pushed = Result<(), u64>;

type Reply = oneshot::Sender<Result<Pushed, BackendError>>;

/// One entry for the script: its lane, tenant and bytes.
struct Entry {
    lane: String,
    tenant: String,
    payload: Vec<u8>,
}

/// A gathered entry and the handler waiting for it.
struct Pending {
    entry: Entry,
    reply: Reply,
}

/// The handlers' side of the gatherer.
pub(super) struct Pusher {
    tx: mpsc::Sender<Pending>,
    calls: Arc<AtomicU64>,
    /// For the entries that are not gathered.
    direct: Target,
}

/// The keys and bound every call names.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) conn: ConnectionManager,
    pub(super) script: Script,
    pub(super) bytes: String,
    pub(super) ready: String,
    pub(super) lanes: String,
    pub(super) signal: String,
    pub(super) max_bytes: u64,
}

fn gone() -> BackendError {
    BackendError::unavailable(Backend::Queue, "the queue's push task has ended")
}

impl Pusher {
    /// Starts the gatherer; it ends when the pusher is dropped.
    pub(super) fn start(target: Target) -> Pusher {
        let (tx, rx) = mpsc::channel(WAITING);
        let calls = Arc::new(AtomicU64::new(0));
        let direct = target.clone();
        tokio::spawn(gather(target, rx, calls.clone()));
        Pusher { tx, calls, direct }
    }

    pub(super) async fn push(&self, lane: String, tenant: String, payload: Vec<u8>) -> Result<Pushed, BackendError> {
        let entry = Entry { lane, tenant, payload };
        if entry.payload.len() > GATHERED_MAX_BYTES {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mut target = self.direct.clone();
            let (held, mut each) = timed(call(&mut target, &[&entry])).await?;
            return match each.pop() {
                Some(one) => pushed(held, one),
                None => Err(crate::queue::corrupt("the push script answered nothing")),
            };
        }
        let (reply, answer) = oneshot::channel();
        let pending = Pending { entry, reply };
        self.tx.try_send(pending).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => BackendError::new(
                Backend::Queue,
                ErrorKind::Full,
                format!("{WAITING} pushes are waiting for Redis already"),
            ),
            mpsc::error::TrySendError::Closed(_) => gone(),
        })?;
        answer.await.map_err(|_| gone())?
    }

    /// Whether the gatherer still runs (a readiness check).
    pub(super) fn running(&self) -> Result<(), BackendError> {
        if self.tx.is_closed() { Err(gone()) } else { Ok(()) }
    }

    /// Script calls made for pushes so far.
    pub(super) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

async fn gather(mut target: Target, mut rx: mpsc::Receiver<Pending>, calls: Arc<AtomicU64>) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = first.entry.payload.len();
        let mut group = vec![first];
        while group.len() < MAX_ENTRIES {
            let Ok(p) = rx.try_recv() else { break };
            // A handler that gave up (its client hung up) gets no entry:
            // it would be stored without being counted as accepted.
            if p.reply.is_closed() {
                continue;
            }
            if bytes + p.entry.payload.len() > MAX_BYTES {
                carried = Some(p);
                break;
            }
            bytes += p.entry.payload.len();
            group.push(p);
        }
        group.retain(|p| !p.reply.is_closed());
        if group.is_empty() {
            continue;
        }
        calls.fetch_add(1, Ordering::Relaxed);
        let entries: Vec<&Entry> = group.iter().map(|p| &p.entry).collect();
        match timed(call(&mut target, &entries)).await {
            Ok((held, each)) => {
                for (p, one) in group.into_iter().zip(each) {
                    let _ = p.reply.send(pushed(held, one));
                }
            }
            Err(e) => {
                // What waits behind a failed call would wait out the same
                // reconnect: it fails now, and its handlers answer 503.
                let waiting = std::iter::from_fn(|| rx.try_recv().ok());
                for p in group.into_iter().chain(carried.take()).chain(waiting) {
                    let _ = p
                        .reply
                        .send(Err(BackendError::new(e.backend, e.kind, e.source_message())));
                }
            }
        }
    }
}

/// One entry's answer from a call that held `held` bytes after it.
fn pushed(held: u64, one: Result<bool, BackendError>) -> Result<Pushed, BackendError> {
    one.map(|added| if added { Ok(()) } else { Err(held) })
}

/// `call` within [`CALL_TIMEOUT`].
async fn timed<T>(call: impl std::future::Future<Output = Result<T, BackendError>>) -> Result<T, BackendError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(outcome) => outcome,
        Err(_) => Err(BackendError::unavailable(
            Backend::Queue,
            format!("Redis did not answer a push within {CALL_TIMEOUT:?}"),
        )),
    }
}

/// One script call for `group`: the bytes held after it, and for each
/// entry whether it was added, or Redis's refusal of it.
async fn call(target: &mut Target, group: &[&Entry]) -> Result<(u64, Vec<Result<bool, BackendError>>), BackendError> {
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
    let reply: Vec<redis::Value> = invocation.invoke_async(&mut target.conn).await.map_err(err)?;
    let Some((held, each)) = reply.split_first() else {
        return Err(crate::queue::corrupt("the push script answered nothing"));
    };
    if each.len() != group.len() {
        return Err(crate::queue::corrupt(format!(
            "the push script answered {} entries for {}",
            each.len(),
            group.len()
        )));
    }
    let held = redis::from_redis_value::<u64>(held.clone()).unwrap_or(target.max_bytes);
    let each = each
        .iter()
        .map(|v| match redis::from_redis_value::<i64>(v.clone()) {
            Ok(1) => Ok(true),
            Ok(_) => Ok(false),
            Err(_) => Err(BackendError::corrupt(
                Backend::Queue,
                format!(
                    "Redis refused the entry: {}",
                    redis::from_redis_value::<String>(v.clone()).unwrap_or_default()
                ),
            )),
        })
        .collect();
    Ok((held, each))
}
