//! `make bench`: the end-to-end benchmark.
//!
//! Starts a `loggerhub serve` (the binary given with `--server`) over a
//! fresh data dir, creates a tenant, sends `--logs` records of ~300 bytes in
//! NDJSON batches over `--connections` HTTP connections, and reports:
//! logs/s accepted (until the last 202), logs/s end to end (until every log
//! is processed and searchable), the server's peak RSS, and the share of its
//! CPU time spent inside WASM stages. It also times the plan checks on the
//! accept path (rate buckets, daily volume) alone, against the time of a
//! request; with `--expired N`, the run happens while retention deletes N
//! expired records. `--protocol` sends the same records as Elasticsearch
//! bulk, OTLP/HTTP protobuf or syslog over TCP instead of NDJSON.
//!
//! Then, in the same run, the **stores alone**: the same records written
//! straight into the same embedded stores (raw, then index and metadata
//! side by side, as the pipeline's sink does), in the same entries and
//! turns, with no HTTP, queue, WASM or scheduler. End to end is reported
//! as a share of it, and the server's CPU per record beside the stores'
//! own: a ratio that holds across machines where absolute figures do not.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "LoggerHub end-to-end benchmark")]
struct Args {
    /// The loggerhub binary to benchmark.
    #[arg(long)]
    server: PathBuf,
    /// Records to send.
    #[arg(long, default_value_t = 1_000_000)]
    logs: u64,
    /// Records per request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Pipeline workers of the server.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Data dir (default: a fresh temp dir, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The protocol the records are sent in: `ndjson` (POST /v1/logs),
    /// `bulk` (Elasticsearch bulk), `otlp` (OTLP/HTTP protobuf) or `syslog`
    /// (RFC 5424 over TCP, octet-counted).
    #[arg(long, value_enum, default_value_t = Protocol::Ndjson)]
    protocol: Protocol,
    /// Records to load before the measured run, stamped so that they pass
    /// the tenant's retention (two days on this run's plan) just as the
    /// run starts: retention deletes them while it runs (the server sweeps
    /// every second).
    #[arg(long, default_value_t = 0)]
    expired: u64,
    /// A baseline (`docs/bench-baseline.json`) to hold the run to: it fails
    /// when end to end's share of the stores alone, or the server's CPU per
    /// record over the stores' own, is more than 10 % worse than the
    /// baseline's (`make bench-check`).
    #[arg(long)]
    check: Option<PathBuf>,
}

/// What `--check` compares: the figures that hold across machines better
/// than absolute throughput.
#[derive(serde::Deserialize)]
struct BenchBaseline {
    /// End to end's share of the stores alone (0 to 1).
    share: f64,
    /// The server's CPU per record over the stores' own CPU per record in
    /// the same run: the machine's speed cancels out (a slower hour made
    /// both 20 % dearer).
    cpu_ratio: f64,
}

/// How much worse than the baseline a figure may be.
const CHECK_TOLERANCE: f64 = 0.10;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Protocol {
    Ndjson,
    Bulk,
    Otlp,
    Syslog,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Ndjson => "NDJSON, POST /v1/logs",
            Protocol::Bulk => "Elasticsearch bulk, POST /_bulk",
            Protocol::Otlp => "OTLP/HTTP protobuf, POST /otlp/v1/logs",
            Protocol::Syslog => "syslog RFC 5424 over TCP, octet-counted",
        }
    }

    /// The route and content type an HTTP protocol posts to.
    fn route(self) -> (&'static str, &'static str) {
        match self {
            Protocol::Ndjson | Protocol::Syslog => ("/v1/logs", "application/x-ndjson"),
            Protocol::Bulk => ("/_bulk", "application/x-ndjson"),
            Protocol::Otlp => ("/otlp/v1/logs", "application/x-protobuf"),
        }
    }

    /// A batch of `records` (payload JSON lines) as this protocol sends it.
    fn body(self, records: &[String], key: &str) -> Vec<u8> {
        let docs = || {
            records
                .iter()
                .map(|r| serde_json::from_str::<Value>(r).unwrap_or_default())
        };
        match self {
            Protocol::Ndjson => records.join("\n").into_bytes(),
            Protocol::Bulk => records
                .iter()
                .flat_map(|r| ["{\"index\":{\"_index\":\"bench\"}}\n", r.as_str(), "\n"])
                .collect::<String>()
                .into_bytes(),
            Protocol::Otlp => otlp_body(docs()),
            Protocol::Syslog => docs()
                .map(|d| {
                    let frame = format!(
                        "<{}>1 {} web-01 {} - - [loggerhub@32473 key=\"{key}\"] {}",
                        8 + syslog_severity(d["level"].as_str().unwrap_or("")),
                        d["timestamp"].as_str().unwrap_or("-"),
                        d["service"].as_str().unwrap_or("-"),
                        d["message"].as_str().unwrap_or("")
                    );
                    format!("{} {frame}", frame.len())
                })
                .collect::<String>()
                .into_bytes(),
        }
    }
}

fn syslog_severity(level: &str) -> u8 {
    match level {
        "ERROR" => 3,
        "WARN" => 4,
        _ => 6,
    }
}

/// The records as one OTLP request, a resource per service.
fn otlp_body(docs: impl Iterator<Item = Value>) -> Vec<u8> {
    use loggerhub::ingest::otlp::proto::*;
    use prost::Message;
    let text = |s: &str| AnyValue {
        value: Some(Any::StringValue(s.to_string())),
    };
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(text(v)),
    };
    let mut by_service: std::collections::BTreeMap<String, Vec<LogRecord>> = Default::default();
    for d in docs {
        let ns = loggerhub::model::parse_ts(d["timestamp"].as_str().unwrap_or("")).unwrap_or(0);
        let mut attributes: Vec<KeyValue> = d["attributes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| kv(k, v.as_str().unwrap_or("")))
            .collect();
        attributes.push(kv("exception.stacktrace", d["full_log"].as_str().unwrap_or("")));
        by_service
            .entry(d["service"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(LogRecord {
                time_unix_nano: u64::try_from(ns).unwrap_or(0),
                severity_text: d["level"].as_str().unwrap_or("").into(),
                body: Some(text(d["message"].as_str().unwrap_or(""))),
                attributes,
                ..LogRecord::default()
            });
    }
    ExportLogsServiceRequest {
        resource_logs: by_service
            .into_iter()
            .map(|(service, log_records)| ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", &service)],
                }),
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records,
                }],
            })
            .collect(),
    }
    .encode_to_vec()
}

const ADMIN: &str = "bench-admin-token";

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bench's start, which every stamp counts from.
fn started_ns() -> i64 {
    static NOW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *NOW.get_or_init(loggerhub::model::now_ns)
}

/// Record `i`'s time: from `base` (unix ns), `step` ns apart.
fn stamp(i: u64, base: i64, step: i64) -> String {
    loggerhub::model::format_ts(base + i64::try_from(i).unwrap_or(0) * step)
}

/// One record of about 300 bytes, varied enough to index like real logs,
/// stamped from a day before the run a millisecond apart: inside every
/// retention and the future grace (1M records span 17 minutes).
fn record(i: u64) -> String {
    record_at(i, stamp(i, started_ns() - loggerhub::model::DAY_NS, 1_000_000))
}

fn record_at(i: u64, timestamp: String) -> String {
    const LEVELS: [&str; 4] = ["INFO", "INFO", "WARN", "ERROR"];
    const PATHS: [&str; 4] = ["/api/v1/orders", "/api/v1/users", "/api/v1/payments", "/healthz"];
    json!({
        "service": format!("svc-{}", i % 8),
        "level": LEVELS[(i % 4) as usize],
        "timestamp": timestamp,
        "message": format!("GET {}/{} completed with status {} in {}ms for user {} session s{:08x}",
            PATHS[(i % 4) as usize], i % 100_000, if i.is_multiple_of(17) { 500 } else { 200 }, i % 900, i % 10_000, i.wrapping_mul(2_654_435_761) % 0xffff_ffff),
        "full_log": format!("request id r{i:010} handled by worker {} upstream latency {}ms", i % 32, i % 250),
        "attributes": {"region": if i.is_multiple_of(2) { "eu-west-1" } else { "us-east-1" }, "host": format!("web-{:02}", i % 16)},
    })
    .to_string()
}

/// Bytes of entries one turn takes (`pipeline::TURN_BODY_BYTES`).
const TURN_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What the stores alone did: seconds, and CPU seconds of this process.
struct Baseline {
    secs: f64,
    cpu: f64,
}

/// Writes `total` records, made as the run's were, into fresh embedded
/// stores under `dir`: entries of `batch` records (each its own raw
/// object), as many entries a turn as the pipeline takes (4 MiB), index and
/// metadata side by side. The records are built before the clock starts.
async fn stores_alone(dir: &std::path::Path, total: u64, batch: usize) -> anyhow::Result<Baseline> {
    use loggerhub::model::LogRecord;
    use loggerhub::search::IndexRow;
    use loggerhub::stores::MetaRow;

    let backends = loggerhub::config::Backends::embedded(dir);
    let meta = loggerhub::stores::open_metadata(&backends.metadata).await?;
    let raw = loggerhub::stores::raw::RawStore::open(&backends.raw)?;
    let index = loggerhub::search::open(&backends.index)?;
    meta.create_tenant("bench", "unlimited").await?;
    let now = loggerhub::model::now_ns();
    let mut entries: Vec<(ulid::Ulid, Vec<LogRecord>)> = Vec::new();
    let mut entry_bytes = 0;
    for first in (0..total).step_by(batch) {
        let batch_id = ulid::Ulid::new();
        let lines: Vec<String> = (first..(first + batch as u64).min(total)).map(record).collect();
        entry_bytes = lines.iter().map(|l| l.len() + 1).sum();
        let parsed = loggerhub_codec::payload::parse_json(lines.join("\n").as_bytes())
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let records = parsed
            .into_iter()
            .enumerate()
            .map(|(j, r)| LogRecord {
                id: loggerhub::model::ids::record_id(batch_id, j).to_string(),
                tenant: "bench".into(),
                service: r.service,
                level: r.level,
                timestamp: r.timestamp,
                received_at: now,
                message: r.message,
                full_log: r.full_log,
                language: r.language,
                attributes: r.attributes,
                raw_path: None,
            })
            .collect();
        entries.push((batch_id, records));
    }
    let per_turn = (TURN_BODY_BYTES / entry_bytes.max(1)).max(1);
    let (cpu0, _) = proc_stat(std::process::id())?;
    let started = Instant::now();
    for turn in entries.chunks_mut(per_turn) {
        let keys = futures::future::try_join_all(turn.iter().map(|(batch_id, records)| {
            let raw = &raw;
            async move {
                let refs: Vec<&LogRecord> = records.iter().collect();
                raw.put_batch("bench", *batch_id, &refs).await
            }
        }))
        .await?;
        for ((_, records), key) in turn.iter_mut().zip(keys) {
            for (n, r) in records.iter_mut().enumerate() {
                r.raw_path = Some(format!("{key}#{}", n + 1));
            }
        }
        let all: Vec<&LogRecord> = turn.iter().flat_map(|(_, records)| records.iter()).collect();
        let rows: Vec<IndexRow<'_>> = all
            .iter()
            .map(|r| IndexRow {
                record: r,
                may_exist: false,
            })
            .collect();
        let metas: Vec<MetaRow<'_>> = all
            .iter()
            .map(|r| MetaRow {
                record: r,
                indexed: true,
            })
            .collect();
        let (indexed, stored) = tokio::join!(index.index("bench", &rows), meta.insert_logs(&metas));
        indexed?;
        stored?;
    }
    let secs = started.elapsed().as_secs_f64();
    let (cpu1, _) = proc_stat(std::process::id())?;
    Ok(Baseline { secs, cpu: cpu1 - cpu0 })
}

/// Retention of the run's plan with `--expired`.
const EXPIRING_RETENTION_SECS: i64 = 2 * 86_400;

/// Sends `n` records that pass the plan's retention once the preload is
/// done (its time guessed generously: 10,000 records a second, plus 5 s),
/// a microsecond apart, and waits until they are processed: retention then
/// has them to delete while the run goes. (Ingest refuses records already
/// past the retention, so they cannot be sent expired.)
async fn preload_expired(http: &reqwest::Client, url: &str, key: &str, n: u64, batch: usize) -> anyhow::Result<()> {
    let lead = 5_000_000_000 + i64::try_from(n).unwrap_or(i64::MAX / 200_000) * 100_000;
    let base = loggerhub::model::now_ns() - EXPIRING_RETENTION_SECS * 1_000_000_000 + lead
        - i64::try_from(n).unwrap_or(0) * 1_000;
    let mut sent = 0;
    while sent < n {
        let body: Vec<String> = (sent..(sent + batch as u64).min(n))
            .map(|i| record_at(i, stamp(i, base, 1_000)))
            .collect();
        let count = body.len() as u64;
        loop {
            let r = http
                .post(format!("{url}/v1/logs"))
                .bearer_auth(key)
                .header("content-type", "application/x-ndjson")
                .body(body.join("\n"))
                .send()
                .await?;
            match r.status().as_u16() {
                202 => break,
                429 | 503 => tokio::time::sleep(Duration::from_millis(50)).await,
                s => bail!("preload: unexpected status {s}"),
            }
        }
        sent += count;
    }
    // Processed, or already deleted by the sweeps: either way in the stores.
    while metric(http, url, "loggerhub_logs_processed_total").await? < n as f64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Seconds the accept path's plan checks take for one request of `batch`
/// records, timed alone: the rate buckets' check and take and the daily
/// volume's look and count (`usage::Meter`), on the backends the server
/// uses: in the process over SQLite, or Redis and PostgreSQL when
/// `REDIS_URL` and `DATABASE_URL` are set (`make bench-distributed`).
async fn plan_checks_cost(batch: usize) -> anyhow::Result<(f64, &'static str)> {
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

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn proc_stat(pid: u32) -> anyhow::Result<(f64, u64)> {
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

async fn metric(http: &reqwest::Client, url: &str, name: &str) -> anyhow::Result<f64> {
    let text = http.get(format!("{url}/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp;
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = std::env::temp_dir().join(format!("loggerhub-bench-{}", std::process::id()));
            tmp.clone()
        }
    };
    let _ = std::fs::remove_dir_all(&data_dir);
    let port = free_port()?;
    let syslog_port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(&args.server);
    command.arg("serve");
    if args.protocol == Protocol::Syslog {
        command.args(["--syslog-listen", &format!("127.0.0.1:{syslog_port}")]);
    }
    if args.expired > 0 {
        // A plan of no limits but a retention short enough to expire the
        // preloaded records during the run.
        std::fs::create_dir_all(&data_dir)?;
        let plans = data_dir.join("bench-plans.json");
        let plan = json!({"logs_per_second": 10_000_000u64, "bytes_per_second": 10u64 << 30, "burst_seconds": 10,
            "daily_logs": 1u64 << 50, "daily_bytes": 1u64 << 60, "retention_days": 2,
            "retention_seconds": EXPIRING_RETENTION_SECS, "plugin_cpu_seconds_per_day": 1u64 << 40,
            "max_plugins": 100, "max_versions": 20, "dead_letter_cap": 100_000});
        std::fs::write(&plans, json!({ "expiring": plan }).to_string())?;
        command.arg("--plans").arg(plans);
    }
    let child = command
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--workers",
            &args.workers.to_string(),
            // Retention sweeps while the run goes (it has work only with
            // `--expired`).
            "--upkeep-interval-ms",
            "1000",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("LOGGERHUB_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", args.server.display()))?;
    let server = Server { child, url };
    let pid = server.child.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{}/health", server.url)).send().await.is_err() {
        if Instant::now() > deadline {
            bail!("server did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v: Value = http
        .post(format!("{}/v1/admin/tenants", server.url))
        .bearer_auth(ADMIN)
        // The plan a newcomer's first tenant gets (`unlimited`): the bench
        // measures the pipeline (and the limiter's cost), not a plan's rate.
        .json(&if args.expired > 0 {
            json!({"slug": "bench", "plan": "expiring"})
        } else {
            json!({"slug": "bench"})
        })
        .send()
        .await?
        .json()
        .await?;
    let key = v["api_key"]["key"].as_str().context("no key")?.to_string();

    if args.expired > 0 {
        preload_expired(&http, &server.url, &key, args.expired, args.batch).await?;
    }

    // A pool of distinct batch bodies, reused: ids are assigned per request,
    // so every record stored is distinct.
    let pool: Arc<Vec<bytes::Bytes>> = Arc::new(
        (0..64u64)
            .map(|b| {
                let records: Vec<String> = (0..args.batch as u64)
                    .map(|i| record(b * args.batch as u64 + i))
                    .collect();
                bytes::Bytes::from(args.protocol.body(&records, &key))
            })
            .collect(),
    );
    let avg_record = pool[0].len() / args.batch;
    let batches = args.logs.div_ceil(args.batch as u64);
    let next = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    // What the preload left processed: the run waits for its own records.
    let processed0 = metric(&http, &server.url, "loggerhub_logs_processed_total").await? as u64;
    let (cpu0, _) = proc_stat(pid)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    let protocol = args.protocol;
    for _ in 0..args.connections {
        let (http, url, key, pool, next, retries) = (
            http.clone(),
            server.url.clone(),
            key.clone(),
            pool.clone(),
            next.clone(),
            retries.clone(),
        );
        if protocol == Protocol::Syslog {
            // No answers: accepted is when the last frame left the socket.
            tasks.push(tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", syslog_port)).await?;
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        stream.flush().await?;
                        return Ok::<_, anyhow::Error>(());
                    }
                    stream.write_all(&pool[(b % pool.len() as u64) as usize]).await?;
                }
            }));
            continue;
        }
        let (route, content_type) = protocol.route();
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<_, anyhow::Error>(());
                }
                let body = pool[(b % pool.len() as u64) as usize].clone();
                loop {
                    let r = http
                        .post(format!("{url}{route}"))
                        .bearer_auth(&key)
                        .header("content-type", content_type)
                        .body(body.clone())
                        .send()
                        .await?;
                    match r.status().as_u16() {
                        202 => break,
                        200 => {
                            let answer = r.bytes().await?;
                            // A bulk answer says per item; any error fails the run.
                            if protocol == Protocol::Bulk && !answer.starts_with(b"{\"took\":")
                                || answer.windows(14).any(|w| w == b"\"errors\":true")
                            {
                                bail!(
                                    "bulk items refused: {}",
                                    String::from_utf8_lossy(&answer[..answer.len().min(500)])
                                );
                            }
                            break;
                        }
                        429 | 503 => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        s => bail!("unexpected status {s}: {}", r.text().await.unwrap_or_default()),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let accept_secs = started.elapsed().as_secs_f64();
    let total = batches * args.batch as u64;
    loop {
        let processed = metric(&http, &server.url, "loggerhub_logs_processed_total").await? as u64 - processed0;
        if processed >= total {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("not processed after an hour: {processed}/{total}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e2e_secs = started.elapsed().as_secs_f64();
    let (cpu1, hwm_kb) = proc_stat(pid)?;
    let wasm = metric(&http, &server.url, "loggerhub_wasm_seconds_total").await?;
    // The run's records only: expired ones may not all be deleted yet.
    let since = loggerhub::model::format_ts(loggerhub::model::now_ns() - 2 * loggerhub::model::DAY_NS);
    // Every record once in the index and in the metadata store (their
    // exact counts).
    for (path, store) in [("/v1/search", "the index"), ("/v1/logs", "the metadata store")] {
        let v: Value = http
            .get(format!(
                "{}{path}?limit=1&track_total_hits=true&from={since}",
                server.url
            ))
            .bearer_auth(&key)
            .send()
            .await?
            .json()
            .await?;
        let found = v["total"].as_u64().unwrap_or(0);
        if found != total {
            bail!("{found} of {total} in {store}");
        }
    }
    let cpu = cpu1 - cpu0;
    println!("protocol             {}", args.protocol.name());
    println!(
        "logs                 {total} ({avg_record} bytes each on the wire, {} per request, {} connections, {} workers)",
        args.batch, args.connections, args.workers
    );
    println!(
        "accepted             {:.0} logs/s ({accept_secs:.2} s, {} retries after 503)",
        total as f64 / accept_secs,
        retries.load(Ordering::Relaxed)
    );
    println!(
        "end to end           {:.0} logs/s ({e2e_secs:.2} s until all searchable)",
        total as f64 / e2e_secs
    );
    println!("server peak RSS      {} MiB", hwm_kb / 1024);
    println!(
        "server CPU           {cpu:.1} s ({:.2} cores), {:.1} µs a record",
        cpu / e2e_secs,
        cpu * 1e6 / total as f64
    );
    println!(
        "CPU in WASM stages   {:.1} % ({wasm:.2} s)",
        100.0 * wasm / cpu.max(1e-9)
    );
    if args.expired > 0 {
        let gone = metric(&http, &server.url, "loggerhub_expired_total{store=\"metadata\"}").await?;
        println!(
            "retention            {gone:.0} of {} expired records deleted during the run",
            args.expired
        );
    }
    let per_request = accept_secs / batches as f64 * args.connections as f64;
    let (checks, on) = plan_checks_cost(args.batch).await?;
    println!(
        "plan checks          {:.1} µs a request (rate buckets and daily volume, {on}), {:.2} % of a request's {:.0} µs",
        checks * 1e6,
        100.0 * checks / per_request,
        per_request * 1e6
    );
    // Where the pipeline's time went, from the server's own histograms.
    let text = http.get(format!("{}/metrics", server.url)).send().await?.text().await?;
    for line in text.lines().filter(|l| l.contains("_seconds_sum{")) {
        println!("  {line}");
    }
    drop(server);
    // The stores alone, with the server stopped: the machine is this
    // process's.
    let baseline = stores_alone(&data_dir.join("stores-alone"), total, args.batch).await?;
    let share = baseline.secs / e2e_secs;
    let cpu_us = cpu * 1e6 / total as f64;
    println!(
        "stores alone         {:.0} logs/s ({:.2} s, {:.1} µs of CPU a record); end to end is {:.0} % of it",
        total as f64 / baseline.secs,
        baseline.secs,
        baseline.cpu * 1e6 / total as f64,
        100.0 * share
    );
    if let Some(path) = &args.check {
        let want: BenchBaseline =
            serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
                .with_context(|| format!("{} is not a bench baseline", path.display()))?;
        let cpu_ratio = cpu / baseline.cpu.max(1e-9);
        let share_ok = share >= want.share * (1.0 - CHECK_TOLERANCE);
        let cpu_ok = cpu_ratio <= want.cpu_ratio * (1.0 + CHECK_TOLERANCE);
        println!(
            "check                share {:.2} (baseline {:.2}) {}, CPU {cpu_us:.1} µs a record, {cpu_ratio:.2}× the stores' (baseline {:.2}×) {}",
            share,
            want.share,
            if share_ok { "ok" } else { "WORSE" },
            want.cpu_ratio,
            if cpu_ok { "ok" } else { "WORSE" }
        );
        if !(share_ok && cpu_ok) {
            if args.data_dir.is_none() {
                let _ = std::fs::remove_dir_all(&data_dir);
            }
            bail!("more than 10 % worse than {}", path.display());
        }
    }
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(())
}
