//! The processor, the data path from the queue to the stores. One
//! scheduler per process (`scheduler`, deficit round robin over the
//! queue's per-tenant lanes) decides whose entries run next; each turn
//! takes one tenant's entries and runs on its own task: its pipeline
//! (`TenantRun`: parse → enrich → route, WebAssembly) → the stores
//! (`sink`) → ack. A turn has a time budget: past it, the entries it has
//! not started go back to the front of the tenant's lane and the tenant
//! waits for its next turn, so one tenant's slow, failing or huge work
//! delays only that tenant. Plugin failures end in dead letters
//! (`dead_letter` makes them; `stores::dead_letters` keeps them); backend failures hand the tenant's entries back to the
//! queue, to be retried after a backoff chosen from the failure's kind
//! (`backoff`).
//!
//! **Invariant:** the pipeline never chooses a record's tenant: the host
//! overwrites it after every stage. It knows plugins only through
//! `plugins::Registry` and `runtime`, the stores only through their traits.
//!
//! Here the scheduling loop (`Processor::run`); `turn` is one tenant's
//! turn, `tenant_state` what its plan and state make of it.

mod dead_letter;
mod halving;
mod instances;
mod scheduler;
mod sink;
mod tenant_run;
mod tenant_state;
mod turn;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

pub use dead_letter::replay_entry;
pub use instances::InstanceBudget;
use instances::TenantInstances;
use scheduler::{Scheduler, Turn};
pub use sink::raw_groups;
pub use tenant_state::Deleting;

use crate::config::ProcessorConfig;
use crate::cpu;
use crate::error::{BackendError, ErrorKind};
use crate::ingest::rate::RateLimiter;
use crate::model::LogRecord;
use crate::plugins::{Registry, RegistryError};
use crate::plugins::{base_name, is_builtin};
use crate::queue::{Delivery, Lanes, Queue};
use crate::runtime::{Route, RuntimeError, Stage};
use crate::search::SearchIndex;
use crate::stores::dead_letters::DeadLetters;
use crate::stores::raw::RawStore;
use crate::stores::{AccountStore, MetadataStore};
use crate::telemetry::Metrics;
use crate::tenants::plans::Plans;
use crate::usage::{Meter, Usage};

/// Before a tenant's entries are taken again after a backend was
/// unavailable (or the queue could not be read).
const RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// After a backend said it is over capacity: give it room.
const FULL_BACKOFF: Duration = Duration::from_secs(2);
/// After a backend refused the data or could not read what it holds:
/// trying again will rarely help, so the entries wait longer in the queue
/// (where they stay, counted in `/metrics`) instead of spinning.
const REFUSED_BACKOFF: Duration = Duration::from_secs(5);
/// Body bytes one turn takes at most: about 14k records of 300 bytes,
/// enough to amortise a commit per store, and a bound on what one turn's
/// guests hold.
const TURN_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Turns a process runs at once per worker: with two per worker, a slow
/// tenant's turn never holds the only slot (docs/OPERATIONS.md counts the
/// plugin memory this keeps in flight).
const TURNS_PER_WORKER: usize = 2;
/// How long the scheduler waits on an idle queue before it looks at
/// shutdown and the instance budget again.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// The scheduler looks at the lanes at most this often when pushes wake
/// it (a turn ending wakes it at once): on Redis a look is a round trip.
const LOOK_EVERY: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("plugins: {0}")]
    Registry(#[from] RegistryError),
}

/// How long a worker waits before a failed tenant's entries are taken
/// again: the one place on the data path that decides from a failure's
/// kind. (Plugin failures never get here: they end in dead letters.)
fn backoff(e: &PipelineError) -> Duration {
    match e {
        PipelineError::Backend(b) => match b.kind {
            ErrorKind::Unavailable | ErrorKind::NotFound => RETRY_BACKOFF,
            ErrorKind::Full => FULL_BACKOFF,
            ErrorKind::Rejected | ErrorKind::Corrupt => REFUSED_BACKOFF,
        },
        PipelineError::Runtime(_) | PipelineError::Registry(_) => RETRY_BACKOFF,
    }
}

pub struct Processor {
    pub queue: Arc<dyn Queue>,
    pub registry: Arc<Registry>,
    pub meta: Arc<dyn MetadataStore>,
    /// Whether a turn's tenant still exists (or is being deleted).
    pub accounts: Arc<dyn AccountStore>,
    pub raw: RawStore,
    pub index: Arc<dyn SearchIndex>,
    pub metrics: Arc<Metrics>,
    pub dead_letters: Arc<DeadLetters>,
    /// What the workers' plugin instances may hold, together.
    pub budget: Arc<InstanceBudget>,
    pub config: ProcessorConfig,
    /// Which tenants are being deleted, as lately looked up.
    pub deleting: Deleting,
    /// Each tenant's usage (plugin CPU, dead letters).
    pub meter: Arc<Meter>,
    /// The operator's plans: a tenant's plugin CPU a day.
    pub plans: Arc<Plans>,
    /// The buckets ingest takes from (Redis's when distributed, so every
    /// processor charges the same ones): what a tenant's plugins store
    /// past what it sent is charged to them, so ingest refuses the tenant
    /// while its pipeline's surplus is unpaid.
    pub stored_rates: Arc<dyn RateLimiter>,
    /// Tenants whose lanes wait until then: their pipeline stored past its
    /// plan's rate or day.
    pub held: parking_lot::Mutex<HashMap<String, Instant>>,
}

impl Processor {
    /// Charges a plugin call's time to the tenant when the plugin is its
    /// own: the built-ins are the platform's cost, not the tenant's.
    /// One call of a plugin of `tenant`: its figures, the stage latency
    /// metric, and (for the tenant's own plugins) its plan's plugin CPU.
    fn called(
        &self,
        tenant: &str,
        stage: Stage,
        plugin: &str,
        took: Duration,
        records_in: usize,
        returned: Option<usize>,
    ) {
        self.registry
            .stats()
            .call(tenant, stage, plugin, took, records_in, returned);
        self.metrics.stage(stage.verb(), tenant, plugin, took);
        if !is_builtin(base_name(plugin)) {
            self.meter.record(
                tenant,
                Usage {
                    plugin_cpu_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                    ..Usage::default()
                },
            );
        }
    }
}

/// A record that went through the plugins, on its way to the stores.
pub(crate) struct RoutedRecord {
    /// Index of the entry it came from, in the tenant's group.
    entry: usize,
    may_exist: bool,
    route: Route,
    record: LogRecord,
}

/// What a turn hands back to the scheduler.
struct TurnDone {
    turn: Turn,
    instances: Option<TenantInstances>,
    /// Entries run (the others were released unstarted).
    ran: usize,
    elapsed: Duration,
}

impl Processor {
    /// Runs the scheduler and its turns until `shutdown` turns true, then
    /// lets the running turns finish. Zero workers makes an ingest-only
    /// process: entries wait in the queue.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if self.config.workers == 0 {
            let _ = shutdown.wait_for(|stop| *stop).await;
            return;
        }
        let slots = self.config.workers * TURNS_PER_WORKER;
        let mut scheduler = Scheduler::new(
            self.config.turn_budget,
            self.config.max_entries,
            slots,
            self.config.workers,
        );
        // Each tenant's instances, reused turn after turn; a tenant that
        // runs several turns at once has a set for each.
        let mut idle: HashMap<String, Vec<TenantInstances>> = HashMap::new();
        let mut turns: JoinSet<TurnDone> = JoinSet::new();
        tracing::debug!(slots, "processor started");
        while !*shutdown.borrow() {
            // Over the budget (someone else's turn marked ours) or idle.
            idle.retain(|_, sets| {
                sets.retain(|t| !t.should_drop());
                !sets.is_empty()
            });
            let mut mark = None;
            let looked = tokio::time::Instant::now();
            let now = looked.into_std();
            if turns.len() < slots {
                match cpu::measured(cpu::Stage::Queue, self.queue.lanes()).await {
                    Ok(lanes) => {
                        mark = Some(lanes.mark);
                        cpu::measured(
                            cpu::Stage::Processor,
                            self.start_turns(lanes, now, &mut scheduler, &mut idle, &mut turns, slots),
                        )
                        .await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "queue read failed");
                        tokio::time::sleep(backoff(&e.into())).await;
                        continue;
                    }
                }
            }
            let wait_for_queue = (turns.len() < slots).then_some(mark).flatten();
            // A lane waiting for more entries is looked at again when its
            // wait is over, whether or not anything is pushed meanwhile.
            let wait = scheduler.next_due(now).map_or(IDLE_WAIT, |due| {
                due.saturating_duration_since(Instant::now()).min(IDLE_WAIT)
            });
            let queue_changed = async {
                match wait_for_queue {
                    Some(mark) => {
                        self.queue.wait(mark, wait).await;
                        // A flood of pushes from a tenant that may not run
                        // now must not become one look at the lanes each.
                        tokio::time::sleep_until(looked + LOOK_EVERY).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(done) = turns.join_next(), if !turns.is_empty() => {
                    finish(done, &mut scheduler, &mut idle);
                }
                () = queue_changed => {}
                _ = shutdown.changed() => break,
            }
        }
        while let Some(done) = turns.join_next().await {
            finish(done, &mut scheduler, &mut idle);
        }
    }

    /// Starts turns while slots are free and the scheduler picks one.
    async fn start_turns(
        self: &Arc<Self>,
        mut lanes: Lanes,
        now: Instant,
        scheduler: &mut Scheduler,
        idle: &mut HashMap<String, Vec<TenantInstances>>,
        turns: &mut JoinSet<TurnDone>,
        slots: usize,
    ) {
        // A suspended tenant's entries wait in its lane: its plugins do not
        // run, nothing of it is stored, until the operator resumes it.
        lanes
            .ready
            .retain(|l| !self.deleting.held(&l.tenant) && !self.is_held(&l.tenant));
        while turns.len() < slots {
            let Some(turn) = scheduler.pick(&lanes.ready, now) else {
                break;
            };
            let taken = cpu::measured(
                cpu::Stage::Queue,
                self.queue.take_lane(&turn.tenant, turn.entries, TURN_BODY_BYTES),
            )
            .await;
            // What this look at the lanes still counts as waiting.
            if let Some(lane) = lanes.ready.iter_mut().find(|l| l.tenant == turn.tenant) {
                let got = taken.as_ref().map_or(0, Vec::len) as u64;
                scheduler.taken(&turn, lane.entries, got as usize);
                lane.entries = if got < turn.entries as u64 {
                    0
                } else {
                    lane.entries.saturating_sub(got)
                };
            }
            let group = match taken {
                Ok(group) if group.is_empty() => {
                    scheduler.cancel(&turn);
                    continue;
                }
                Ok(group) => group,
                Err(e) => {
                    scheduler.cancel(&turn);
                    tracing::error!(tenant = turn.tenant, error = %e, "queue take failed");
                    break;
                }
            };
            let instances = idle.get_mut(&turn.tenant).and_then(Vec::pop);
            let this = self.clone();
            turns.spawn(cpu::measured(cpu::Stage::Processor, async move {
                use futures::FutureExt;
                let tokens = tokens(&group);
                let started = Instant::now();
                match std::panic::AssertUnwindSafe(this.turn(turn.clone(), group, instances))
                    .catch_unwind()
                    .await
                {
                    Ok(done) => done,
                    Err(_) => {
                        // A bug, not the tenant's doing: its entries go back
                        // (slowly) rather than stay taken until a restart.
                        tracing::error!(
                            tenant = turn.tenant,
                            "a processor turn panicked; its entries will be retried"
                        );
                        tokio::time::sleep(REFUSED_BACKOFF).await;
                        let _ = this.queue.nack(&tokens).await;
                        TurnDone {
                            turn,
                            instances: None,
                            ran: 0,
                            elapsed: started.elapsed(),
                        }
                    }
                }
            }));
        }
    }
}

/// A turn ended: the scheduler charges its time, and its instances go back
/// to the idle ones unless the budget marked them.
fn finish(
    done: Result<TurnDone, tokio::task::JoinError>,
    scheduler: &mut Scheduler,
    idle: &mut HashMap<String, Vec<TenantInstances>>,
) {
    let done = match done {
        Ok(done) => done,
        Err(e) => {
            // Turns catch their panics: only a cancelled task gets here.
            tracing::error!(error = %e, "a processor turn was lost");
            return;
        }
    };
    scheduler.done(&done.turn, done.ran, done.elapsed);
    if let Some(set) = done.instances {
        set.record_use();
        if !set.should_drop() {
            idle.entry(done.turn.tenant).or_default().push(set);
        }
    }
}

fn tokens(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries.iter().map(|d| d.token).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Backend;

    #[test]
    fn backoff_follows_the_kind() {
        let e = |kind| PipelineError::Backend(BackendError::new(Backend::Metadata, kind, "x"));
        assert_eq!(backoff(&e(ErrorKind::Unavailable)), RETRY_BACKOFF);
        assert_eq!(backoff(&e(ErrorKind::Full)), FULL_BACKOFF);
        assert_eq!(backoff(&e(ErrorKind::Rejected)), REFUSED_BACKOFF);
        assert_eq!(backoff(&e(ErrorKind::Corrupt)), REFUSED_BACKOFF);
    }
}
