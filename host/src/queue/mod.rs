//! The durable queue between ingest and the processor.
//!
//! Ingest pushes one [`QueueEntry`] per accepted request and answers 202
//! only once `push` returned, i.e. once the entry is durable. Processors
//! take entries, run the pipeline, and `ack` them once every store has
//! committed; entries taken and never acked are delivered again after a
//! restart (at-least-once; the stores are idempotent by log id).

mod entry;
pub mod local;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use entry::QueueEntry;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Over the configured capacity: ingest answers 503 + Retry-After.
    #[error("queue is full ({bytes} bytes waiting)")]
    Full { bytes: u64 },
    #[error("queue i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt queue entry: {0}")]
    Corrupt(String),
    #[error("queue is shut down")]
    Closed,
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
    async fn push(&self, entry: QueueEntry) -> Result<(), QueueError>;
    /// Takes up to `max` entries, waiting up to `wait` for the first one.
    async fn take(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError>;
    /// Marks entries as done; they are never delivered again.
    async fn ack(&self, tokens: &[u64]) -> Result<(), QueueError>;
    /// Hands entries back for another delivery.
    async fn nack(&self, tokens: &[u64]) -> Result<(), QueueError>;
    /// Entries not yet acked.
    fn depth(&self) -> Depth;
    /// Whether the queue can take writes now (for `/ready`).
    async fn ping(&self) -> Result<(), QueueError>;
}
