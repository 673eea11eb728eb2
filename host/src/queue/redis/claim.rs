//! Claiming a silent consumer's entries: those pending longer than
//! `claim_idle` join this consumer's handed-back ones (`XAUTOCLAIM`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::streams::{StreamAutoClaimOptions, StreamAutoClaimReply};

use super::{GROUP, RedisQueue, err};
use crate::error::BackendError;

/// How often a consumer looks for entries that dead consumers left pending.
const CLAIM_EVERY: Duration = Duration::from_secs(1);
/// Entries claimed from one silent consumer's lane per look.
const CLAIM_BATCH: usize = 100;

impl RedisQueue {
    /// Entries dead consumers left pending longer than `claim_idle`, in the
    /// lanes that have any taken, join this consumer's handed-back ones.
    pub(super) async fn claim_stale(&self) -> Result<(), BackendError> {
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
}
