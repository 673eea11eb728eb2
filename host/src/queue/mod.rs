//! The durable queue between ingest and the processor.
//!
//! Ingest pushes one [`QueueEntry`] per accepted request and answers 202
//! only once `push` returned, i.e. once the entry is durable. Entries wait
//! in one lane per tenant, oldest first. Processors look at the lanes,
//! take one tenant's entries at a time, run the pipeline, and `ack` them
//! once every store has committed; entries taken and never acked are
//! delivered again after a restart (at-least-once; the stores are
//! idempotent by log id).
//!
//! **Invariant:** only `queue::redis` (and, for the rate buckets,
//! `ingest::rate::shared`) knows Redis. The queue depends on
//! `model`, `error` and `config` alone.

mod entry;
pub mod local;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use entry::QueueEntry;

use crate::config::QueueBackend;
use crate::error::{Backend, BackendError, ErrorKind};

/// The queue is over its configured capacity: ingest answers 503 +
/// Retry-After.
pub(crate) fn full(bytes: u64) -> BackendError {
    BackendError::new(
        Backend::Queue,
        ErrorKind::Full,
        format!("the queue is full ({bytes} bytes waiting)"),
    )
}

pub(crate) fn closed() -> BackendError {
    BackendError::unavailable(Backend::Queue, "the queue is shut down")
}

pub(crate) fn corrupt(what: impl Into<String>) -> BackendError {
    BackendError::corrupt(Backend::Queue, what.into())
}

pub(crate) fn io(e: std::io::Error) -> BackendError {
    BackendError::io(Backend::Queue, e)
}

/// A taken entry; `token` acks it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub token: u64,
    pub entry: QueueEntry,
    /// The entry may have been processed before (recovered after a restart,
    /// or handed back): its records may already be in the stores.
    pub redelivered: bool,
}

/// What the queue holds, for metrics and readiness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    pub entries: u64,
    pub bytes: u64,
}

/// One tenant's entries waiting to be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub tenant: String,
    pub entries: u64,
}

/// The lanes with entries waiting, and a mark for [`Queue::wait`].
#[derive(Debug, Clone, Default)]
pub struct Lanes {
    pub ready: Vec<Lane>,
    pub mark: u64,
}

/// Entries are kept in one lane per tenant, so that the processor chooses
/// whose work runs next (`pipeline::scheduler`) instead of taking the
/// oldest entry of whoever sent the most.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Appends `entry` to its tenant's lane; returns once it is durable.
    async fn push(&self, entry: QueueEntry) -> Result<(), BackendError>;
    /// The tenants with entries waiting (including handed-back ones).
    async fn lanes(&self) -> Result<Lanes, BackendError>;
    /// Takes the oldest waiting entries of `tenant`, without waiting: up to
    /// `max` of them, and no more once `max_bytes` of bodies are taken
    /// (at least one, whatever its size).
    async fn take_lane(&self, tenant: &str, max: usize, max_bytes: usize) -> Result<Vec<Delivery>, BackendError>;
    /// Returns once an entry may have become ready since `lanes` answered
    /// `mark` (a push, from any process, or a hand-back), or after `wait`.
    async fn wait(&self, mark: u64, wait: Duration);
    /// Marks entries as done; they are never delivered again.
    async fn ack(&self, tokens: &[u64]) -> Result<(), BackendError>;
    /// Hands entries back for another delivery, marked redelivered.
    async fn nack(&self, tokens: &[u64]) -> Result<(), BackendError>;
    /// Hands back entries that were taken but not started (their turn ran
    /// out of time): delivered again first in their lane, as they were.
    async fn release(&self, tokens: &[u64]) -> Result<(), BackendError>;
    /// Entries not yet acked.
    fn depth(&self) -> Depth;
    /// Whether the queue can take writes now (for `/ready`).
    async fn ping(&self) -> Result<(), BackendError>;
    /// Stops taking pushes at shutdown; what is durable stays.
    fn close(&self) {}

    /// Takes up to `max` entries of any tenants, lane after lane, waiting
    /// up to `wait` for the first one (tools and tests; the processor
    /// schedules lanes itself).
    async fn take(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BackendError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let lanes = self.lanes().await?;
            let mut out = Vec::new();
            for lane in &lanes.ready {
                if out.len() >= max {
                    break;
                }
                out.extend(self.take_lane(&lane.tenant, max - out.len(), usize::MAX).await?);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !out.is_empty() || left.is_zero() {
                return Ok(out);
            }
            self.wait(lanes.mark, left).await;
        }
    }
}

/// Opens the queue the settings name (`REDIS_URL`); `max_bytes` bounds
/// what it holds.
pub async fn open(backend: &QueueBackend, max_bytes: u64) -> Result<Arc<dyn Queue>, BackendError> {
    Ok(match backend {
        QueueBackend::Local(dir) => local::LocalQueue::open(dir, max_bytes)?,
        QueueBackend::Redis { url, name, claim_idle } => {
            Arc::new(self::redis::RedisQueue::open(url, name, max_bytes, *claim_idle).await?)
        }
    })
}
