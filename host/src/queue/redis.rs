//! The distributed queue: a Redis 7 stream read through a consumer group
//! (DESIGN §1). Every processor is a consumer of the group `processors`;
//! an entry is acked (`XACK` + `XDEL`) only after all sinks committed, and
//! the pending entries of a consumer that died are claimed by the others
//! once they have been idle for `claim_idle` (`XAUTOCLAIM`). The stream is
//! bounded in bytes by a counter kept beside it, checked and raised by one
//! Lua script, so ingest turns into 503 + Retry-After when it is full.
//!
//! Durability is Redis's: run it with `appendonly yes` and `appendfsync
//! always` for 202 to mean "on disk" (infra/ does).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply,
};
use redis::{AsyncCommands, Script};

use super::{Delivery, Depth, Queue, QueueEntry, full};
use crate::error::{Backend, BackendError, ErrorKind};

const GROUP: &str = "processors";
/// How often a consumer looks for entries that dead consumers left pending.
const CLAIM_EVERY: Duration = Duration::from_secs(1);

/// Adds an entry unless the stream already holds `max` bytes (an entry
/// bigger than `max` still gets into an empty stream, as in the local queue).
const PUSH: &str = r"
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
local size = tonumber(ARGV[2])
if held > 0 and held + size > tonumber(ARGV[3]) then
  return {0, held}
end
redis.call('INCRBY', KEYS[2], size)
return {1, redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])}
";

pub struct RedisQueue {
    stream: String,
    bytes_key: String,
    consumer: String,
    max_bytes: u64,
    claim_idle: Duration,
    /// Pushes and acks. Connection managers reconnect (with backoff) after
    /// Redis went away, so a restarted Redis is picked up again.
    conn: ConnectionManager,
    /// Blocking reads get their own connection: a blocked `XREADGROUP`
    /// holds up every later reply on its connection.
    reader: tokio::sync::Mutex<ConnectionManager>,
    push_script: Script,
    state: Mutex<State>,
    entries: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Default)]
struct State {
    next_token: u64,
    /// token → (stream id, encoded size), for entries taken and not acked.
    taken: HashMap<u64, (String, u64)>,
    /// Stream ids handed back by `nack`, to deliver again first.
    handed_back: VecDeque<String>,
    last_claim: Option<Instant>,
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
    /// (`<name>:stream`, `<name>:bytes`), so several deployments or tests can
    /// share a server; `claim_idle` is how long an entry stays with a silent
    /// consumer before another takes it.
    pub async fn open(url: &str, name: &str, max_bytes: u64, claim_idle: Duration) -> Result<RedisQueue, BackendError> {
        let client = redis::Client::open(url).map_err(err)?;
        // No response timeout: reads block for up to the take's wait.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(2));
        let mut conn = client
            .get_connection_manager_with_config(config.clone())
            .await
            .map_err(err)?;
        let reader = client.get_connection_manager_with_config(config).await.map_err(err)?;
        let stream = format!("{name}:stream");
        match conn.xgroup_create_mkstream::<_, _, _, ()>(&stream, GROUP, "0").await {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(err(e)),
        }
        let consumer = format!("{}-{}-{:08x}", hostname(), std::process::id(), rand::random::<u32>());
        let q = RedisQueue {
            bytes_key: format!("{name}:bytes"),
            stream,
            consumer,
            max_bytes,
            claim_idle,
            conn,
            reader: tokio::sync::Mutex::new(reader),
            push_script: Script::new(PUSH),
            state: Mutex::new(State::default()),
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        };
        q.refresh_depth().await?;
        Ok(q)
    }

    async fn refresh_depth(&self) -> Result<(), BackendError> {
        let mut conn = self.conn.clone();
        let (len, bytes): (u64, Option<u64>) = redis::pipe()
            .xlen(&self.stream)
            .get(&self.bytes_key)
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        self.entries.store(len, Ordering::Relaxed);
        self.bytes.store(bytes.unwrap_or(0), Ordering::Relaxed);
        Ok(())
    }

    fn deliveries(&self, ids: Vec<StreamId>, redelivered: bool) -> Vec<Delivery> {
        let mut state = self.state.lock();
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
                    state.taken.insert(token, (sid.id, bytes.len() as u64));
                    out.push(Delivery {
                        token,
                        entry,
                        redelivered,
                    });
                }
                Err(e) => tracing::error!(id = %sid.id, error = %e, "corrupt stream entry; left pending"),
            }
        }
        out
    }

    /// Entries a dead consumer left pending longer than `claim_idle`.
    async fn claim_stale(&self, max: usize) -> Result<Vec<Delivery>, BackendError> {
        {
            let mut state = self.state.lock();
            if state
                .last_claim
                .is_some_and(|t| t.elapsed() < CLAIM_EVERY.min(self.claim_idle))
            {
                return Ok(Vec::new());
            }
            state.last_claim = Some(Instant::now());
        }
        let mut conn = self.conn.clone();
        let idle = u64::try_from(self.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let reply: StreamAutoClaimReply = conn
            .xautoclaim_options(
                &self.stream,
                GROUP,
                &self.consumer,
                idle,
                "0-0",
                StreamAutoClaimOptions::default().count(max),
            )
            .await
            .map_err(err)?;
        if !reply.claimed.is_empty() {
            tracing::info!(entries = reply.claimed.len(), "claimed entries of a silent consumer");
        }
        Ok(self.deliveries(reply.claimed, true))
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
            .push_script
            .key(&self.stream)
            .key(&self.bytes_key)
            .arg(payload)
            .arg(size)
            .arg(self.max_bytes)
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

    async fn take(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BackendError> {
        let max = max.max(1);
        let handed_back: Vec<String> = {
            let mut state = self.state.lock();
            let n = state.handed_back.len().min(max);
            state.handed_back.drain(..n).collect()
        };
        if !handed_back.is_empty() {
            let mut conn = self.conn.clone();
            let mut ids = Vec::new();
            for id in handed_back {
                let r: StreamRangeReply = conn.xrange(&self.stream, &id, &id).await.map_err(err)?;
                ids.extend(r.ids);
            }
            return Ok(self.deliveries(ids, true));
        }
        let claimed = self.claim_stale(max).await?;
        if !claimed.is_empty() {
            return Ok(claimed);
        }
        let mut opts = StreamReadOptions::default().group(GROUP, &self.consumer).count(max);
        let block = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        if block > 0 {
            opts = opts.block(usize::try_from(block).unwrap_or(usize::MAX));
        }
        let reply: Option<StreamReadReply> = {
            let mut reader = self.reader.lock().await;
            reader
                .xread_options(&[&self.stream], &[">"], &opts)
                .await
                .map_err(err)?
        };
        let ids = reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default();
        Ok(self.deliveries(ids, false))
    }

    async fn ack(&self, tokens: &[u64]) -> Result<(), BackendError> {
        let done: Vec<(String, u64)> = {
            let mut state = self.state.lock();
            tokens.iter().filter_map(|t| state.taken.remove(t)).collect()
        };
        if done.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = done.iter().map(|(id, _)| id.as_str()).collect();
        let size: u64 = done.iter().map(|(_, s)| s).sum();
        let mut conn = self.conn.clone();
        // XDEL reports what it removed: only those leave the byte count, so
        // an entry acked twice (claimed meanwhile by another consumer) is not
        // subtracted twice.
        let (_, removed): (u64, u64) = redis::pipe()
            .atomic()
            .xack(&self.stream, GROUP, &ids)
            .xdel(&self.stream, &ids)
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        let freed = if removed as usize == ids.len() {
            size
        } else {
            size * removed / ids.len() as u64
        };
        let _: i64 = conn.decr(&self.bytes_key, freed).await.map_err(err)?;
        self.entries
            .fetch_sub(removed.min(self.entries.load(Ordering::Relaxed)), Ordering::Relaxed);
        self.bytes
            .fetch_sub(freed.min(self.bytes.load(Ordering::Relaxed)), Ordering::Relaxed);
        Ok(())
    }

    async fn nack(&self, tokens: &[u64]) -> Result<(), BackendError> {
        let mut state = self.state.lock();
        for t in tokens {
            if let Some((id, _)) = state.taken.remove(t) {
                // Still pending on this consumer: delivered again by the
                // next take, or claimed by another consumer if this one dies.
                state.handed_back.push_back(id);
            }
        }
        Ok(())
    }

    fn depth(&self) -> Depth {
        Depth {
            entries: self.entries.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}
