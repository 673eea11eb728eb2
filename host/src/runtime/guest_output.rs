//! A guest's stdout and stderr go to the host log, one event per line,
//! tagged with tenant, plugin and stream; nothing reaches the host's own
//! stdout. Lines are cut at `MAX_LINE` and counted against the tenant's
//! `LogBudget`, which the `host.log` import shares: a plugin that prints in
//! a loop fills no disk.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Longest line kept; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 4096;
/// Lines all of a tenant's plugins may log a second, over both streams and
/// `host.log`, and how many at once: enough to debug a plugin, not enough
/// for one tenant to fill the host's log.
pub const LOG_LINES_PER_SECOND: f64 = 50.0;
pub const LOG_BURST: f64 = 500.0;
/// How often a tenant's dropped lines are reported, as one line.
const DROP_REPORT: Duration = Duration::from_secs(10);
/// Tenants whose budget is kept; past it the full ones are forgotten.
const MAX_TENANTS: usize = 10_000;

/// Each tenant's budget of log lines (a token bucket), shared by every
/// instance of the process.
#[derive(Default)]
pub struct LogBudget {
    tenants: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    level: f64,
    at: Instant,
    dropped: u64,
    reported: Instant,
}

impl LogBudget {
    /// Whether `tenant` may log one more line now; a refused line is
    /// counted, and the count reported now and then.
    pub fn admit(&self, tenant: &str) -> bool {
        let now = Instant::now();
        let mut tenants = self.tenants.lock();
        if tenants.len() >= MAX_TENANTS && !tenants.contains_key(tenant) {
            tenants.retain(|_, b| b.level + now.duration_since(b.at).as_secs_f64() * LOG_LINES_PER_SECOND < LOG_BURST);
        }
        let b = tenants.entry(tenant.to_string()).or_insert(Bucket {
            level: LOG_BURST,
            at: now,
            dropped: 0,
            // The first drop is said at once.
            reported: now.checked_sub(DROP_REPORT).unwrap_or(now),
        });
        b.level = (b.level + now.duration_since(b.at).as_secs_f64() * LOG_LINES_PER_SECOND).min(LOG_BURST);
        b.at = now;
        if b.level >= 1.0 {
            b.level -= 1.0;
            return true;
        }
        b.dropped += 1;
        if now.duration_since(b.reported) >= DROP_REPORT {
            tracing::warn!(
                tenant,
                dropped = b.dropped,
                per_second = LOG_LINES_PER_SECOND,
                "plugin log lines dropped: over the tenant's budget"
            );
            b.dropped = 0;
            b.reported = now;
        }
        false
    }
}

#[derive(Clone)]
pub struct GuestOutput {
    pub tenant: String,
    pub plugin: String,
    pub stream: &'static str,
    pub budget: Arc<LogBudget>,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            out: self.clone(),
            line: Vec::new(),
        })
    }
}

struct LineWriter {
    out: GuestOutput,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        if !self.out.budget.admit(&self.out.tenant) {
            self.line.clear();
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let (tenant, plugin, stream) = (self.out.tenant.as_str(), self.out.plugin.as_str(), self.out.stream);
        tracing::info!(tenant, plugin, stream, message = %text.trim_end(), "plugin output");
        self.line.clear();
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        for &b in buf {
            if b == b'\n' {
                self.emit();
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.line.is_empty() {
            self.emit();
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_logs_its_burst_then_its_rate() {
        let budget = LogBudget::default();
        let burst = LOG_BURST as usize;
        assert_eq!((0..burst * 2).filter(|_| budget.admit("noisy")).count(), burst);
        assert!(budget.admit("quiet"), "another tenant's budget is its own");
        std::thread::sleep(Duration::from_millis(100));
        let refilled = (0..burst).filter(|_| budget.admit("noisy")).count();
        assert!(
            (4..=50).contains(&refilled),
            "{refilled} lines after 100 ms at 50/s: the rate, not the burst"
        );
    }
}
