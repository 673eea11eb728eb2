//! CPU time by stage of the data path (`loggerhub_stage_cpu_seconds_total`,
//! and the bench's split of its CPU per record).
//!
//! A stage's time is the calling thread's CPU clock read around each poll
//! of its future (or around a closure): a future that moves between worker
//! threads is counted on each, and what other tasks do between its polls is
//! not. Stages nest: the time of an inner stage is taken out of the outer
//! one, so the counters add up to no more than the process's CPU, and what
//! none of them holds (HTTP framing, the runtime, threads we do not own) is
//! the difference.
//!
//! The counters are process-wide: CPU is a property of the process, and the
//! code that spends it (a store's blocking closure, a guest call) should not
//! need a handle to the metrics to say so.

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

thread_local! {
    /// CPU the stages nested in the one being measured on this thread
    /// spent, ns: the outer stage leaves it out.
    static NESTED_NS: Cell<u64> = const { Cell::new(0) };
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
    SPENT.measured(stage, fut)
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
        // Counted on drop, so that a panic in `f` (a turn's, caught above
        // it) leaves the outer stage's nesting as it was.
        struct Count<'a> {
            spent: &'a Spent,
            stage: Stage,
            outer: u64,
            start: u64,
        }
        impl Drop for Count<'_> {
            fn drop(&mut self) {
                let took = thread_ns().saturating_sub(self.start);
                let nested = NESTED_NS.replace(self.outer + took);
                self.spent.0[self.stage as usize].fetch_add(took.saturating_sub(nested), Ordering::Relaxed);
            }
        }
        let _count = Count {
            spent: self,
            stage,
            outer: NESTED_NS.replace(0),
            start: thread_ns(),
        };
        f()
    }

    fn measured<F: Future>(&'static self, stage: Stage, fut: F) -> Measured<F> {
        Measured {
            spent: self,
            stage,
            fut: Box::pin(fut),
        }
    }
}

pub struct Measured<F> {
    spent: &'static Spent,
    stage: Stage,
    // Boxed so that `Measured` is `Unpin` without unsafe pin projection;
    // one allocation per measured future (a batch, a request), not per record.
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for Measured<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let (spent, stage) = (self.spent, self.stage);
        spent.measure(stage, || self.fut.as_mut().poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(ms: u64) {
        let start = thread_ns();
        let mut x = 0u64;
        while thread_ns() - start < ms * 1_000_000 {
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
            .measured(Stage::Wasm, async {
                burn(10);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                burn(10);
            })
            .await;
        let wasm = SPENT.seconds(Stage::Wasm);
        assert!((0.019..0.035).contains(&wasm), "wasm {wasm}");
        assert_eq!(SPENT.seconds(Stage::Queue), 0.0);
    }
}
