//! The search for the records a plugin fails on, as a pure state machine:
//! the caller runs each part it is handed and reports how it went. A part
//! that fails is split in halves until the failing records stand alone;
//! those are retried once and then dead-lettered, the rest flow on. The
//! search is bounded: past `Budget`, a part that still fails is
//! dead-lettered as it stands.
//!
//! Finding k bad records among n takes about k·(log2(n/k) + 2) failed
//! calls (24 for 3 in 200); a plugin that fails on everything would take
//! two per record, and one that loops burns its whole CPU budget on each,
//! hence the bounds.

use std::time::Duration;

/// What one batch may spend narrowing failures down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Failed calls, all parts together.
    pub max_failed_calls: usize,
    /// Time spent in failed calls, all parts together.
    pub max_failing_time: Duration,
    /// Tries of a single record before it is dead-lettered.
    pub attempts: usize,
}

pub const BUDGET: Budget = Budget {
    max_failed_calls: 64,
    max_failing_time: Duration::from_secs(30),
    attempts: 2,
};

/// What happened to the part just tried.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled<T> {
    /// It went through: here it is back.
    Passed(Vec<T>),
    /// It failed and was split, or will be tried again: nothing to do.
    Pending,
    /// It failed for good: dead-letter it.
    Failed(Vec<T>),
}

pub struct Halving<T> {
    /// Parts still to try, the next one last.
    parts: Vec<Vec<T>>,
    /// The part being tried, and how many times it failed.
    current: Option<(Vec<T>, usize)>,
    budget: Budget,
    failed_calls: usize,
    failing_time: Duration,
}

impl<T> Halving<T> {
    pub fn new(items: Vec<T>, budget: Budget) -> Self {
        let parts = if items.is_empty() { Vec::new() } else { vec![items] };
        Halving {
            parts,
            current: None,
            budget,
            failed_calls: 0,
            failing_time: Duration::ZERO,
        }
    }

    /// The part to try next, or None when every record is settled. Parts
    /// come in the batch's order, so what passes keeps its order.
    pub fn next(&mut self) -> Option<&[T]> {
        if self.current.is_none() {
            self.current = Some((self.parts.pop()?, 0));
        }
        self.current.as_ref().map(|(part, _)| part.as_slice())
    }

    /// Reports the outcome of the part `next` gave: `Ok` when it went
    /// through, `Err(spent)` when it failed after `spent`.
    pub fn report(&mut self, outcome: Result<(), Duration>) -> Settled<T> {
        let Some((mut part, failures)) = self.current.take() else {
            return Settled::Pending;
        };
        let spent = match outcome {
            Ok(()) => return Settled::Passed(part),
            Err(spent) => spent,
        };
        self.failed_calls += 1;
        self.failing_time += spent;
        let failures = failures + 1;
        let budget_left =
            self.failed_calls <= self.budget.max_failed_calls && self.failing_time <= self.budget.max_failing_time;
        if part.len() > 1 && budget_left {
            let back = part.split_off(part.len() / 2);
            self.parts.push(back);
            self.parts.push(part);
            return Settled::Pending;
        }
        if part.len() == 1 && budget_left && failures < self.budget.attempts {
            self.current = Some((part, failures));
            return Settled::Pending;
        }
        Settled::Failed(part)
    }

    /// Failed calls so far.
    #[cfg(test)]
    pub fn failed_calls(&self) -> usize {
        self.failed_calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Runs the search with a plugin that fails on any part holding a bad
    /// record; returns (passed, dead-lettered parts, calls, failed calls).
    fn run(
        n: usize,
        bad: &BTreeSet<usize>,
        spent: Duration,
        budget: Budget,
    ) -> (Vec<usize>, Vec<Vec<usize>>, usize, usize) {
        let mut h = Halving::new((0..n).collect::<Vec<_>>(), budget);
        let (mut passed, mut dead, mut calls) = (Vec::new(), Vec::new(), 0);
        while let Some(part) = h.next() {
            calls += 1;
            let fails = part.iter().any(|i| bad.contains(i));
            match h.report(if fails { Err(spent) } else { Ok(()) }) {
                Settled::Passed(p) => passed.extend(p),
                Settled::Failed(p) => dead.push(p),
                Settled::Pending => {}
            }
        }
        let failed = h.failed_calls();
        (passed, dead, calls, failed)
    }

    #[test]
    fn three_bad_records_in_two_hundred() {
        let bad: BTreeSet<usize> = [5, 77, 150].into();
        let (passed, dead, _, failed) = run(200, &bad, Duration::from_millis(1), BUDGET);
        assert_eq!(passed.len(), 197);
        assert_eq!(dead, vec![vec![5], vec![77], vec![150]]);
        assert!(failed <= 30, "{failed} failed calls");
    }

    #[test]
    fn a_plugin_that_fails_on_everything_is_bounded() {
        let bad: BTreeSet<usize> = (0..300).collect();
        let (passed, dead, _, failed) = run(300, &bad, Duration::from_millis(1), BUDGET);
        assert!(passed.is_empty());
        assert_eq!(dead.iter().map(Vec::len).sum::<usize>(), 300);
        assert!(dead.len() <= 66, "{} letters", dead.len());
        assert!(failed <= BUDGET.max_failed_calls + 10, "{failed}");
        // A plugin that loops burns its CPU budget on every call: the time
        // bound stops the search after a few calls.
        let (_, dead, _, failed) = run(300, &bad, Duration::from_secs(10), BUDGET);
        assert!(failed <= 4 + 10, "{failed}");
        assert_eq!(dead.iter().map(Vec::len).sum::<usize>(), 300);
    }

    #[test]
    fn nothing_to_do() {
        let mut h: Halving<u8> = Halving::new(Vec::new(), BUDGET);
        assert!(h.next().is_none());
    }

    proptest! {
        // Every record either passes or is dead-lettered, exactly once, and
        // passing records keep their order; no bad record passes; within
        // the budget, exactly the bad records are dead-lettered, one by
        // one; the calls stay within the budget plus one try per pending
        // part (at most one per level of halving).
        #[test]
        fn every_record_settles_once_within_the_call_budget(
            n in 1usize..400,
            bad in proptest::collection::btree_set(0usize..400, 0..40),
            spent_ms in prop_oneof![Just(1u64), 0u64..2000],
        ) {
            let bad: BTreeSet<usize> = bad.into_iter().filter(|i| *i < n).collect();
            let (passed, dead, calls, failed) = run(n, &bad, Duration::from_millis(spent_ms), BUDGET);
            let mut seen: Vec<usize> = passed.iter().copied().chain(dead.iter().flatten().copied()).collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
            prop_assert!(passed.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(passed.iter().all(|i| !bad.contains(i)));
            let depth = (usize::BITS - n.leading_zeros()) as usize + 1;
            prop_assert!(failed <= BUDGET.max_failed_calls + 1 + depth, "{} failed calls", failed);
            prop_assert!(calls <= 2 * failed + 1, "{} calls for {} failures", calls, failed);
            if failed <= BUDGET.max_failed_calls && Duration::from_millis(spent_ms * failed as u64) <= BUDGET.max_failing_time {
                let singles: BTreeSet<usize> = dead.iter().flatten().copied().collect();
                prop_assert!(dead.iter().all(|d| d.len() == 1));
                prop_assert_eq!(singles, bad);
            }
        }
    }
}
