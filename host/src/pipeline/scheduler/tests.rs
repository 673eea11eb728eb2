use super::linger::{LINGER, LINGER_QUIET};
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
