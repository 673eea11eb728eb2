//! The live tail: new logs of a tenant as they land, to every watcher at
//! once (`GET /v1/tail`, `loggerhub tail`, the dashboard).
//!
//! One poller per tenant with watchers, whatever their number, reads the
//! metadata store once per [`POLL_INTERVAL`] for the logs stamped within
//! [`LOOKBACK`] and sends those it has not sent yet to a broadcast channel;
//! each watcher filters them by its own query. So a hundred open tabs cost
//! the stores what one does, and the poller stops when the last watcher
//! goes. It reads the metadata store, which every role's processor writes
//! to, so it works the same on one machine and on a cluster.
//!
//! What a tail shows: logs whose own time is within the last minute when
//! they land (logs stamped older, as an import's, are for search), as
//! the metadata store holds them (the message's first 500 characters).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use crate::model::{Cursor, LogFilter, LogRecord};
use crate::stores::MetadataStore;

/// How often a tenant's poller reads the store.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How far back, by the logs' own time, a poll looks: a log that took
/// longer than this from its timestamp to the store is not tailed.
pub const LOOKBACK_NS: i64 = 60_000_000_000;
/// Logs read per page, and pages per poll: a thousand logs a second is
/// more than anyone reads off a screen; past that, in a flood, the
/// watchers are told how many they missed instead of the poll growing.
const PAGE: usize = 500;
const MAX_PAGES: usize = 2;
/// Batches a slow watcher may fall behind before it is told it missed
/// some (and skips them). With the poll's cap, a tenant's tail holds at
/// most this many thousand records, however many watch.
const CHANNEL_BATCHES: usize = 8;
/// Watchers per tenant, and in all, per process: each holds a response
/// open, so both are bounded.
pub const MAX_WATCHERS_PER_TENANT: usize = 32;
pub const MAX_WATCHERS: usize = 256;
/// A tail ends after this long (the client reconnects): a key revoked, or
/// a tenant suspended or deleted, stops being served within it.
pub const MAX_TAIL: Duration = Duration::from_secs(600);

/// What one poll found that was new, oldest first.
#[derive(Debug, Default)]
pub struct TailBatch {
    pub records: Vec<LogRecord>,
    /// New logs this poll could not read (more than it reads per poll).
    pub dropped: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TailError {
    #[error("the tenant has {MAX_WATCHERS_PER_TENANT} live tails open; close one")]
    TenantBusy,
    #[error("this server has {MAX_WATCHERS} live tails open; retry later")]
    Busy,
}

/// A watcher's subscription; dropping it is leaving.
pub struct Watch {
    pub batches: broadcast::Receiver<Arc<TailBatch>>,
    /// Turns true when the server shuts down: an open tail must end then,
    /// or it would hold the shutdown forever.
    pub closing: watch::Receiver<bool>,
    _seat: Seat,
}

struct Seat {
    hub: Arc<Shared>,
    tenant: String,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut inner = self.hub.inner.lock();
        inner.total -= 1;
        if let Some(t) = inner.tenants.get_mut(&self.tenant) {
            t.watchers -= 1;
            if t.watchers == 0 {
                inner.tenants.remove(&self.tenant);
            }
        }
    }
}

struct TenantTail {
    sender: broadcast::Sender<Arc<TailBatch>>,
    watchers: usize,
}

#[derive(Default)]
struct Inner {
    tenants: HashMap<String, TenantTail>,
    total: usize,
}

struct Shared {
    meta: Arc<dyn MetadataStore>,
    inner: Mutex<Inner>,
    closing: watch::Sender<bool>,
    /// Reads of the store so far, over every tenant.
    polls: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct Tail {
    shared: Arc<Shared>,
}

impl Tail {
    pub fn new(meta: Arc<dyn MetadataStore>) -> Tail {
        Tail {
            shared: Arc::new(Shared {
                meta,
                inner: Mutex::default(),
                closing: watch::channel(false).0,
                polls: Default::default(),
            }),
        }
    }

    /// Reads of the store the pollers made so far.
    pub fn polls(&self) -> u64 {
        self.shared.polls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Joins the tenant's tail, starting its poller if it is the first.
    pub fn watch(&self, tenant: &str) -> Result<Watch, TailError> {
        let mut inner = self.shared.inner.lock();
        if inner.total >= MAX_WATCHERS {
            return Err(TailError::Busy);
        }
        let batches = match inner.tenants.get_mut(tenant) {
            Some(t) if t.watchers >= MAX_WATCHERS_PER_TENANT => return Err(TailError::TenantBusy),
            Some(t) => {
                t.watchers += 1;
                t.sender.subscribe()
            }
            None => {
                let (sender, receiver) = broadcast::channel(CHANNEL_BATCHES);
                tokio::spawn(poll(Arc::downgrade(&self.shared), tenant.to_string(), sender.clone()));
                inner
                    .tenants
                    .insert(tenant.to_string(), TenantTail { sender, watchers: 1 });
                receiver
            }
        };
        inner.total += 1;
        Ok(Watch {
            batches,
            closing: self.shared.closing.subscribe(),
            _seat: Seat {
                hub: self.shared.clone(),
                tenant: tenant.to_string(),
            },
        })
    }

    /// Ends every open tail (at shutdown).
    pub fn close(&self) {
        self.shared.closing.send_replace(true);
    }
}

/// The tenant's poller: runs while its channel has watchers.
async fn poll(hub: Weak<Shared>, tenant: String, sender: broadcast::Sender<Arc<TailBatch>>) {
    let mut seen = Seen::default();
    let mut first = true;
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if sender.receiver_count() == 0 {
            return;
        }
        let Some(meta) = hub.upgrade().map(|h| {
            h.polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            h.meta.clone()
        }) else {
            return;
        };
        let now = crate::model::now_ns();
        let batch = match read_new(meta.as_ref(), &tenant, now, &mut seen).await {
            Ok(b) => b,
            Err(e) => {
                // A store that is down delays the tail; it retries next tick.
                tracing::warn!(tenant, error = %e, "live tail poll failed");
                continue;
            }
        };
        // The first poll only learns what is already there: a tail
        // starts from now.
        if std::mem::take(&mut first) {
            continue;
        }
        if !batch.records.is_empty() || batch.dropped > 0 {
            // No receiver left is the next tick's concern.
            let _ = sender.send(Arc::new(batch));
        }
    }
}

/// Ids already sent, with their timestamps, kept for the lookback.
#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    by_time: Vec<(i64, String)>,
}

impl Seen {
    fn forget_before(&mut self, t: i64) {
        let ids = &mut self.ids;
        self.by_time.retain(|(ts, id)| {
            let keep = *ts >= t;
            if !keep {
                ids.remove(id);
            }
            keep
        });
    }
}

async fn read_new(
    meta: &dyn MetadataStore,
    tenant: &str,
    now: i64,
    seen: &mut Seen,
) -> Result<TailBatch, crate::error::BackendError> {
    let from = now - LOOKBACK_NS;
    seen.forget_before(from);
    let filter = LogFilter {
        from: Some(from),
        ..LogFilter::default()
    };
    let mut fresh = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut dropped = 0;
    for page_no in 0.. {
        let page = meta.list_logs(tenant, &filter, cursor.as_ref(), PAGE).await?;
        if page_no == 0 {
            let known = seen.ids.len() as u64;
            dropped = page.total.saturating_sub(known);
        }
        fresh.extend(page.hits.into_iter().filter(|r| !seen.ids.contains(&r.id)));
        cursor = page.next_cursor;
        if cursor.is_none() || page_no + 1 == MAX_PAGES {
            break;
        }
    }
    dropped = dropped.saturating_sub(fresh.len() as u64);
    fresh.reverse();
    for r in &fresh {
        seen.ids.insert(r.id.clone());
        seen.by_time.push((r.timestamp, r.id.clone()));
    }
    Ok(TailBatch {
        records: fresh,
        dropped,
    })
}

#[cfg(test)]
mod bounds {
    use super::*;
    use crate::stores::sqlite::SqliteStore;

    async fn tail() -> (tempfile::TempDir, Tail) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("meta.db")).await.expect("sqlite");
        (dir, Tail::new(Arc::new(store)))
    }

    /// 32 tails a tenant, 256 a process; a tail that ends gives its seat
    /// back.
    #[tokio::test]
    async fn tails_are_bounded_per_tenant_and_per_process() {
        let (_d, tail) = tail().await;
        let mut open = Vec::new();
        for t in 0..MAX_WATCHERS / MAX_WATCHERS_PER_TENANT {
            for _ in 0..MAX_WATCHERS_PER_TENANT {
                open.push(tail.watch(&format!("tenant{t}")).expect("a seat"));
            }
        }
        assert_eq!(open.len(), 256);
        assert_eq!(tail.watch("tenant0").err(), Some(TailError::Busy));
        assert_eq!(tail.watch("another").err(), Some(TailError::Busy));
        open.pop();
        assert_eq!(
            tail.watch("tenant0").err(),
            Some(TailError::TenantBusy),
            "a seat freed by another tenant is not this one's 33rd"
        );
        assert!(tail.watch("another").is_ok());
    }

    /// However many watch a tenant, its poller reads the store once a
    /// second.
    #[tokio::test]
    async fn one_poll_a_second_whatever_the_watchers() {
        let (_d, tail) = tail().await;
        let watchers: Vec<Watch> = (0..MAX_WATCHERS_PER_TENANT)
            .map(|_| tail.watch("busy").expect("seat"))
            .collect();
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        let polls = tail.polls();
        assert!(
            (3..=5).contains(&polls),
            "{polls} polls in 3.5 s for {} watchers",
            watchers.len()
        );
        drop(watchers);
    }
}
