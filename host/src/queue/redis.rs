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

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamRangeReply, StreamReadOptions};
use redis::{AsyncCommands, Script};
use tokio::sync::Notify;

use super::{Delivery, Depth, Lane, Lanes, Queue, QueueEntry, full};
use crate::error::{Backend, BackendError, ErrorKind};

const GROUP: &str = "processors";
/// How often a consumer looks for entries that dead consumers left pending.
const CLAIM_EVERY: Duration = Duration::from_secs(1);
/// Entries claimed from one silent consumer's lane per look.
const CLAIM_BATCH: usize = 100;
/// How long the signal reader blocks per call (it loops).
const SIGNAL_BLOCK: Duration = Duration::from_secs(1);
/// Entries moved per call from a one-stream queue of an older version.
const MIGRATE_BATCH: usize = 100;

/// Adds an entry to its tenant's lane unless the queue already holds `max`
/// bytes (an entry bigger than `max` still gets into an empty queue, as in
/// the local queue). A new lane gets its consumer group here.
/// KEYS: lane, bytes, ready, lanes, signal. ARGV: payload, size, max,
/// tenant, group.
const PUSH: &str = r"
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
local size = tonumber(ARGV[2])
if held > 0 and held + size > tonumber(ARGV[3]) then
  return {0, held}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[5], '0', 'MKSTREAM')
end
redis.call('SADD', KEYS[4], ARGV[4])
redis.call('INCRBY', KEYS[2], size)
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
redis.call('XADD', KEYS[5], 'MAXLEN', '1', '*', 'n', '1')
return {1, id}
";

/// Reads up to `count` new entries of one lane, stopping once `max_bytes`
/// of payload are read, and moves them from `ready` to `taken`. A lane
/// that has fewer than its count says gets its count dropped; a lane that
/// does not exist has none.
/// KEYS: lane, ready, taken. ARGV: group, consumer, count, max_bytes,
/// tenant.
const TAKE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[5])
  return {}
end
local out = {}
local bytes = 0
local count = tonumber(ARGV[3])
while #out < count and bytes < tonumber(ARGV[4]) do
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
  if not r then break end
  local e = r[1][2][1]
  out[#out + 1] = e
  bytes = bytes + #e[2][2]
end
local n = #out
local left = redis.call('HINCRBY', KEYS[2], ARGV[5], 0 - n)
if left <= 0 or (n < count and bytes < tonumber(ARGV[4])) then
  redis.call('HDEL', KEYS[2], ARGV[5])
end
if n > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[5], n)
end
return out
";

/// Acks and deletes entries of one lane; only what XDEL removed leaves the
/// byte count, so an entry acked twice (claimed meanwhile by another
/// consumer) is not subtracted twice.
/// KEYS: lane, taken, bytes. ARGV: group, tenant, then id and size pairs.
const ACK: &str = r"
local acked = 0
local removed = 0
local freed = 0
for i = 3, #ARGV, 2 do
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    removed = removed + 1
    freed = freed + tonumber(ARGV[i + 1])
  end
end
if acked > 0 and redis.call('HINCRBY', KEYS[2], ARGV[2], -acked) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
if freed > 0 then
  redis.call('DECRBY', KEYS[3], freed)
end
return {removed, freed}
";

/// Moves one entry of an older version's single stream into its lane
/// (the bytes are counted already). KEYS: old stream, lane, ready, lanes,
/// signal. ARGV: id, payload, tenant, group.
const MIGRATE: &str = r"
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[4], '0', 'MKSTREAM')
end
redis.call('SADD', KEYS[4], ARGV[3])
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('XADD', KEYS[5], 'MAXLEN', '1', '*', 'n', '1')
return 1
";

pub struct RedisQueue {
    name: String,
    consumer: String,
    max_bytes: u64,
    claim_idle: Duration,
    /// Pushes, takes and acks. Connection managers reconnect (with
    /// backoff) after Redis went away, so a restarted Redis is picked up
    /// again.
    conn: ConnectionManager,
    /// The signal reader's own connection: a blocked `XREAD` holds up
    /// every later reply on its connection.
    reader: ConnectionManager,
    scripts: Scripts,
    shared: Arc<Shared>,
    signal_reader: Once,
    entries: AtomicU64,
    bytes: AtomicU64,
}

struct Scripts {
    push: Script,
    take: Script,
    ack: Script,
    migrate: Script,
}

/// What the signal reader task shares with the queue.
struct Shared {
    state: Mutex<State>,
    notify: Notify,
}

impl Shared {
    fn changed(&self) {
        self.state.lock().version += 1;
        self.notify.notify_waiters();
    }
}

#[derive(Default)]
struct State {
    next_token: u64,
    /// token → the entry taken and not acked.
    taken: HashMap<u64, Taken>,
    /// Per tenant: entries handed back (`nack`, `release`) or claimed from
    /// a silent consumer, to deliver again first. They stay pending on this
    /// consumer meanwhile.
    handed_back: HashMap<String, VecDeque<(String, bool)>>,
    last_claim: Option<Instant>,
    version: u64,
}

struct Taken {
    tenant: String,
    id: String,
    size: u64,
    redelivered: bool,
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
        // No response timeout: the signal reader blocks.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(2));
        let conn = client
            .get_connection_manager_with_config(config.clone())
            .await
            .map_err(err)?;
        let reader = client.get_connection_manager_with_config(config).await.map_err(err)?;
        let consumer = format!("{}-{}-{:08x}", hostname(), std::process::id(), rand::random::<u32>());
        let q = RedisQueue {
            name: name.to_string(),
            consumer,
            max_bytes,
            claim_idle,
            conn,
            reader,
            scripts: Scripts {
                push: Script::new(PUSH),
                take: Script::new(TAKE),
                ack: Script::new(ACK),
                migrate: Script::new(MIGRATE),
            },
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                notify: Notify::new(),
            }),
            signal_reader: Once::new(),
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        };
        q.migrate_single_stream().await?;
        q.refresh_depth().await?;
        Ok(q)
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

    /// Moves what a queue of an older version left in its single stream
    /// into the tenants' lanes (an entry some old consumer was processing
    /// may run twice; the stores absorb that).
    async fn migrate_single_stream(&self) -> Result<(), BackendError> {
        let old = self.key("stream");
        let mut conn = self.conn.clone();
        let mut moved = 0usize;
        loop {
            let batch: StreamRangeReply = conn.xrange_count(&old, "-", "+", MIGRATE_BATCH).await.map_err(err)?;
            if batch.ids.is_empty() {
                break;
            }
            for sid in batch.ids {
                let payload = sid.get::<Vec<u8>>("e").unwrap_or_default();
                let Ok(entry) = QueueEntry::decode(&payload) else {
                    tracing::error!(id = %sid.id, "corrupt entry in the old queue stream; left there");
                    return Ok(());
                };
                let _: i64 = self
                    .scripts
                    .migrate
                    .key(&old)
                    .key(self.lane(&entry.tenant))
                    .key(self.key("ready"))
                    .key(self.key("lanes"))
                    .key(self.key("signal"))
                    .arg(&sid.id)
                    .arg(payload)
                    .arg(&entry.tenant)
                    .arg(GROUP)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(err)?;
                moved += 1;
            }
        }
        if moved > 0 {
            let _: i64 = conn.del(&old).await.map_err(err)?;
            tracing::info!(entries = moved, "moved the single-stream queue into per-tenant lanes");
        }
        Ok(())
    }

    fn deliveries(&self, tenant: &str, ids: Vec<StreamId>, redelivered: impl Fn(&str) -> bool) -> Vec<Delivery> {
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

    /// Entries dead consumers left pending longer than `claim_idle`, in the
    /// lanes that have any taken, join this consumer's handed-back ones.
    async fn claim_stale(&self) -> Result<(), BackendError> {
        {
            let mut state = self.shared.state.lock();
            if state
                .last_claim
                .is_some_and(|t| t.elapsed() < CLAIM_EVERY.min(self.claim_idle))
            {
                return Ok(());
            }
            state.last_claim = Some(Instant::now());
        }
        let mut conn = self.conn.clone();
        let taken: HashMap<String, i64> = conn.hgetall(self.key("taken")).await.map_err(err)?;
        let idle = u64::try_from(self.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let mut claimed = 0;
        for (tenant, n) in taken {
            if n <= 0 {
                continue;
            }
            let reply: StreamAutoClaimReply = conn
                .xautoclaim_options(
                    self.lane(&tenant),
                    GROUP,
                    &self.consumer,
                    idle,
                    "0-0",
                    StreamAutoClaimOptions::default().count(CLAIM_BATCH).with_justid(),
                )
                .await
                .map_err(err)?;
            if reply.claimed.is_empty() {
                continue;
            }
            let mut state = self.shared.state.lock();
            // What this consumer holds itself (a long turn, or handed back
            // and waiting) is still its own, not a silent consumer's.
            let held: std::collections::HashSet<&str> = state
                .taken
                .values()
                .map(|t| t.id.as_str())
                .chain(state.handed_back.values().flatten().map(|(id, _)| id.as_str()))
                .collect();
            let stale: Vec<String> = reply
                .claimed
                .into_iter()
                .map(|sid| sid.id)
                .filter(|id| !held.contains(id.as_str()))
                .collect();
            claimed += stale.len();
            state
                .handed_back
                .entry(tenant)
                .or_default()
                .extend(stale.into_iter().map(|id| (id, true)));
        }
        if claimed > 0 {
            tracing::info!(entries = claimed, "claimed entries of a silent consumer");
            self.shared.changed();
        }
        Ok(())
    }

    /// Starts, once, the task that wakes `wait` when any process pushes.
    fn start_signal_reader(&self) {
        self.signal_reader.call_once(|| {
            let shared = Arc::downgrade(&self.shared);
            let mut reader = self.reader.clone();
            let signal = self.key("signal");
            tokio::spawn(async move {
                let mut last = "$".to_string();
                let opts = StreamReadOptions::default()
                    .count(1)
                    .block(SIGNAL_BLOCK.as_millis() as usize);
                loop {
                    let reply: Result<Option<redis::streams::StreamReadReply>, _> =
                        reader.xread_options(&[&signal], &[&last], &opts).await;
                    let Some(shared) = shared.upgrade() else { return };
                    match reply {
                        Ok(Some(r)) => {
                            if let Some(id) = r.keys.into_iter().flat_map(|k| k.ids).last() {
                                last = id.id;
                            }
                            shared.changed();
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "queue signal read failed");
                            // Wake the scheduler anyway: it looks at the lanes.
                            shared.changed();
                            tokio::time::sleep(SIGNAL_BLOCK).await;
                        }
                    }
                }
            });
        });
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
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(err)
    }

    async fn push(&self, entry: QueueEntry) -> Result<(), BackendError> {
        let payload = entry.encode();
        let size = payload.len() as u64;
        let mut conn = self.conn.clone();
        let (added, held): (i64, redis::Value) = self
            .scripts
            .push
            .key(self.lane(&entry.tenant))
            .key(self.key("bytes"))
            .key(self.key("ready"))
            .key(self.key("lanes"))
            .key(self.key("signal"))
            .arg(payload)
            .arg(size)
            .arg(self.max_bytes)
            .arg(&entry.tenant)
            .arg(GROUP)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        if added == 0 {
            let bytes = redis::from_redis_value::<u64>(held).unwrap_or(self.max_bytes);
            return Err(full(bytes));
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

impl RedisQueue {
    /// Still pending on this consumer: delivered again by the next take of
    /// their lane, or claimed by another consumer if this one dies.
    fn hand_back(&self, tokens: &[u64], redelivered: bool) {
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
