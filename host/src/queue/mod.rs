//! The durable queue between ingest and the processor.
//!
//! Ingest pushes one [`QueueEntry`] per accepted request and answers 202
//! only once `push` returned, i.e. once the entry is durable. Processors
//! take entries, run the pipeline, and `ack` them once every store has
//! committed; entries taken and never acked are delivered again after a
//! restart (at-least-once; the stores are idempotent by log id).
//!
//! **Invariant:** only `queue::redis` knows Redis. The queue depends on
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

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Appends `entry`; returns once it is durable.
    async fn push(&self, entry: QueueEntry) -> Result<(), BackendError>;
    /// Takes up to `max` entries, waiting up to `wait` for the first one.
    async fn take(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BackendError>;
    /// Marks entries as done; they are never delivered again.
    async fn ack(&self, tokens: &[u64]) -> Result<(), BackendError>;
    /// Hands entries back for another delivery.
    async fn nack(&self, tokens: &[u64]) -> Result<(), BackendError>;
    /// Entries not yet acked.
    fn depth(&self) -> Depth;
    /// Whether the queue can take writes now (for `/ready`).
    async fn ping(&self) -> Result<(), BackendError>;
    /// Stops taking pushes at shutdown; what is durable stays.
    fn close(&self) {}
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
