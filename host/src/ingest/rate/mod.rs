//! Per-tenant ingest rates: two token buckets per tenant (records and body
//! bytes), each refilled at its plan's rate and holding `burst_seconds` of
//! it. A request takes from both or from neither; one that does not fit is
//! refused with how long until it would (429 + `Retry-After`), before its
//! body reaches the queue, so a flooding tenant never fills the queue the
//! others share.
//!
//! The buckets live in the process (`LocalRates`, embedded) or in Redis
//! (`shared::RedisRates`, when `REDIS_URL` is set), where every ingest
//! process of a deployment takes from the same buckets.

pub mod shared;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::BackendError;

/// A tenant's allowance, from its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub logs_per_second: u64,
    pub bytes_per_second: u64,
    pub burst_seconds: u32,
}

/// Which bucket refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Logs,
    Bytes,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Logs => "logs_per_second",
            Limit::Bytes => "bytes_per_second",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RateError {
    #[error("over the plan's {} ({rate}/s); retry after {retry_after:?}", .limit.as_str())]
    Limited {
        limit: Limit,
        rate: u64,
        retry_after: Duration,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Takes `logs` records and `bytes` bytes from `tenant`'s buckets, or
    /// nothing if they do not fit.
    async fn take(&self, tenant: &str, rate: Rate, logs: u64, bytes: u64) -> Result<(), RateError>;
    /// Takes `logs` more records whatever the buckets hold (a request had
    /// more records than it was charged for up front): the tenant's next
    /// requests wait for the debt.
    async fn charge(&self, tenant: &str, rate: Rate, logs: u64, bytes: u64) -> Result<(), RateError>;
    /// Whether `logs` and `bytes` would fit now, taking nothing: lets a
    /// tenant over its rate be refused before its body is even read.
    async fn check(&self, tenant: &str, rate: Rate, logs: u64, bytes: u64) -> Result<(), RateError>;
    /// Forgets `tenant`'s buckets: a deleted tenant's debt is not its
    /// name's next owner's.
    async fn forget(&self, tenant: &str) -> Result<(), RateError>;
}

/// What a call does with the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Take if it fits.
    Take,
    /// Take whatever the buckets hold.
    Force,
    /// Only say whether it would fit.
    Check,
}

/// The bucket arithmetic both implementations share (the Redis script
/// does the same in Lua): `level` tokens at `at` seconds, refilled at
/// `per_second` up to `per_second × burst`. A request larger than the whole
/// bucket is let through when the bucket is full, leaving it in debt, so
/// that a large batch is slowed down rather than refused for ever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub level: f64,
}

impl Bucket {
    pub fn full(per_second: u64, burst: u32) -> Bucket {
        Bucket {
            level: per_second as f64 * f64::from(burst),
        }
    }

    /// The level after `elapsed` seconds of refill.
    pub fn refilled(self, per_second: u64, burst: u32, elapsed: f64) -> Bucket {
        let cap = per_second as f64 * f64::from(burst);
        Bucket {
            level: (self.level + elapsed.max(0.0) * per_second as f64).min(cap),
        }
    }

    /// Whether `cost` may be taken now; if not, how long until it may.
    pub fn wait_for(self, per_second: u64, burst: u32, cost: u64) -> Option<Duration> {
        let cap = per_second as f64 * f64::from(burst);
        let need = (cost as f64).min(cap);
        if self.level >= need {
            None
        } else {
            Some(Duration::from_secs_f64((need - self.level) / per_second.max(1) as f64))
        }
    }
}

/// Tenants whose buckets one process keeps; past it, full buckets are
/// forgotten first, then all. (A bucket in debt is never forgotten while
/// room remains: its tenant would get a full one back.)
const MAX_TENANTS: usize = 100_000;

/// The buckets of one process.
#[derive(Default)]
pub struct LocalRates {
    buckets: Mutex<HashMap<String, (Instant, Bucket, Bucket, Rate)>>,
}

#[async_trait]
impl RateLimiter for LocalRates {
    async fn take(&self, tenant: &str, rate: Rate, logs: u64, bytes: u64) -> Result<(), RateError> {
        self.local(tenant, rate, logs, bytes, Mode::Take)
    }

    async fn charge(&self, tenant: &str, rate: Rate, logs: u64, bytes: u64) -> Result<(), RateError> {
        self.local(tenant, rate, logs, bytes, Mode::Force)
    }

    async fn check(&self, tenant: &str, rate: Rate, logs: u64, bytes: u64) -> Result<(), RateError> {
        self.local(tenant, rate, logs, bytes, Mode::Check)
    }

    async fn forget(&self, tenant: &str) -> Result<(), RateError> {
        self.buckets.lock().remove(tenant);
        Ok(())
    }
}

impl LocalRates {
    fn local(&self, tenant: &str, rate: Rate, logs: u64, bytes: u64, mode: Mode) -> Result<(), RateError> {
        let now = Instant::now();
        let burst = rate.burst_seconds;
        let mut all = self.buckets.lock();
        if all.len() >= MAX_TENANTS && !all.contains_key(tenant) {
            all.retain(|_, (at, l, b, r)| {
                let elapsed = now.duration_since(*at).as_secs_f64();
                let full = |bucket: &Bucket, per_second: u64| {
                    bucket.refilled(per_second, r.burst_seconds, elapsed).level
                        >= per_second as f64 * f64::from(r.burst_seconds)
                };
                !(full(l, r.logs_per_second) && full(b, r.bytes_per_second))
            });
            if all.len() >= MAX_TENANTS {
                all.clear();
            }
        }
        let (at, l, b, r) = all.entry(tenant.to_string()).or_insert_with(|| {
            (
                now,
                Bucket::full(rate.logs_per_second, burst),
                Bucket::full(rate.bytes_per_second, burst),
                rate,
            )
        });
        *r = rate;
        let elapsed = now.duration_since(*at).as_secs_f64();
        let logs_bucket = l.refilled(rate.logs_per_second, burst, elapsed);
        let bytes_bucket = b.refilled(rate.bytes_per_second, burst, elapsed);
        let refused = logs_bucket
            .wait_for(rate.logs_per_second, burst, logs)
            .map(|w| (Limit::Logs, rate.logs_per_second, w))
            .or_else(|| {
                bytes_bucket
                    .wait_for(rate.bytes_per_second, burst, bytes)
                    .map(|w| (Limit::Bytes, rate.bytes_per_second, w))
            });
        *at = now;
        *l = logs_bucket;
        *b = bytes_bucket;
        if let Some((limit, rate, retry_after)) = refused.filter(|_| mode != Mode::Force) {
            return Err(RateError::Limited {
                limit,
                rate,
                retry_after,
            });
        }
        if mode != Mode::Check {
            l.level -= logs as f64;
            b.level -= bytes as f64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        logs_per_second: 100,
        bytes_per_second: 10_000,
        burst_seconds: 2,
    };

    #[tokio::test]
    async fn a_burst_then_the_rate() {
        let r = LocalRates::default();
        // Two seconds' worth at once, then nothing more.
        r.take("a", RATE, 150, 100).await.expect("within the burst");
        r.take("a", RATE, 50, 100).await.expect("the rest of the burst");
        let Err(RateError::Limited { limit, retry_after, .. }) = r.take("a", RATE, 50, 100).await else {
            panic!("over the burst was let through");
        };
        assert_eq!(limit, Limit::Logs);
        assert!(retry_after > Duration::from_millis(400) && retry_after <= Duration::from_millis(500));
        // Another tenant has buckets of its own.
        r.take("b", RATE, 200, 100).await.expect("b is not limited by a");
        // Bytes are a limit of their own.
        r.take("c", RATE, 1, 15_000).await.expect("within the byte burst");
        let Err(RateError::Limited { limit, .. }) = r.take("c", RATE, 1, 10_000).await else {
            panic!("bytes not limited");
        };
        assert_eq!(limit, Limit::Bytes);
        // A check takes nothing, and says no when a take would.
        r.check("d", RATE, 200, 0).await.expect("fits");
        r.check("d", RATE, 200, 0).await.expect("still fits: nothing was taken");
        r.take("d", RATE, 200, 0).await.expect("take");
        assert!(r.check("d", RATE, 1, 0).await.is_err());
        // A charge takes whatever the bucket holds: the debt is waited out.
        r.charge("e", RATE, 500, 0).await.expect("charge");
        assert!(r.check("e", RATE, 1, 0).await.is_err());
        r.forget("e").await.expect("forget");
        assert!(
            r.check("e", RATE, 1, 0).await.is_ok(),
            "a new tenant of the name starts full"
        );
        r.charge("e", RATE, 500, 0).await.expect("charge");
        let Err(RateError::Limited { retry_after, .. }) = r.take("e", RATE, 1, 0).await else {
            panic!("a tenant in debt was let through");
        };
        assert!(retry_after > Duration::from_secs(2));
    }

    #[tokio::test]
    async fn refills_at_the_rate() {
        let r = LocalRates::default();
        r.take("a", RATE, 200, 0).await.expect("burst");
        assert!(r.take("a", RATE, 10, 0).await.is_err());
        tokio::time::sleep(Duration::from_millis(150)).await;
        r.take("a", RATE, 10, 0).await.expect("refilled");
    }

    #[test]
    fn a_request_larger_than_the_bucket_passes_only_when_it_is_full() {
        let full = Bucket::full(100, 2);
        assert_eq!(full.wait_for(100, 2, 1_000), None);
        let half = Bucket { level: 100.0 };
        assert_eq!(half.wait_for(100, 2, 1_000), Some(Duration::from_secs(1)));
        assert_eq!(half.refilled(100, 2, 10.0), full);
    }
}
