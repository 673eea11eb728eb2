//! Waiting for a fuller turn: a lane whose entries come in fast and
//! that holds less than a full turn waits for more, so that one record a
//! request is not committed to every store a few hundred at a time.

use std::time::{Duration, Instant};

use super::{LaneState, Scheduler, Turn, turn_entries};

/// How long a lane holding less than a full turn waits for more before
/// its turn starts anyway. Each turn is a commit in every store, and a
/// commit's cost barely depends on its size (an index segment to write
/// and merge, a transaction): records sent one per request would
/// otherwise be stored a few hundred at a time, at twice the CPU per
/// record of full turns. Search sees a busy sender's records up to this
/// much later (plus any wait for a slot), as with OpenSearch's refresh
/// interval or Quickwit's commit timeout.
pub(super) const LINGER: Duration = Duration::from_millis(250);
/// Only a lane whose entries arrive fast enough to bring this many in a
/// [`LINGER`] waits: a tenant sending now and then gains nothing from
/// waiting, and its records are searchable without the delay.
const LINGER_GAIN: f64 = 16.0;
/// A lane that got nothing new for this long stops waiting: its sender
/// paused or stopped, and what came is stored now rather than at the end
/// of [`LINGER`].
pub(super) const LINGER_QUIET: Duration = Duration::from_millis(20);
/// Over how long a lane's arrival rate is averaged.
const RATE_WINDOW: Duration = Duration::from_millis(100);

impl Scheduler {
    /// Whether a lane waits for more entries: they arrive fast enough
    /// that waiting makes its turn bigger, it holds less than a full turn,
    /// it has waited less than [`LINGER`] so far and got more within
    /// [`LINGER_QUIET`]. A tenant not measured yet never waits (its first
    /// turn is small anyway).
    pub(super) fn lingers(&self, lane: &LaneState, entries: u64, alone: bool, now: Instant) -> bool {
        lingering(lane)
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
            .filter(|l| l.in_round && lingering(l))
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
}

impl LaneState {
    /// A look saw `entries` waiting: what came since the last look goes
    /// into the arrival rate. (Looks in the same instant, a pick after
    /// another, add nothing.)
    pub(super) fn observe(&mut self, entries: u64, now: Instant) {
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

/// Whether a lane's entries come in fast enough for it to wait for more
/// (and its last take did not show a full turn already).
pub(super) fn lingering(lane: &LaneState) -> bool {
    lane.cost_per_entry.is_some() && !lane.full && lane.arrivals * LINGER.as_secs_f64() >= LINGER_GAIN
}
