//! The server under test and what the bench reads of it: its process
//! (CPU time and peak RSS from /proc, CPU by stage), its metrics, and the
//! plan checks' cost timed alone.

use std::collections::BTreeMap;
use std::process::Child;
use std::sync::Arc;
use std::time::Instant;

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
    let cpu = stat_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Ok((cpu, hwm_kb))
}

pub async fn metric(http: &reqwest::Client, url: &str, name: &str) -> anyhow::Result<f64> {
    let text = http.get(format!("{url}/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0))
}

/// The server's CPU by stage at one moment, seconds: its own counters
/// (`loggerhub_stage_cpu_seconds_total`, on the runtime's threads) and
/// each of its threads, with what it works for.
pub struct CpuSnapshot {
    stages: BTreeMap<String, f64>,
    threads: BTreeMap<u32, (&'static str, f64)>,
}

/// What a thread works for, by its name (`comm`, cut at 15 bytes): a
/// store's own threads, or the runtime's (whose time the counters split).
fn thread_stage(comm: &str) -> &'static str {
    const BY_NAME: [(&str, &str); 7] = [
        ("queue-writer", "queue"),
        ("sqlx-sqlite-wor", "metadata"),
        ("thrd-tantivy-in", "index"),
        ("docstore-compre", "index"),
        ("tantivy-warm-gc", "index"),
        ("segment_updater", "merges"),
        ("merge_thread_", "merges"),
    ];
    BY_NAME
        .iter()
        .find(|(p, _)| comm.starts_with(p))
        .map_or("runtime", |(_, s)| *s)
}

pub async fn cpu_snapshot(http: &reqwest::Client, url: &str, pid: u32) -> anyhow::Result<CpuSnapshot> {
    let text = http.get(format!("{url}/metrics")).send().await?.text().await?;
    let stages = text
        .lines()
        .filter_map(|l| l.strip_prefix("loggerhub_stage_cpu_seconds_total{stage=\""))
        .filter_map(|l| {
            let (stage, rest) = l.split_once("\"} ")?;
            Some((stage.to_string(), rest.trim().parse().ok()?))
        })
        .collect();
    let mut threads = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?.path();
        // A thread may end between the listing and the read.
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.join("comm")),
            std::fs::read_to_string(task.join("stat")),
        ) else {
            continue;
        };
        let Some(tid) = task.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()) else {
            continue;
        };
        threads.insert(tid, (thread_stage(comm.trim()), stat_cpu_seconds(&stat)));
    }
    Ok(CpuSnapshot { stages, threads })
}

/// User and system CPU of a /proc `stat` line, seconds.
fn stat_cpu_seconds(stat: &str) -> f64 {
    // Fields after the command name (which may hold spaces) start at ')'.
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // CLK_TCK is 100 on Linux.
    (tick(11) + tick(12)) / 100.0
}

/// CPU per record by stage between two snapshots, µs, in data-path order.
/// The counters split the runtime's threads; what they leave is `http and
/// runtime` (HTTP framing, the scheduler of tasks, file writes on the
/// blocking pool). Threads that ended during the run are counted to the
/// index: Tantivy starts its indexing and doc-store threads afresh at each
/// commit, and nothing else of ours ends threads under load.
pub fn cpu_split(before: &CpuSnapshot, after: &CpuSnapshot, total_cpu: f64, records: u64) -> String {
    let mut threads: BTreeMap<&str, f64> = BTreeMap::new();
    for (tid, (stage, secs)) in &after.threads {
        let was = before.threads.get(tid).map_or(0.0, |(_, s)| *s);
        *threads.entry(stage).or_default() += secs - was;
    }
    let ended = (total_cpu - threads.values().sum::<f64>()).max(0.0);
    let mut by: BTreeMap<&str, f64> = BTreeMap::new();
    for (stage, secs) in &after.stages {
        *by.entry(stage.as_str()).or_default() += secs - before.stages.get(stage).copied().unwrap_or(0.0);
    }
    let counted: f64 = by.values().sum();
    for (stage, secs) in &threads {
        if *stage == "runtime" {
            *by.entry("http and runtime").or_default() += secs - counted;
        } else {
            *by.entry(stage).or_default() += secs;
        }
    }
    *by.entry("index").or_default() += ended;
    let us = |secs: f64| secs * 1e6 / records.max(1) as f64;
    [
        "http and runtime",
        "ingest",
        "queue",
        "processor",
        "wasm",
        "metadata",
        "raw",
        "index",
        "merges",
    ]
    .iter()
    .map(|s| format!("{s} {:.1}", us(by.get(s).copied().unwrap_or(0.0))))
    .collect::<Vec<_>>()
    .join(", ")
}
