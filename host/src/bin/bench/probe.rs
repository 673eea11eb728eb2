//! The server under test and what the bench reads of it: its process
//! (CPU time and peak RSS from /proc), its metrics, and the plan checks'
//! cost timed alone.

use std::process::Child;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

pub const ADMIN: &str = "bench-admin-token";

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seconds the accept path's plan checks take for one request of `batch`
/// records, timed alone: the rate buckets' check and take and the daily
/// volume's look and count (`usage::Meter`), on the backends the server
/// uses: in the process over SQLite, or Redis and PostgreSQL when
/// `REDIS_URL` and `DATABASE_URL` are set (`make bench-distributed`).
pub async fn plan_checks_cost(batch: usize) -> anyhow::Result<(f64, &'static str)> {
    use loggerhub::ingest::rate::shared::RedisRates;
    use loggerhub::ingest::rate::{LocalRates, Rate, RateLimiter};
    use loggerhub::stores::MetadataStore;
    use loggerhub::usage::{Meter, Usage};
    let dir = std::env::temp_dir().join(format!("loggerhub-bench-meter-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (rates, store, rounds, on): (Box<dyn RateLimiter>, Arc<dyn MetadataStore>, u32, &'static str) =
        match (std::env::var("REDIS_URL"), std::env::var("DATABASE_URL")) {
            (Ok(redis), Ok(db)) if db.starts_with("postgres") => (
                Box::new(RedisRates::open(&redis, &format!("bench{}", std::process::id())).await?),
                Arc::new(loggerhub::stores::postgres::PgStore::open(&db).await?),
                5_000,
                "Redis and PostgreSQL",
            ),
            _ => (
                Box::new(LocalRates::default()),
                Arc::new(loggerhub::stores::sqlite::SqliteStore::open(&dir.join("m.db")).await?),
                200_000,
                "in the process and SQLite",
            ),
        };
    let meter = Meter::new(store, Arc::new(loggerhub::telemetry::Metrics::default()));
    // Never refused: the cost of letting a request through is what every
    // accepted request pays.
    let rate = Rate {
        logs_per_second: 1 << 40,
        bytes_per_second: 1 << 50,
        burst_seconds: 10,
    };
    let bytes = 300 * batch as u64;
    let started = Instant::now();
    for i in 0..rounds {
        let tenant = if i % 2 == 0 { "benchchecks" } else { "benchother" };
        let today = meter.today(tenant).await;
        std::hint::black_box(today);
        rates.check(tenant, rate, 1, bytes).await?;
        rates.take(tenant, rate, batch as u64, bytes).await?;
        meter.record(
            tenant,
            Usage {
                logs: batch as u64,
                bytes,
                ..Usage::default()
            },
        );
    }
    let took = started.elapsed().as_secs_f64() / f64::from(rounds);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((took, on))
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn proc_stat(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("bad /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for l in status
        .lines()
        .filter(|l| l.starts_with("RssAnon") || l.starts_with("RssFile"))
    {
        eprintln!("  {}", l.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    let hwm_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    // CLK_TCK is 100 on Linux.
    Ok((ticks / 100.0, hwm_kb))
}

pub async fn metric(http: &reqwest::Client, url: &str, name: &str) -> anyhow::Result<f64> {
    let text = http.get(format!("{url}/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0))
}
