//! Each tenant's reads at once (lists, searches, details, stats): a
//! tenant that fires a hundred expensive searches together waits for its
//! own, and the others' reads go on. Past `MAX_READS_PER_TENANT` a read is
//! refused at once (429 `too_many_reads`, `Retry-After: 1`), as
//! Elasticsearch rejects searches past its queue, rather than queued
//! without bound.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{ApiError, ErrorCode};

/// Reads one tenant may have running at once: the dashboard makes four or
/// five at a time, a script or a Grafana panel a few more.
pub const MAX_READS_PER_TENANT: usize = 16;
/// Tenants whose semaphores are kept while idle; past it the idle ones go.
const KEEP_TENANTS: usize = 10_000;

/// Plugin uploads one tenant may have in flight: one compiling and one
/// waiting for its turn. Each holds its body (up to 64 MiB) meanwhile.
pub const MAX_UPLOADS_PER_TENANT: usize = 2;

/// OTLP and Loki requests one tenant may have converted at once: each may
/// take up to `ingest::CONVERSION_CEILING` while it is (a Collector sends
/// a few batches at once; the bench four).
pub const MAX_CONVERSIONS_PER_TENANT: usize = 4;

/// Slots per tenant for one kind of request (reads, uploads).
pub struct ReadSlots {
    per_tenant: usize,
    code: ErrorCode,
    what: &'static str,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Default for ReadSlots {
    /// Reads: lists, searches, details, stats.
    fn default() -> Self {
        ReadSlots {
            per_tenant: MAX_READS_PER_TENANT,
            code: ErrorCode::TooManyReads,
            what: "reads running",
            tenants: Mutex::default(),
        }
    }
}

/// A running read; dropping it ends it.
pub struct ReadSlot {
    _permit: OwnedSemaphorePermit,
}

impl ReadSlot {
    /// Runs `work` on the blocking pool holding the slot: a conversion is
    /// CPU work that must not hold the async workers (`/health` waited 13 s
    /// behind a few).
    pub async fn run_blocking<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        tokio::task::spawn_blocking(move || {
            let _slot = self;
            // Conversions are the intake's work (OTLP, Loki), on another thread.
            crate::cpu::measure(crate::cpu::Stage::Ingest, work)
        })
        .await
        .map_err(|e| ApiError::internal(format!("a conversion failed: {e}")))
    }

    /// Runs `read` to its end holding the slot, even if the caller hangs
    /// up: the work a read started (a search on the blocking pool) goes on
    /// after its request is gone, and must count against the tenant's
    /// share until it ends, or a tenant could start 16, hang up, and start
    /// 16 more.
    pub async fn run<T: Send + 'static>(
        self,
        read: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, ApiError> {
        tokio::spawn(async move {
            let _slot = self;
            read.await
        })
        .await
        .map_err(|e| ApiError::internal(format!("a read failed: {e}")))
    }
}

impl ReadSlots {
    /// Plugin uploads (`MAX_UPLOADS_PER_TENANT`).
    pub fn uploads() -> Self {
        ReadSlots {
            per_tenant: MAX_UPLOADS_PER_TENANT,
            code: ErrorCode::TooManyUploads,
            what: "plugin uploads in flight",
            tenants: Mutex::default(),
        }
    }

    /// Shipper conversions (`MAX_CONVERSIONS_PER_TENANT`).
    pub fn conversions() -> Self {
        ReadSlots {
            per_tenant: MAX_CONVERSIONS_PER_TENANT,
            code: ErrorCode::TooManyConversions,
            what: "OTLP or Loki requests being converted",
            tenants: Mutex::default(),
        }
    }

    /// A slot for one of `tenant`'s requests, or 429 if it has its share
    /// running.
    pub fn enter(&self, tenant: &str) -> Result<ReadSlot, ApiError> {
        let semaphore = {
            let mut tenants = self.tenants.lock();
            if tenants.len() >= KEEP_TENANTS && !tenants.contains_key(tenant) {
                tenants.retain(|_, s| s.available_permits() < self.per_tenant);
            }
            tenants
                .entry(tenant.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
                .clone()
        };
        match semaphore.try_acquire_owned() {
            Ok(permit) => Ok(ReadSlot { _permit: permit }),
            Err(_) => {
                let mut e = ApiError::new(
                    self.code,
                    format!(
                        "this tenant has {} {}; retry after 1 s, or send fewer at once",
                        self.per_tenant, self.what
                    ),
                );
                e.retry_after = Some(1);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_reads_its_share_at_once_and_others_theirs() {
        let slots = ReadSlots::default();
        let held: Vec<ReadSlot> = (0..MAX_READS_PER_TENANT)
            .map(|_| slots.enter("busy").expect("a slot"))
            .collect();
        let refused = slots.enter("busy").err().expect("refused past the share");
        assert_eq!((refused.code, refused.retry_after), (ErrorCode::TooManyReads, Some(1)));
        assert!(slots.enter("quiet").is_ok(), "another tenant reads");
        drop(held);
        assert!(slots.enter("busy").is_ok(), "ended reads give their slots back");
    }

    #[tokio::test]
    async fn a_read_keeps_its_slot_after_its_caller_hangs_up() {
        let slots = ReadSlots::default();
        let mut ends = Vec::new();
        for _ in 0..MAX_READS_PER_TENANT {
            let (end, ended) = tokio::sync::oneshot::channel::<()>();
            ends.push(end);
            let read = slots.enter("busy").expect("a slot").run(async move {
                let _ = ended.await;
            });
            // The caller hangs up: its request's future is dropped.
            drop(tokio::time::timeout(std::time::Duration::from_millis(10), read).await);
        }
        assert!(slots.enter("busy").is_err(), "16 reads still run");
        ends.clear();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(slots.enter("busy").is_ok(), "their ends gave the slots back");
    }
}
