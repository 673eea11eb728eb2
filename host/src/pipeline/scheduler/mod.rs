//! Whose entries run next: deficit round robin over the tenants with
//! entries waiting (the queue's lanes), counted in processing time.
//!
//! Each visit in the round gives a lane one quantum of time (`budget`); a
//! lane with credit gets a turn, sized by what its entries have cost so
//! far to fit the budget, and its turn's real time is charged when it is
//! done. A tenant whose work costs more than its budget runs into debt and
//! sits out the rounds until the debt is paid, while the others take their
//! turns: the time a well-behaved tenant waits is bounded by the budget,
//! not by the other tenants' backlogs or plugins. When only indebted
//! tenants have work, the rounds are fast-forwarded: a slot never idles
//! while there is work it may run.
//!
//! Two more rules keep slow tenants from taking every slot at once:
//! - a tenant that is slow (its last turn ran well over the budget) or not
//!   yet measured runs one turn at a time; any other runs at most
//!   `per_tenant` turns at once;
//! - slow tenants together hold at most all slots but one, so the tenants
//!   within their budget always have a slot to run in.
//!
//! The scheduler is a pure state machine: the processor asks `pick` for a
//! turn when a slot is free and reports `done` when the turn ends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::queue::Lane;

mod linger;

/// Entries a tenant not measured yet gets in its first turn.
const FIRST_TURN_ENTRIES: usize = 8;
/// How many budgets a turn may plan for while its tenant is the only one
/// with work: no one waits behind it, and bigger turns make bigger
/// batches and fewer index commits (each commit is a segment to merge).
/// Its debt then lets the next tenant to arrive go first.
const ALONE_BUDGETS: i64 = 4;
/// A turn that took more than this many budgets marks its tenant slow.
const SLOW_FACTOR: u32 = 2;
/// The most debt a tenant carries: one catastrophic turn (a plugin timing
/// out through a whole halving) costs it this much waiting, not more.
const MAX_DEBT: Duration = Duration::from_secs(10);
/// Tenants whose measurements are kept while they have no work.
const REMEMBERED: usize = 10_000;

/// One turn the processor should run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub tenant: String,
    /// Entries to take from the tenant's lane.
    pub entries: usize,
    /// Time held against the tenant's credit while the turn runs, in
    /// microseconds; given back by `done` or `cancel`.
    reserved: i64,
}

#[derive(Debug, Clone)]
struct LaneState {
    /// Time credit in microseconds; negative is debt.
    deficit: i64,
    /// What one entry has cost, in microseconds (moving average).
    cost_per_entry: Option<f64>,
    /// Time reserved by the turns in flight, in microseconds.
    reserved: i64,
    in_flight: usize,
    slow: bool,
    in_round: bool,
    /// Since when the scheduler has seen entries waiting in the lane
    /// without taking them.
    waiting_since: Option<Instant>,
    /// Entries the last look saw waiting (less what it took), when that
    /// was, and when a look last saw more.
    seen: u64,
    looked_at: Option<Instant>,
    grew_at: Option<Instant>,
    /// Entries a second that come into the lane, averaged over
    /// [`RATE_WINDOW`].
    arrivals: f64,
    /// Its last take stopped at the turn's bytes with entries left: the
    /// lane holds a full turn whatever its count says.
    full: bool,
}

impl Default for LaneState {
    fn default() -> Self {
        LaneState {
            deficit: 0,
            cost_per_entry: None,
            reserved: 0,
            in_flight: 0,
            // Not measured yet: one turn at a time until a turn shows it
            // fits the budget.
            slow: true,
            in_round: false,
            waiting_since: None,
            seen: 0,
            looked_at: None,
            grew_at: None,
            arrivals: 0.0,
            full: false,
        }
    }
}

pub struct Scheduler {
    budget: i64,
    max_entries: usize,
    slots: usize,
    per_tenant: usize,
    round: VecDeque<String>,
    lanes: HashMap<String, LaneState>,
}

impl Scheduler {
    /// `budget`: the time one tenant may use per round; `slots`: turns the
    /// processor runs at once, `per_tenant` of them for one tenant.
    pub fn new(budget: Duration, max_entries: usize, slots: usize, per_tenant: usize) -> Scheduler {
        Scheduler {
            budget: micros(budget).max(1),
            max_entries: max_entries.max(1),
            slots: slots.max(1),
            per_tenant: per_tenant.clamp(1, slots.max(1)),
            round: VecDeque::new(),
            lanes: HashMap::new(),
        }
    }

    /// The next turn among the lanes with entries waiting, or `None` when
    /// none may run now (all are at their share of the slots, or have
    /// less than a turn waiting for less than `linger::LINGER`).
    pub fn pick(&mut self, ready: &[Lane], now: Instant) -> Option<Turn> {
        let waiting: HashMap<&str, u64> = ready
            .iter()
            .filter(|l| l.entries > 0)
            .map(|l| (l.tenant.as_str(), l.entries))
            .collect();
        self.join(ready, &waiting, now);
        // A lane waiting for more does not make a tenant with a backlog
        // share the machine: it is alone among those that would run.
        let alone = waiting
            .iter()
            .filter(|(t, n)| self.lanes.get(**t).is_none_or(|l| !self.lingers(l, **n, false, now)))
            .count()
            <= 1;
        let slow_in_flight: usize = self.lanes.values().filter(|l| l.slow).map(|l| l.in_flight).sum();
        let may_run = |l: &LaneState, entries: u64| {
            let slot = if l.slow {
                l.in_flight == 0 && slow_in_flight < self.slots.saturating_sub(1).max(1)
            } else {
                l.in_flight < self.per_tenant
            };
            slot && !self.lingers(l, entries, alone, now)
        };
        let eligible: HashSet<String> = self
            .round
            .iter()
            .filter(|t| {
                waiting
                    .get(t.as_str())
                    .is_some_and(|&n| self.lanes.get(*t).is_some_and(|l| may_run(l, n)))
            })
            .cloned()
            .collect();
        if eligible.is_empty() {
            return None;
        }
        // Every eligible lane is in debt: skip the rounds it would take the
        // least indebted one to get credit back.
        let least_debt = eligible
            .iter()
            .filter_map(|t| self.lanes.get(t))
            .map(|l| (-(l.deficit - l.reserved)).max(0))
            .min()
            .unwrap_or(0);
        let skipped = least_debt / self.budget;
        if skipped > 0 {
            for t in &eligible {
                if let Some(l) = self.lanes.get_mut(t) {
                    l.deficit += skipped * self.budget;
                }
            }
        }
        // At most two passes: the fast-forward leaves one lane a quantum
        // short of credit at worst.
        for _ in 0..2 * self.round.len() {
            let Some(tenant) = self.round.pop_front() else { break };
            self.round.push_back(tenant.clone());
            if !eligible.contains(&tenant) {
                continue;
            }
            let budget = self.budget;
            let max_entries = self.max_entries;
            let Some(lane) = self.lanes.get_mut(&tenant) else {
                continue;
            };
            // Credit never piles up past one budget beyond what the turns
            // in flight reserved.
            lane.deficit = (lane.deficit + budget).min(budget + lane.reserved);
            if lane.deficit - lane.reserved <= 0 {
                continue;
            }
            let entries = turn_entries(lane, budget, max_entries, alone);
            let reserved = lane.cost_per_entry.map_or(budget, |c| (c * entries as f64) as i64);
            lane.in_flight += 1;
            lane.reserved += reserved;
            lane.waiting_since = None;
            let left = waiting.get(tenant.as_str()).copied().unwrap_or(0);
            lane.seen = left.saturating_sub(entries as u64);
            return Some(Turn {
                tenant,
                entries,
                reserved,
            });
        }
        None
    }

    /// `turn` ended: it ran `entries` entries in `elapsed` (entries it took
    /// and did not start count as not run).
    pub fn done(&mut self, turn: &Turn, entries: usize, elapsed: Duration) {
        let budget = self.budget;
        let Some(lane) = self.end(turn) else { return };
        let spent = micros(elapsed);
        lane.deficit = (lane.deficit - spent).max(-micros(MAX_DEBT));
        if entries > 0 {
            let per_entry = spent as f64 / entries as f64;
            lane.cost_per_entry = Some(match lane.cost_per_entry {
                Some(c) => 0.5 * c + 0.5 * per_entry,
                None => per_entry,
            });
        }
        lane.slow = spent > budget * i64::from(SLOW_FACTOR);
    }

    /// A picked turn found nothing to take (another process took it).
    pub fn cancel(&mut self, turn: &Turn) {
        self.end(turn);
    }

    /// `turn` no longer runs: its slot and its reservation are given back.
    fn end(&mut self, turn: &Turn) -> Option<&mut LaneState> {
        let lane = self.lanes.get_mut(&turn.tenant)?;
        lane.in_flight = lane.in_flight.saturating_sub(1);
        lane.reserved = (lane.reserved - turn.reserved).max(0);
        Some(lane)
    }

    /// Lanes with new work join the round at its end; lanes without work
    /// or turns leave it, keeping their debt and their measurements but
    /// not their credit.
    fn join(&mut self, ready: &[Lane], with_work: &HashMap<&str, u64>, now: Instant) {
        // In the order the queue listed them (oldest first on the local queue).
        for lane in ready.iter().filter(|l| l.entries > 0) {
            let state = self.lanes.entry(lane.tenant.clone()).or_default();
            state.waiting_since.get_or_insert(now);
            state.observe(lane.entries, now);
            if state.in_round {
                continue;
            }
            state.in_round = true;
            self.round.push_back(lane.tenant.clone());
        }
        let lanes = &mut self.lanes;
        for (tenant, lane) in lanes.iter_mut() {
            if !with_work.contains_key(tenant.as_str()) {
                lane.waiting_since = None;
                lane.observe(0, now);
            }
        }
        self.round.retain(|t| {
            let keep = with_work.contains_key(t.as_str()) || lanes.get(t).is_some_and(|l| l.in_flight > 0);
            if !keep && let Some(l) = lanes.get_mut(t) {
                l.in_round = false;
                l.deficit = l.deficit.min(0);
            }
            keep
        });
        if self.lanes.len() > REMEMBERED {
            self.lanes.retain(|_, l| l.in_round || l.deficit < 0);
        }
    }
}

/// The entries of a turn that fills its lane's time: the budget, or
/// `ALONE_BUDGETS` of them for a tenant alone, at what its entries cost.
fn turn_entries(lane: &LaneState, budget: i64, max_entries: usize, alone: bool) -> usize {
    let planned = if alone { budget * ALONE_BUDGETS } else { budget };
    match lane.cost_per_entry {
        Some(cost) => ((planned as f64 / cost.max(1.0)) as usize).clamp(1, max_entries),
        None => FIRST_TURN_ENTRIES.min(max_entries),
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
