//! Tests that time a healthy tenant beside a hostile one, against the
//! issues' latency bounds. Their own binary: cargo runs test binaries one
//! after another, so no other test of the suite runs beside these, and
//! `timing_exclusive` keeps them from running beside each other.
//! (In the `it` binary a CI run once measured 3.6 s where alone it was
//! 1.3 s: the test beside it had the other core.)

// The harness of the `it` binary, of which these tests use a part.
#[path = "../it/common/mod.rs"]
#[allow(dead_code)]
mod common;

mod fairness;
mod flood;

/// Tests that measure latency against a bound take the machine to
/// themselves: two of them at once on two cores measure each other.
/// The disk is flushed first: the test before may have left gigabytes
/// to write back (a million-log backlog), and the kernel's writeback
/// stalls the fsyncs of the stores the next test times.
pub async fn timing_exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let guard = TIMING.lock().await;
    let synced = tokio::task::spawn_blocking(|| std::process::Command::new("sync").status())
        .await
        .expect("sync task");
    assert!(synced.as_ref().is_ok_and(|s| s.success()), "sync failed: {synced:?}");
    guard
}
