//! The distributed queue: Redis 7 streams read through consumer groups
//! (DESIGN §1), one stream per tenant (`<name>:lane:<tenant>`), so a
//! processor takes the tenant its scheduler chose and one tenant's backlog
//! never stands in front of another's entries. Every processor is a
//! consumer of the group `processors` on each lane; an entry is acked
//! (`XACK` + `XDEL`) only after all sinks committed, and the pending entries
//! of a consumer that died are claimed by the others once they have been
//! idle for `claim_idle` (`XAUTOCLAIM`). Beside the lanes:
//! - `<name>:ready`, a hash of how many entries of each tenant no consumer
//!   has read yet (what `lanes` answers), and `<name>:taken`, of how many
//!   are read and not acked (which lanes to look at for stale entries);
//! - `<name>:lanes`, the set of every lane, and `<name>:bytes`, the bytes
//!   held, checked and raised by the push script, so ingest turns into
//!   503 + Retry-After when the queue is full;
//! - `<name>:signal`, a one-entry stream every push touches: each process
//!   blocks on it (one connection, `XREAD BLOCK`) to wake its scheduler.
//!
//! Each step that reads and counts is one Lua script, so the counts never
//! drift from the streams; `take` heals a count that says more than the
//! lane has. A queue left by a version with one stream (`<name>:stream`) is
//! moved into the lanes when it is opened.
//!
//! Durability is Redis's: run it with `appendonly yes` and `appendfsync
//! always` for 202 to mean "on disk" (infra/ does).
//!
//! One concept a file: `scripts` (the Lua, from the `.lua` files beside
//! it), `push` (pushes that arrive together, in one call), `consumer` (what this consumer took and handed back), `claim`
//! (a silent consumer's entries), `signal` (the reader that wakes `wait`)
//! and `migrate` (a one-stream queue moved into lanes).

mod claim;
mod consumer;
mod migrate;
mod push;
mod scripts;
mod signal;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamRangeReply;
use redis::{AsyncCommands, Script};
use tokio::sync::Notify;

use self::consumer::{Shared, State, Taken};
use self::scripts::{ACK, MIGRATE, PUSH, Scripts, TAKE};
use super::{Delivery, Depth, Lane, Lanes, Queue, QueueEntry, full};
use crate::error::{Backend, BackendError, ErrorKind};

const GROUP: &str = "processors";

/// How long a call on the data connection may go unanswered: the largest
/// (a take or a push of 4 MiB with `appendfsync always`) take milliseconds.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RedisQueue {
    name: String,
    consumer: String,
    claim_idle: Duration,
    /// Pushes, takes and acks. Connection managers reconnect (with
    /// backoff) after Redis went away, so a restarted Redis is picked up
    /// again.
    conn: ConnectionManager,
    /// The signal reader's own connection: a blocked `XREAD` holds up
    /// every later reply on its connection.
    reader: ConnectionManager,
    scripts: Scripts,
    pusher: push::Pusher,
    shared: Arc<Shared>,
    signal_reader: Once,
    entries: AtomicU64,
    bytes: AtomicU64,
}

/// A Redis failure with its kind: out of memory is a full queue; a type or
/// parse error is data we cannot read; anything else (refused, dropped,
/// timed out, loading) is Redis being unavailable for now.
fn err(e: redis::RedisError) -> BackendError {
    let kind = match e.kind() {
        _ if e.code() == Some("OOM") => ErrorKind::Full,
        redis::ErrorKind::UnexpectedReturnType | redis::ErrorKind::Parse => ErrorKind::Corrupt,
        _ => ErrorKind::Unavailable,
    };
    BackendError::new(Backend::Queue, kind, e)
}

impl RedisQueue {
    /// Connects to `url` (`redis://host:port[/db]`). `name` prefixes the keys
    /// (`<name>:lane:<tenant>`, `<name>:bytes`, …), so several deployments
    /// or tests can share a server; `claim_idle` is how long an entry stays
    /// with a silent consumer before another takes it.
    pub async fn open(url: &str, name: &str, max_bytes: u64, claim_idle: Duration) -> Result<RedisQueue, BackendError> {
        let client = redis::Client::open(url).map_err(err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(2));
        // Nothing on this connection blocks by design: a call that does
        // not answer means Redis is gone for now.
        let conn = client
            .get_connection_manager_with_config(config.clone().set_response_timeout(Some(RESPONSE_TIMEOUT)))
            .await
            .map_err(err)?;
        // No response timeout: the signal reader blocks.
        let reader = client
            .get_connection_manager_with_config(config.set_response_timeout(None))
            .await
            .map_err(err)?;
        let consumer = format!("{}-{}-{:08x}", hostname(), std::process::id(), rand::random::<u32>());
        let key = |what: &str| format!("{name}:{what}");
        let pusher = push::Pusher::start(push::Target {
            conn: conn.clone(),
            script: Script::new(PUSH),
            bytes: key("bytes"),
            ready: key("ready"),
            lanes: key("lanes"),
            signal: key("signal"),
            max_bytes,
        });
        let q = RedisQueue {
            name: name.to_string(),
            consumer,
            claim_idle,
            conn,
            reader,
            scripts: Scripts {
                take: Script::new(TAKE),
                ack: Script::new(ACK),
                migrate: Script::new(MIGRATE),
            },
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                notify: Notify::new(),
            }),
            pusher,
            signal_reader: Once::new(),
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        };
        q.migrate_single_stream().await?;
        q.refresh_depth().await?;
        Ok(q)
    }

    /// Script calls this process made for its pushes: fewer than the
    /// pushes when they arrive together.
    pub fn push_calls(&self) -> u64 {
        self.pusher.calls()
    }

    fn key(&self, what: &str) -> String {
        format!("{}:{what}", self.name)
    }

    fn lane(&self, tenant: &str) -> String {
        format!("{}:lane:{tenant}", self.name)
    }

    async fn refresh_depth(&self) -> Result<(), BackendError> {
        let mut conn = self.conn.clone();
        let (tenants, bytes): (Vec<String>, Option<u64>) = redis::pipe()
            .smembers(self.key("lanes"))
            .get(self.key("bytes"))
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        let mut pipe = redis::pipe();
        for t in &tenants {
            pipe.xlen(self.lane(t));
        }
        let lens: Vec<u64> = if tenants.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await.map_err(err)?
        };
        self.entries.store(lens.iter().sum(), Ordering::Relaxed);
        self.bytes.store(bytes.unwrap_or(0), Ordering::Relaxed);
        Ok(())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

#[async_trait]
impl Queue for RedisQueue {
    async fn ping(&self) -> Result<(), BackendError> {
        self.pusher.running()?;
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(err)
    }

    async fn push(&self, entry: QueueEntry) -> Result<(), BackendError> {
        let payload = entry.encode();
        let size = payload.len() as u64;
        let lane = self.lane(&entry.tenant);
        if let Err(held) = self.pusher.push(lane, entry.tenant, payload).await? {
            return Err(full(held));
        }
        self.entries.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    async fn lanes(&self) -> Result<Lanes, BackendError> {
        let mark = self.shared.state.lock().version;
        self.claim_stale().await?;
        let mut conn = self.conn.clone();
        let ready: HashMap<String, i64> = conn.hgetall(self.key("ready")).await.map_err(err)?;
        let mut lanes: HashMap<String, u64> = ready
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| (t, n as u64))
            .collect();
        for (tenant, back) in &self.shared.state.lock().handed_back {
            if !back.is_empty() {
                *lanes.entry(tenant.clone()).or_default() += back.len() as u64;
            }
        }
        Ok(Lanes {
            ready: lanes
                .into_iter()
                .map(|(tenant, entries)| Lane { tenant, entries })
                .collect(),
            mark,
        })
    }

    async fn take_lane(&self, tenant: &str, max: usize, max_bytes: usize) -> Result<Vec<Delivery>, BackendError> {
        let max = max.max(1);
        let lane = self.lane(tenant);
        let mut conn = self.conn.clone();
        let mut out = Vec::new();
        let mut taken_bytes = 0usize;
        // Handed-back entries first, one at a time: the byte cap holds.
        while out.len() < max && taken_bytes < max_bytes {
            let next = {
                let mut state = self.shared.state.lock();
                let next = state.handed_back.get_mut(tenant).and_then(VecDeque::pop_front);
                if state.handed_back.get(tenant).is_some_and(VecDeque::is_empty) {
                    state.handed_back.remove(tenant);
                }
                next
            };
            let Some((id, again)) = next else { break };
            let r: StreamRangeReply = conn.xrange(&lane, &id, &id).await.map_err(err)?;
            let got = self.deliveries(tenant, r.ids, |_| again);
            taken_bytes += got.iter().map(|d| d.entry.body.len()).sum::<usize>();
            out.extend(got);
        }
        if out.len() < max && taken_bytes < max_bytes {
            let reply: StreamRangeReply = self
                .scripts
                .take
                .key(&lane)
                .key(self.key("ready"))
                .key(self.key("taken"))
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(max - out.len())
                .arg(max_bytes.saturating_sub(taken_bytes).min(u32::MAX as usize))
                .arg(tenant)
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
            out.extend(self.deliveries(tenant, reply.ids, |_| false));
        }
        Ok(out)
    }

    async fn wait(&self, mark: u64, wait: Duration) {
        self.start_signal_reader();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.shared.notify.notified();
            if self.shared.state.lock().version != mark {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    async fn ack(&self, tokens: &[u64]) -> Result<(), BackendError> {
        let mut by_tenant: HashMap<String, Vec<Taken>> = HashMap::new();
        {
            let mut state = self.shared.state.lock();
            for t in tokens {
                if let Some(taken) = state.taken.remove(t) {
                    by_tenant.entry(taken.tenant.clone()).or_default().push(taken);
                }
            }
        }
        let mut conn = self.conn.clone();
        for (tenant, done) in by_tenant {
            let mut call = self.scripts.ack.prepare_invoke();
            call.key(self.lane(&tenant))
                .key(self.key("taken"))
                .key(self.key("bytes"))
                .arg(GROUP)
                .arg(&tenant);
            for t in &done {
                call.arg(&t.id).arg(t.size);
            }
            let (removed, freed): (u64, u64) = call.invoke_async(&mut conn).await.map_err(err)?;
            self.entries
                .fetch_sub(removed.min(self.entries.load(Ordering::Relaxed)), Ordering::Relaxed);
            self.bytes
                .fetch_sub(freed.min(self.bytes.load(Ordering::Relaxed)), Ordering::Relaxed);
        }
        Ok(())
    }

    async fn nack(&self, tokens: &[u64]) -> Result<(), BackendError> {
        self.hand_back(tokens, true);
        Ok(())
    }

    async fn release(&self, tokens: &[u64]) -> Result<(), BackendError> {
        self.hand_back(tokens, false);
        Ok(())
    }

    fn depth(&self) -> Depth {
        Depth {
            entries: self.entries.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}
