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

mod dead_letter;
mod halving;
mod instances;
mod scheduler;
mod sink;
mod tenant_run;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

pub use dead_letter::replay_entry;
pub use instances::InstanceBudget;
use instances::TenantInstances;
use scheduler::{Scheduler, Turn};
use tenant_run::TenantRun;

use crate::config::ProcessorConfig;
use crate::error::{BackendError, ErrorKind};
use crate::ingest::rate::{Rate, RateError, RateLimiter};
use crate::model::LogRecord;
use crate::plugins::{Registry, RegistryError};
use crate::plugins::{base_name, is_builtin};
use crate::queue::{Delivery, Lanes, Queue};
use crate::runtime::{Route, RuntimeError, Stage};
use crate::search::SearchIndex;
use crate::stores::dead_letters::DeadLetters;
use crate::stores::raw::RawStore;
use crate::stores::{AccountStore, MetadataStore, Tenant, TenantState};
use crate::telemetry::Metrics;
use crate::tenants::plans::{Plan, Plans};
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
/// A turn stops starting entries once it has run this many budgets: its
/// entry estimate was wrong (the tenant became slow).
const TURN_OVERRUN: u32 = 2;

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

    /// What the tenant's plan says for its turn: the dead letters it
    /// keeps, and whether it used its plugin CPU for today (then its own
    /// plugins are skipped and the built-ins take their stages, until
    /// midnight UTC or a larger plan). Returns the plan, and whether what
    /// the tenant's pipeline stored today used up its daily volume (its
    /// lane then waits until midnight UTC or a larger plan).
    async fn apply_plan(&self, tenant: &str, plan: &str) -> (Plan, bool) {
        let plan = self.plans.resolve(plan);
        self.dead_letters
            .set_plan_cap(tenant, usize::try_from(plan.dead_letter_cap).unwrap_or(usize::MAX));
        let today = self.meter.today(tenant).await;
        let over = today.plugin_cpu_us >= plan.plugin_cpu_seconds_per_day.saturating_mul(1_000_000);
        self.registry.set_cpu_exhausted(tenant, over).await;
        let day_used = today.stored_logs >= plan.daily_logs || today.stored_bytes >= plan.daily_bytes;
        (plan.clone(), day_used)
    }

    /// Charges what a turn stored past what was sent (`sent`: records and
    /// bytes, as ingest charged them) to the tenant's rate, the buckets
    /// ingest takes from: the tenant's next requests wait for the debt,
    /// and its lane waits too while it is in debt. A pipeline that stores
    /// what it was sent charges nothing more, however fast it catches up.
    async fn charge_stored(&self, tenant: &str, plan: &Plan, stored: &Usage, sent: (u64, u64)) {
        let (logs, bytes) = (
            stored.stored_logs.saturating_sub(sent.0),
            stored.stored_bytes.saturating_sub(sent.1),
        );
        if logs == 0 && bytes == 0 {
            return;
        }
        let rate = Rate {
            logs_per_second: plan.logs_per_second,
            bytes_per_second: plan.bytes_per_second,
            burst_seconds: plan.burst_seconds,
        };
        let _ = self.stored_rates.charge(tenant, rate, logs, bytes).await;
        if let Err(RateError::Limited { retry_after, .. }) = self.stored_rates.check(tenant, rate, 1, 1).await {
            self.metrics.tenant_refused(tenant, "stored_rate");
            tracing::debug!(tenant, ?retry_after, "stored past the plan's rate; the lane waits");
            self.hold(tenant, retry_after);
        }
    }

    fn hold(&self, tenant: &str, wait: Duration) {
        let mut held = self.held.lock();
        if held.len() > 100_000 {
            let now = Instant::now();
            held.retain(|_, until| *until > now);
        }
        held.insert(tenant.to_string(), Instant::now() + wait);
    }

    fn is_held(&self, tenant: &str) -> bool {
        self.held
            .lock()
            .get(tenant)
            .is_some_and(|until| *until > Instant::now())
    }
}

/// What ingest charged for `entries`: records (lines, or a JSON body's
/// records) and bytes.
fn sent(entries: &[Delivery], tenant: &str) -> (u64, u64) {
    entries.iter().fold((0, 0), |(logs, bytes), d| {
        let e = &d.entry;
        let records = if e.content_type == "application/json" {
            loggerhub_codec::payload::scan_json(&e.body, tenant).map_or(1, |s| s.count)
        } else {
            crate::ingest::lines_in(&e.body)
        };
        (logs + records as u64, bytes + e.body.len() as u64)
    })
}

/// How long a tenant's state, once looked up, is trusted by a processor
/// (`upkeep::deletion` waits longer than this before removing anything).
const STATE_TTL: Duration = Duration::from_secs(2);

/// The tenants being deleted, per processor: their entries are dropped
/// instead of written to stores the deletion is emptying.
#[derive(Default)]
pub struct Deleting {
    seen: parking_lot::Mutex<HashMap<String, (Instant, Option<Tenant>)>>,
}

impl Deleting {
    /// The tenant as the metadata store lately said (None: no such tenant,
    /// or the store cannot answer; the turn's own writes then fail and
    /// retry).
    async fn tenant(&self, accounts: &dyn AccountStore, tenant: &str) -> Option<Tenant> {
        if let Some((at, t)) = self.seen.lock().get(tenant)
            && at.elapsed() < STATE_TTL
        {
            return t.clone();
        }
        let t = accounts.get_tenant(tenant).await.ok().flatten();
        let mut seen = self.seen.lock();
        if seen.len() > 100_000 {
            seen.clear();
        }
        seen.insert(tenant.to_string(), (Instant::now(), t.clone()));
        t
    }

    /// Whether the tenant was lately found suspended: its lane is not
    /// picked until `SUSPENDED_RECHECK` has passed, then one turn looks
    /// again.
    fn held(&self, tenant: &str) -> bool {
        self.seen.lock().get(tenant).is_some_and(|(at, t)| {
            at.elapsed() < SUSPENDED_RECHECK && t.as_ref().is_some_and(|t| t.state == TenantState::Suspended)
        })
    }
}

/// How long a suspended tenant's lane sits out before a turn looks at its
/// state again.
const SUSPENDED_RECHECK: Duration = Duration::from_secs(5);

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
            if turns.len() < slots {
                match self.queue.lanes().await {
                    Ok(lanes) => {
                        mark = Some(lanes.mark);
                        self.start_turns(lanes, &mut scheduler, &mut idle, &mut turns, slots)
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
            let queue_changed = async {
                match wait_for_queue {
                    Some(mark) => {
                        self.queue.wait(mark, IDLE_WAIT).await;
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
            let Some(turn) = scheduler.pick(&lanes.ready) else {
                break;
            };
            let taken = self.queue.take_lane(&turn.tenant, turn.entries, TURN_BODY_BYTES).await;
            // What this look at the lanes still counts as waiting.
            if let Some(lane) = lanes.ready.iter_mut().find(|l| l.tenant == turn.tenant) {
                let got = taken.as_ref().map_or(0, Vec::len) as u64;
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
            turns.spawn(async move {
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
            });
        }
    }

    /// One turn of one tenant: run its pipeline over the entries the budget
    /// allows, write the stores, then ack them and release the rest; on a
    /// backend failure, hand them all back after a backoff.
    async fn turn(&self, turn: Turn, group: Vec<Delivery>, mut instances: Option<TenantInstances>) -> TurnDone {
        let tenant = turn.tenant.clone();
        let started = Instant::now();
        let known = self.deleting.tenant(self.accounts.as_ref(), &tenant).await;
        let mut plan = None;
        let mut day_used = false;
        if let Some(t) = &known {
            let (p, used) = self.apply_plan(&tenant, &t.plan).await;
            plan = Some(p);
            day_used = used;
        }
        let retention = plan.as_ref().map(Plan::retention);
        // What its plugins stored used up the day: its entries wait, not
        // lost, until midnight UTC or a larger plan.
        if day_used {
            self.metrics.tenant_refused(&tenant, "stored_daily");
            self.hold(
                &tenant,
                Duration::from_secs(60.min(u64::from(crate::usage::seconds_to_midnight()))),
            );
            let _ = self.queue.release(&tokens(&group)).await;
            return TurnDone {
                turn,
                instances,
                ran: 0,
                elapsed: started.elapsed(),
            };
        }
        if known.as_ref().is_some_and(|t| t.state == TenantState::Suspended) {
            tracing::debug!(tenant, entries = group.len(), "tenant suspended; its entries wait");
            let _ = self.queue.release(&tokens(&group)).await;
            return TurnDone {
                turn,
                instances,
                ran: 0,
                elapsed: started.elapsed(),
            };
        }
        if known.is_some_and(|t| t.state == TenantState::Deleting) {
            tracing::debug!(
                tenant,
                entries = group.len(),
                "tenant being deleted; its entries are dropped"
            );
            let _ = self.queue.ack(&tokens(&group)).await;
            return TurnDone {
                turn,
                instances,
                ran: group.len(),
                elapsed: started.elapsed(),
            };
        }
        let deadline = started + self.config.turn_budget * TURN_OVERRUN;
        let done = async {
            let mut outcome = TenantRun::new(self, &tenant, &group, &mut instances, deadline, retention)
                .run()
                .await?;
            let routed = std::mem::take(&mut outcome.routed);
            let stored = Usage {
                stored_logs: routed.len() as u64,
                stored_bytes: routed.iter().map(|r| r.record.size() as u64).sum(),
                ..Usage::default()
            };
            let sent = sent(&group[..outcome.ran], &tenant);
            self.write_stores(&tenant, &group[..outcome.ran], routed).await?;
            // What the pipeline stored counts apart from what ingest took:
            // a tenant's plugins may make more records than it sent.
            self.meter.record(&tenant, stored);
            if let Some(plan) = &plan {
                self.charge_stored(&tenant, plan, &stored, sent).await;
            }
            Ok::<_, PipelineError>(outcome)
        }
        .await;
        let ran = match done {
            Ok(outcome) => {
                // A plugin is disabled after failing on everything it was
                // given several times in a row; one bad record among good
                // ones does not count against it.
                if outcome.passed > 0 {
                    self.registry.record_success(&tenant);
                } else {
                    for (plugin, reason) in &outcome.failures {
                        if self.registry.record_failure(&tenant, plugin, reason).await {
                            self.metrics.plugin_disabled();
                        }
                    }
                }
                let (ran, unstarted) = group.split_at(outcome.ran);
                if let Err(e) = self.queue.ack(&tokens(ran)).await {
                    tracing::error!(error = %e, "queue ack failed");
                }
                if !unstarted.is_empty() {
                    tracing::debug!(
                        tenant,
                        entries = unstarted.len(),
                        "turn over its budget; the rest waits"
                    );
                    let _ = self.queue.release(&tokens(unstarted)).await;
                }
                outcome.ran
            }
            Err(e) => {
                self.metrics.error("store");
                tracing::warn!(tenant, error = %e, "batch failed; its entries will be retried");
                tokio::time::sleep(backoff(&e)).await;
                let _ = self.queue.nack(&tokens(&group)).await;
                group.len()
            }
        };
        TurnDone {
            turn,
            instances,
            ran,
            elapsed: started.elapsed(),
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
