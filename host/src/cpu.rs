//! CPU time by stage of the data path (`loggerhub_stage_cpu_seconds_total`,
//! and the bench's split of its CPU per record).
//!
//! A stage's time is the calling thread's CPU clock read around a poll of
//! its future (or around a closure): a future that moves between worker
//! threads is counted on each, and what other tasks do between its polls is
//! not. Stages nest: the time of an inner stage is taken out of the outer
//! one, so the counters add up to no more than the process's CPU (in
//! expectation, where polls are sampled: see below), and what none of them
//! holds (HTTP framing, the runtime, threads we do not own) is the
//! difference.
//!
//! The counters are process-wide: CPU is a property of the process, and the
//! code that spends it (a store's blocking closure, a guest call) should not
//! need a handle to the metrics to say so.
//!
//! The thread CPU clock is a system call (the scheduler's lock, not the
//! vDSO): at one small request per poll it was 14 % of the request threads'
//! CPU. So the intake's futures, polled tens of thousands of times a second
//! for a few microseconds each, are [`sampled`]: one poll in
//! [`SAMPLE_ONE_IN`], chosen at random, reads the clock and counts for that
//! many. The processor's and the stores' stages, fewer and longer, are
//! measured on every poll.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// Where a record's CPU goes, in data-path order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Request handlers: reading and decoding bodies, the gate, records
    /// into queue entries and their push.
    Ingest,
    /// The processor's takes and acks (and, in the bench's split, the
    /// local queue's writer thread).
    Queue,
    /// The processor's own work: the scheduler, plans, batches between
    /// stages, routes.
    Processor,
    /// Guest calls (parse, enrich, route).
    Wasm,
    Metadata,
    Raw,
    /// Adding, committing and merging the search index.
    Index,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Ingest,
        Stage::Queue,
        Stage::Processor,
        Stage::Wasm,
        Stage::Metadata,
        Stage::Raw,
        Stage::Index,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Queue => "queue",
            Stage::Processor => "processor",
            Stage::Wasm => "wasm",
            Stage::Metadata => "metadata",
            Stage::Raw => "raw",
            Stage::Index => "index",
        }
    }
}

/// CPU spent by each stage, ns.
pub struct Spent([AtomicU64; Stage::ALL.len()]);

/// This process's.
static SPENT: Spent = Spent::new();

/// One poll in this many of a [`sampled`] future is measured. 16 keeps the
/// estimate within a few percent over a second of requests (thousands of
/// measured polls) and the clock's cost under 1 %.
pub const SAMPLE_ONE_IN: u64 = 16;

thread_local! {
    /// CPU the stages nested in the one being measured on this thread
    /// spent, ns: the outer stage leaves it out.
    static NESTED_NS: Cell<u64> = const { Cell::new(0) };
    /// What a measured nanosecond counts for on this thread now: 1, or
    /// [`SAMPLE_ONE_IN`] inside a sampled poll that was drawn, or 0 inside
    /// one that was not (nothing nested in it reads the clock either).
    static WEIGHT: Cell<u64> = const { Cell::new(1) };
    /// Whether a stage is being measured on this thread: a sampled future
    /// nested in one is measured as its outer stage is, so that the outer
    /// one takes out exactly what the inner one counts.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    /// The draw's state (xorshift32); 0 until the thread's first draw
    /// seeds it from the thread, so that threads do not draw in step.
    static DICE: Cell<u32> = const { Cell::new(0) };
}

#[cfg(test)]
thread_local! {
    /// Sampled polls drawn on this thread, for the tests.
    static DRAWN: Cell<u64> = const { Cell::new(0) };
}

/// CPU `stage` has spent in this process, seconds.
pub fn spent(stage: Stage) -> f64 {
    SPENT.seconds(stage)
}

/// Runs `f`, counting the thread's CPU in it to `stage`.
pub fn measure<T>(stage: Stage, f: impl FnOnce() -> T) -> T {
    SPENT.measure(stage, f)
}

/// `fut`, with the CPU of each of its polls counted to `stage`.
pub fn measured<F: Future>(stage: Stage, fut: F) -> Measured<F> {
    SPENT.measured(stage, fut, false)
}

/// `fut`, with one poll in [`SAMPLE_ONE_IN`] measured and counted for that
/// many: for futures polled very often for very little (requests).
pub fn sampled<F: Future>(stage: Stage, fut: F) -> Measured<F> {
    SPENT.measured(stage, fut, true)
}

/// Whether this poll is one of the [`SAMPLE_ONE_IN`] measured.
fn draw() -> bool {
    DICE.with(|d| {
        let mut x = d.get();
        if x == 0 {
            use std::hash::{BuildHasher, RandomState};
            let seed = RandomState::new().hash_one(std::thread::current().id());
            x = (seed as u32) | 1;
        }
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        d.set(x);
        u64::from(x) % SAMPLE_ONE_IN == 0
    })
}

/// Sets a thread-local for as long as it lives, and puts the old value
/// back when dropped (also on a panic unwinding through the poll).
struct Set<T: Copy + 'static> {
    key: &'static std::thread::LocalKey<Cell<T>>,
    old: T,
}

impl<T: Copy + 'static> Set<T> {
    fn new(key: &'static std::thread::LocalKey<Cell<T>>, value: T) -> Set<T> {
        Set {
            key,
            old: key.replace(value),
        }
    }
}

impl<T: Copy + 'static> Drop for Set<T> {
    fn drop(&mut self) {
        self.key.set(self.old);
    }
}

/// The thread's CPU time, ns; 0 where the clock is refused (a sandbox),
/// which only makes the counters read 0.
fn thread_ns() -> u64 {
    use rustix::time::{ClockId, DynamicClockId, clock_gettime_dynamic};
    match clock_gettime_dynamic(DynamicClockId::Known(ClockId::ThreadCPUTime)) {
        Ok(t) => u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0),
        Err(_) => 0,
    }
}

impl Spent {
    const fn new() -> Spent {
        Spent([const { AtomicU64::new(0) }; Stage::ALL.len()])
    }

    fn seconds(&self, stage: Stage) -> f64 {
        self.0[stage as usize].load(Ordering::Relaxed) as f64 / 1e9
    }

    fn measure<T>(&self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let weight = WEIGHT.get();
        if weight == 0 {
            return f();
        }
        // Counted on drop, so that a panic in `f` (a turn's, caught above
        // it) leaves the outer stage's nesting as it was.
        struct Count<'a> {
            spent: &'a Spent,
            stage: Stage,
            weight: u64,
            outer: u64,
            start: u64,
            _measuring: Set<bool>,
        }
        impl Drop for Count<'_> {
            fn drop(&mut self) {
                let took = thread_ns().saturating_sub(self.start);
                let nested = NESTED_NS.replace(self.outer + took);
                let own = took.saturating_sub(nested).saturating_mul(self.weight);
                self.spent.0[self.stage as usize].fetch_add(own, Ordering::Relaxed);
            }
        }
        let _count = Count {
            spent: self,
            stage,
            weight,
            outer: NESTED_NS.replace(0),
            start: thread_ns(),
            _measuring: Set::new(&MEASURING, true),
        };
        f()
    }

    fn measured<F: Future>(&'static self, stage: Stage, fut: F, sampled: bool) -> Measured<F> {
        Measured {
            spent: self,
            stage,
            sampled,
            fut: Box::pin(fut),
        }
    }
}

pub struct Measured<F> {
    spent: &'static Spent,
    stage: Stage,
    sampled: bool,
    // Boxed so that `Measured` is `Unpin` without unsafe pin projection;
    // one allocation per measured future (a batch, a request), not per record.
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for Measured<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let (spent, stage) = (self.spent, self.stage);
        // Drawn only where nothing outer is measured: nested, it is
        // measured as the outer stage is (exactly, or not at all).
        if self.sampled && WEIGHT.get() == 1 && !MEASURING.get() {
            let weight = if draw() { SAMPLE_ONE_IN } else { 0 };
            #[cfg(test)]
            DRAWN.set(DRAWN.get() + u64::from(weight != 0));
            let _weight = Set::new(&WEIGHT, weight);
            return spent.measure(stage, || self.fut.as_mut().poll(cx));
        }
        spent.measure(stage, || self.fut.as_mut().poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(ms: u64) {
        burn_us(ms * 1_000);
    }

    fn burn_us(us: u64) {
        let start = thread_ns();
        let mut x = 0u64;
        while thread_ns() - start < us * 1_000 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    /// Nested stages are taken out of the outer one; a future's time
    /// between polls (sleeping) is not CPU.
    #[tokio::test]
    async fn stages_count_their_own_cpu_and_nesting_is_not_counted_twice() {
        static SPENT: Spent = Spent::new();
        SPENT.measure(Stage::Raw, || {
            burn(30);
            SPENT.measure(Stage::Index, || burn(20));
        });
        let raw = SPENT.seconds(Stage::Raw);
        let index = SPENT.seconds(Stage::Index);
        assert!((0.029..0.040).contains(&raw), "raw {raw}");
        assert!((0.019..0.030).contains(&index), "index {index}");

        SPENT
            .measured(
                Stage::Wasm,
                async {
                    burn(10);
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    burn(10);
                },
                false,
            )
            .await;
        let wasm = SPENT.seconds(Stage::Wasm);
        assert!((0.019..0.035).contains(&wasm), "wasm {wasm}");
        assert_eq!(SPENT.seconds(Stage::Queue), 0.0);
    }

    /// A sampled future's estimate is near its CPU, nested stages in it are
    /// taken out consistently, and one nested in an exact stage is exact.
    #[tokio::test]
    async fn a_sampled_future_counts_near_its_cpu() {
        static SPENT: Spent = Spent::new();
        // 4,000 polls of 20 us, 16 us of them the outer stage's own: about
        // 250 drawn, so the estimate is within a few sigma of 30 %.
        let polls = 4_000;
        SPENT
            .measured(
                Stage::Ingest,
                async {
                    for _ in 0..polls {
                        burn_us(16);
                        SPENT.measure(Stage::Queue, || burn_us(4));
                        tokio::task::yield_now().await;
                    }
                },
                true,
            )
            .await;
        let (ingest, queue) = (SPENT.seconds(Stage::Ingest), SPENT.seconds(Stage::Queue));
        assert!((0.045..0.090).contains(&ingest), "ingest {ingest}");
        assert!((0.011..0.024).contains(&queue), "queue {queue}");
        // One in 16 of the 4,001 polls read the clock (a few sigma either
        // way), not all of them.
        let drawn = DRAWN.get();
        assert!((150..360).contains(&drawn), "{drawn} polls of 4,001 drawn");

        SPENT.measure(Stage::Raw, || {
            burn_us(10_000);
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            let mut inner = SPENT.measured(Stage::Index, async { burn_us(5_000) }, true);
            assert!(Pin::new(&mut inner).poll(&mut cx).is_ready());
        });
        let (raw, index) = (SPENT.seconds(Stage::Raw), SPENT.seconds(Stage::Index));
        assert!((0.0095..0.014).contains(&raw), "raw {raw}");
        assert!((0.0048..0.008).contains(&index), "index {index}");
    }

    /// A poll that panics (a turn's panic is caught above it) leaves the
    /// thread measuring as before, drawn or not.
    #[test]
    fn a_panicking_poll_leaves_the_thread_as_it_was() {
        static SPENT: Spent = Spent::new();
        // 256 polls: none drawn has a chance of 7e-8.
        for _ in 0..256 {
            let caught = std::panic::catch_unwind(|| {
                let waker = futures::task::noop_waker();
                let mut cx = Context::from_waker(&waker);
                let mut fut = SPENT.measured(Stage::Ingest, async { panic!("a bad poll") }, true);
                let _ = Pin::new(&mut fut).poll(&mut cx);
            });
            assert!(caught.is_err());
            assert_eq!((WEIGHT.get(), MEASURING.get()), (1, false));
        }
        assert!(DRAWN.get() > 0, "no poll of 256 drawn");
        SPENT.measure(Stage::Raw, || burn(5));
        assert!(SPENT.seconds(Stage::Raw) >= 0.0049);
    }
}
