//! The ingest rate buckets in Redis, shared by every ingest process of a
//! deployment: one hash per tenant (`<name>:rate:<tenant>`: level of each
//! bucket and when it was last seen), read, refilled and taken from by one
//! Lua script on Redis's own clock, so processes with skewed clocks agree.
//! An idle tenant's hash expires once it would be full again, however deep
//! in debt a large request left it (a debt is paid at the plan's rate,
//! never forgotten). A refusal
//! writes nothing (the refill is computed from when the hash was last
//! written), so a flood of refused requests costs Redis no writes, and no
//! AOF fsyncs on a server with `appendfsync always`; and once Redis said a
//! tenant cannot send even one record for a while, the process refuses it
//! by itself until then, without asking again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use async_trait::async_trait;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Limit, Mode, Rate, RateError, RateLimiter};
use crate::error::{Backend, BackendError};

/// KEYS: the tenant's hash. ARGV: logs and bytes per second, burst
/// seconds, logs and bytes asked for, and the mode: `take`, `force` (take
/// whatever the buckets hold) or `check` (take nothing). Returns {fits,
/// which, wait seconds}.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lr, br, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lc, bc = tonumber(ARGV[4]), tonumber(ARGV[5])
local mode = ARGV[6]
local force = mode == 'force'
local lcap, bcap = lr * burst, br * burst
local h = redis.call('HMGET', KEYS[1], 'l', 'b', 'at')
local l = tonumber(h[1]) or lcap
local b = tonumber(h[2]) or bcap
local dt = math.max(0, now - (tonumber(h[3]) or now))
l = math.min(lcap, l + dt * lr)
b = math.min(bcap, b + dt * br)
local ln, bn = math.min(lc, lcap), math.min(bc, bcap)
if not force and l < ln then
  return {0, 1, tostring((ln - l) / lr)}
elseif not force and b < bn then
  return {0, 2, tostring((bn - b) / br)}
elseif mode == 'check' then
  return {1, 0, '0'}
end
l, b = l - lc, b - bc
redis.call('HSET', KEYS[1], 'l', tostring(l), 'b', tostring(b), 'at', tostring(now))
local full = math.max((lcap - l) / lr, (bcap - b) / br)
redis.call('EXPIRE', KEYS[1], math.ceil(full) + 1)
return {1, 0, '0'}
";

pub struct RedisRates {
    name: String,
    conn: ConnectionManager,
    script: Script,
    /// Tenants whose records bucket cannot take one record until then, and
    /// the rate that said so.
    empty_until: Mutex<HashMap<String, (Instant, u64)>>,
}

/// Tenants remembered as empty; past it the memory is cleared.
const MAX_REMEMBERED: usize = 100_000;

fn err(e: redis::RedisError) -> BackendError {
    BackendError::unavailable(Backend::Queue, e)
}

impl RedisRates {
    /// Connects to `url`; `name` prefixes the keys, as the queue's do.
    pub async fn open(url: &str, name: &str) -> Result<RedisRates, BackendError> {
        let client = redis::Client::open(url).map_err(err)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(2));
        let conn = client.get_connection_manager_with_config(config).await.map_err(err)?;
        Ok(RedisRates {
            name: name.to_string(),
            conn,
            script: Script::new(TAKE),
            empty_until: Mutex::new(HashMap::new()),
        })
    }
}

#[async_trait]
impl RateLimiter for RedisRates {
    async fn take(&self, tenant: &str, rate: Rate, logs: u64, bytes: u64) -> Result<(), RateError> {
        self.call(tenant, rate, logs, bytes, Mode::Take).await
    }

    async fn charge(&self, tenant: &str, rate: Rate, logs: u64, bytes: u64) -> Result<(), RateError> {
        self.call(tenant, rate, logs, bytes, Mode::Force).await
    }

    async fn check(&self, tenant: &str, rate: Rate, logs: u64, bytes: u64) -> Result<(), RateError> {
        self.call(tenant, rate, logs, bytes, Mode::Check).await
    }

    async fn forget(&self, tenant: &str) -> Result<(), RateError> {
        self.empty_until.lock().remove(tenant);
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(format!("{}:rate:{tenant}", self.name))
            .query_async::<()>(&mut conn)
            .await
            .map_err(err)?;
        Ok(())
    }
}

impl RedisRates {
    async fn call(&self, tenant: &str, rate: Rate, logs: u64, bytes: u64, mode: Mode) -> Result<(), RateError> {
        if mode != Mode::Force
            && let Some((until, per_second)) = self.empty_until.lock().get(tenant).copied()
        {
            let now = Instant::now();
            if now < until {
                return Err(RateError::Limited {
                    limit: Limit::Logs,
                    rate: per_second,
                    retry_after: until - now,
                });
            }
        }
        let mut conn = self.conn.clone();
        let (taken, which, wait): (i64, i64, String) = self
            .script
            .key(format!("{}:rate:{tenant}", self.name))
            .arg(rate.logs_per_second)
            .arg(rate.bytes_per_second)
            .arg(rate.burst_seconds)
            .arg(logs)
            .arg(bytes)
            .arg(match mode {
                Mode::Take => "take",
                Mode::Force => "force",
                Mode::Check => "check",
            })
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        if taken == 1 {
            return Ok(());
        }
        let (limit, per_second) = if which == 1 {
            (Limit::Logs, rate.logs_per_second)
        } else {
            (Limit::Bytes, rate.bytes_per_second)
        };
        let secs = wait.parse::<f64>().unwrap_or(1.0).clamp(0.0, 3600.0);
        let retry_after = Duration::from_secs_f64(secs);
        // Not even one record fits: nothing will until then, whoever asks.
        if limit == Limit::Logs && logs <= 1 {
            let mut empty = self.empty_until.lock();
            if empty.len() >= MAX_REMEMBERED {
                empty.clear();
            }
            empty.insert(tenant.to_string(), (Instant::now() + retry_after, per_second));
        }
        Err(RateError::Limited {
            limit,
            rate: per_second,
            retry_after,
        })
    }
}
