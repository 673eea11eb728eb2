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
/// How long a lane holding less than a full turn waits for more before
/// its turn starts anyway. Each turn is a commit in every store, and a
/// commit's cost barely depends on its size (an index segment to write
/// and merge, a transaction): records sent one per request would
/// otherwise be stored a few hundred at a time, at twice the CPU per
/// record of full turns. Search sees a busy sender's records up to this
/// much later (plus any wait for a slot), as with OpenSearch's refresh
/// interval or Quickwit's commit timeout.
pub const LINGER: Duration = Duration::from_millis(250);
/// Only a lane whose entries arrive fast enough to bring this many in a
/// [`LINGER`] waits: a tenant sending now and then gains nothing from
/// waiting, and its records are searchable without the delay.
const LINGER_GAIN: f64 = 16.0;
/// A lane that got nothing new for this long stops waiting: its sender
/// paused or stopped, and what came is stored now rather than at the end
/// of [`LINGER`].
const LINGER_QUIET: Duration = Duration::from_millis(20);
/// Over how long a lane's arrival rate is averaged.
const RATE_WINDOW: Duration = Duration::from_millis(100);

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
    /// less than a turn waiting for less than [`LINGER`]).
    pub fn pick(&mut self, ready: &[Lane], now: Instant) -> Option<Turn> {
        let waiting: HashMap<&str, u64> = ready
            .iter()
            .filter(|l| l.entries > 0)
            .map(|l| (l.tenant.as_str(), l.entries))
            .collect();
        self.join(ready, now);
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

    /// Whether a lane waits for more entries: they arrive fast enough
    /// that waiting makes its turn bigger, it holds less than a full turn,
    /// it has waited less than [`LINGER`] so far and got more within
    /// [`LINGER_QUIET`]. A tenant not measured yet never waits (its first
    /// turn is small anyway).
    fn lingers(&self, lane: &LaneState, entries: u64, alone: bool, now: Instant) -> bool {
        lingering(lane)
            && !lane.full
            && entries < turn_entries(lane, self.budget, self.max_entries, alone) as u64
            && lane
                .waiting_since
                .is_some_and(|since| now.saturating_duration_since(since) < LINGER)
            && lane
                .grew_at
                .is_some_and(|grew| now.saturating_duration_since(grew) < LINGER_QUIET)
    }

    /// When the first lane that waits for more entries stops waiting:
    /// the caller looks at the lanes again then, pushes or not.
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        self.lanes
            .values()
            .filter(|l| l.in_round && lingering(l) && !l.full)
            .filter_map(|l| Some((l.waiting_since? + LINGER).min(l.grew_at? + LINGER_QUIET)))
            .filter(|&due| due > now)
            .min()
    }

    /// `turn`'s take got `got` of the `waiting` entries its lane had: fewer
    /// than both the turn's and the lane's means the turn's bytes were
    /// full, so the rest is at least a turn too.
    pub fn taken(&mut self, turn: &Turn, waiting: u64, got: usize) {
        if let Some(lane) = self.lanes.get_mut(&turn.tenant) {
            lane.full = got < turn.entries && (got as u64) < waiting;
        }
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
    fn join(&mut self, ready: &[Lane], now: Instant) {
        let mut with_work = HashSet::new();
        // In the order the queue listed them (oldest first on the local queue).
        for lane in ready.iter().filter(|l| l.entries > 0) {
            with_work.insert(lane.tenant.as_str());
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
            if !with_work.contains(tenant.as_str()) {
                lane.waiting_since = None;
                lane.observe(0, now);
            }
        }
        self.round.retain(|t| {
            let keep = with_work.contains(t.as_str()) || lanes.get(t).is_some_and(|l| l.in_flight > 0);
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

impl LaneState {
    /// A look saw `entries` waiting: what came since the last look goes
    /// into the arrival rate. (Looks in the same instant, a pick after
    /// another, add nothing.)
    fn observe(&mut self, entries: u64, now: Instant) {
        let grew = entries.saturating_sub(self.seen);
        if grew > 0 {
            self.grew_at = Some(now);
        }
        if let Some(before) = self.looked_at {
            let dt = now.saturating_duration_since(before).as_secs_f64();
            if dt > 0.0 {
                let w = (dt / RATE_WINDOW.as_secs_f64()).min(1.0);
                self.arrivals = (1.0 - w) * self.arrivals + w * grew as f64 / dt;
            }
        }
        self.looked_at = Some(now);
        self.seen = entries;
    }
}

/// Whether a lane's entries come in fast enough for it to wait for more.
fn lingering(lane: &LaneState) -> bool {
    lane.cost_per_entry.is_some() && lane.arrivals * LINGER.as_secs_f64() >= LINGER_GAIN
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BUDGET: Duration = Duration::from_millis(100);

    fn lanes(ts: &[&str]) -> Vec<Lane> {
        ts.iter()
            .map(|t| Lane {
                tenant: t.to_string(),
                entries: 1_000,
            })
            .collect()
    }

    fn scheduler() -> Scheduler {
        Scheduler::new(BUDGET, 256, 4, 2)
    }

    #[test]
    fn a_slow_tenant_runs_one_turn_at_a_time_and_waits_out_its_debt() {
        let mut s = scheduler();
        let ready = lanes(&["slow", "b"]);
        let first = s.pick(&ready, Instant::now()).expect("a turn");
        assert_eq!(first.tenant, "slow");
        // Not measured yet: no second turn for it.
        let second = s.pick(&ready, Instant::now()).expect("a turn");
        assert_eq!(second.tenant, "b");
        s.done(&first, 1, Duration::from_secs(4));
        s.done(&second, 8, Duration::from_millis(40));
        // "slow" owes 4 s: "b" gets the turns meanwhile, many of them.
        let mut b_turns = 0;
        for _ in 0..20 {
            let t = s.pick(&ready, Instant::now()).expect("a turn");
            assert_eq!(t.tenant, "b", "a tenant in debt ran before its debt was paid");
            b_turns += 1;
            s.done(&t, t.entries, Duration::from_millis(90));
        }
        assert_eq!(b_turns, 20);
        // Alone, the indebted tenant runs at once (fast-forward), one turn.
        let alone = lanes(&["slow"]);
        assert_eq!(
            s.pick(&alone, Instant::now()).map(|t| t.tenant),
            Some("slow".to_string())
        );
        assert_eq!(s.pick(&alone, Instant::now()), None);
    }

    #[test]
    fn turns_are_sized_to_the_budget() {
        let mut s = scheduler();
        let ready = lanes(&["a", "b"]);
        let t = s.pick(&ready, Instant::now()).expect("turn");
        assert_eq!((t.tenant.as_str(), t.entries), ("a", FIRST_TURN_ENTRIES));
        // 8 entries in 20 ms: 2.5 ms each, so 40 fit in 100 ms.
        s.done(&t, 8, Duration::from_millis(20));
        let b = s.pick(&ready, Instant::now()).expect("b's turn");
        assert_eq!(b.tenant, "b");
        let t = s.pick(&ready, Instant::now()).expect("turn");
        assert_eq!((t.tenant.as_str(), t.entries), ("a", 40));
        // Fast tenants may run `per_tenant` turns at once, no more.
        assert!(s.pick(&ready, Instant::now()).is_some());
        s.cancel(&b);
        // Alone, a tenant plans for `ALONE_BUDGETS` budgets: nobody waits.
        let mut s = scheduler();
        let alone = lanes(&["a"]);
        let t = s.pick(&alone, Instant::now()).expect("turn");
        s.done(&t, 8, Duration::from_millis(20));
        let t = s.pick(&alone, Instant::now()).expect("turn");
        assert_eq!(t.entries, 40 * ALONE_BUDGETS as usize);
    }

    #[test]
    fn a_lane_fed_fast_waits_for_a_fuller_turn_and_one_fed_slowly_never_waits() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let lane = |n: u64| {
            vec![Lane {
                tenant: "a".to_string(),
                entries: n,
            }]
        };
        let mut s = scheduler();
        // Not measured yet: at once. Then 1 ms an entry: a turn alone is
        // 400 entries, cut to the scheduler's 256.
        let t = s.pick(&lane(8), at(0)).expect("a first turn at once");
        s.done(&t, 8, Duration::from_millis(8));
        // 100 entries came in 10 ms: they wait for more while more come
        // (looked at again when the quiet would end)...
        assert_eq!(s.pick(&lane(100), at(10)), None);
        assert_eq!(s.next_due(at(10)), Some(at(10) + LINGER_QUIET));
        assert_eq!(s.pick(&lane(150), at(20)), None);
        // ...until a full turn is there...
        let full = s.pick(&lane(300), at(30)).expect("a full turn at once");
        assert_eq!(full.entries, 256);
        s.done(&full, 256, Duration::from_millis(10));
        // ...or the wait is over, however fast they keep coming...
        let mut n = 44;
        for ms in (40..40 + LINGER.as_millis() as u64).step_by(10) {
            n += 5;
            assert_eq!(s.pick(&lane(n), at(ms)), None, "at {ms} ms");
        }
        let t = s.pick(&lane(n + 5), at(40) + LINGER).expect("the wait is over");
        s.done(&t, t.entries, Duration::from_millis(10));
        // ...or nothing new came for a while: the sender stopped.
        assert_eq!(s.pick(&lane(30), at(400)), None);
        assert_eq!(s.pick(&lane(30), at(410)), None);
        assert_eq!(s.next_due(at(410)), Some(at(400) + LINGER_QUIET));
        let t = s.pick(&lane(30), at(400) + LINGER_QUIET).expect("quiet: at once");
        // A take cut short by the turn's bytes leaves a full turn behind,
        // whatever its count.
        s.taken(&t, 200, 20);
        s.done(&t, 20, Duration::from_millis(10));
        assert!(s.pick(&lane(180), at(430)).is_some());

        // One entry every 300 ms: never waits.
        let mut s = scheduler();
        for i in 0..10 {
            let t = s.pick(&lane(1), at(300 * i)).expect("a turn at once");
            assert_eq!(s.next_due(at(300 * i)), None);
            s.done(&t, 1, Duration::from_millis(2));
        }
    }

    #[test]
    fn slow_tenants_leave_one_slot_to_the_others() {
        let mut s = scheduler();
        let ready = lanes(&["s1", "s2", "s3", "s4", "ok"]);
        let mut picked = Vec::new();
        while let Some(t) = s.pick(&ready, Instant::now()) {
            picked.push(t);
            if picked.len() > 10 {
                break;
            }
        }
        // Four slots: tenants not measured yet count as slow, so three of
        // them run and the fourth slot stays free for a tenant known to fit
        // its budget.
        let names: Vec<&str> = picked.iter().map(|t| t.tenant.as_str()).collect();
        assert_eq!(names, vec!["s1", "s2", "s3"]);
        for t in &picked {
            s.done(t, 1, Duration::from_secs(3));
        }
        let t = s.pick(&ready, Instant::now()).expect("turn");
        assert_eq!(t.tenant, "s4");
        let t = s.pick(&ready, Instant::now()).expect("turn");
        assert_eq!(t.tenant, "ok");
        s.done(&t, 8, Duration::from_millis(10));
        // "ok" is fast now: it runs again before the indebted ones.
        let t = s.pick(&ready, Instant::now()).expect("turn");
        assert_eq!(t.tenant, "ok");
    }

    proptest! {
        /// In simulated time, with tenants whose entries cost anything from
        /// 0.1 ms to 20 s each and always have more: a tenant within its
        /// budget whose entries arrive now and then (3 ms each, one every
        /// 250 ms) gets a turn soon after each arrives, once its first
        /// turn showed it fits its budget.
        #[test]
        fn a_tenant_within_budget_never_waits_behind_the_others(
            costs in proptest::collection::vec(100u64..20_000_000, 1..8),
            events in 50usize..400,
        ) {
            const EVERY: u64 = 250_000;
            let budget = micros(BUDGET) as u64;
            let mut s = Scheduler::new(BUDGET, 256, 4, 2);
            // Simulated time, which the lanes' waits for more entries read.
            let t0 = Instant::now();
            let lane = |t: &str| Lane { tenant: t.to_string(), entries: 1_000_000 };
            let mut now = 0u64;
            let mut running: Vec<(u64, Turn, usize, u64)> = Vec::new();
            // When the good tenant's waiting entry arrived, if one waits.
            let mut good_waiting = Some(0u64);
            let mut next_arrival = EVERY;
            let mut measured = false;
            let mut worst = 0u64;
            for _ in 0..events {
                let mut ready: Vec<Lane> = (0..costs.len()).map(|i| lane(&format!("t{i}"))).collect();
                if good_waiting.is_some() {
                    ready.push(lane("good"));
                }
                while running.len() < 4 && let Some(t) = s.pick(&ready, t0 + Duration::from_micros(now)) {
                    let cost = match t.tenant.strip_prefix('t') {
                        Some(i) => costs[i.parse::<usize>().unwrap_or(0)],
                        None => 3_000,
                    };
                    // The turn stops starting entries past two budgets.
                    let mut ran = 0usize;
                    let mut took = 0u64;
                    while ran < t.entries && (ran == 0 || took < 2 * budget) {
                        ran += 1;
                        took += cost;
                    }
                    if t.tenant == "good" {
                        ran = 1;
                        took = cost;
                        if let Some(since) = good_waiting.take() && measured {
                            worst = worst.max(now - since);
                        }
                        ready.retain(|l| l.tenant != "good");
                    }
                    running.push((now + took, t, ran, took));
                }
                prop_assert!(!running.is_empty(), "a slot idles while lanes have work");
                running.sort_by_key(|r| std::cmp::Reverse(r.0));
                let end = running.last().map_or(u64::MAX, |r| r.0);
                if next_arrival < end {
                    now = next_arrival;
                    next_arrival += EVERY;
                    good_waiting.get_or_insert(now);
                    continue;
                }
                let Some((end, turn, ran, took)) = running.pop() else { break };
                now = end;
                s.done(&turn, ran, Duration::from_micros(took));
                measured |= turn.tenant == "good";
            }
            prop_assert!(worst <= 4 * budget, "the good tenant waited {worst} µs for a turn");
        }
    }
}
