//! `make bench`: the end-to-end benchmark.
//!
//! Starts a `loggerhub serve` (the binary given with `--server`) over a
//! fresh data dir, creates a tenant, sends `--logs` records of ~300 bytes in
//! NDJSON batches over `--connections` HTTP connections, and reports:
//! logs/s accepted (until the last 202), logs/s end to end (until every log
//! is processed and searchable), the server's peak RSS, and the share of its
//! CPU time spent inside WASM stages. With `--tenants N`, N tenants send
//! at once, each its share of the records. Once the server is stopped,
//! the bench checks that every record it sent is in each of the three
//! stores exactly once with its content (`verify`), and fails if not. It also times the plan checks on the
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

mod load;
mod probe;
mod records;
mod stores_alone;
mod verify;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

use load::{EXPIRING_RETENTION_SECS, Tenant};
use probe::{ADMIN, Server, cpu_snapshot, cpu_split, free_port, metric, plan_checks_cost, proc_stat};
use records::Protocol;

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
    /// Tenants sending at once, each its share of `--logs` (`--tenants 100
    /// --logs 1000000`: 10,000 records each), every request from the next
    /// tenant in turn.
    #[arg(long, default_value_t = 1)]
    tenants: usize,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.tenants == 0 || args.batch == 0 {
        bail!("--tenants and --batch must be at least 1");
    }
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
    let mut tenants = Vec::new();
    for t in 0..args.tenants {
        let slug = if args.tenants == 1 {
            "bench".to_string()
        } else {
            format!("bench{t:04}")
        };
        let v: Value = http
            .post(format!("{}/v1/admin/tenants", server.url))
            .bearer_auth(ADMIN)
            // The plan a newcomer's first tenant gets (`unlimited`): the
            // bench measures the pipeline (and the limiter's cost), not a
            // plan's rate.
            .json(&if args.expired > 0 {
                json!({"slug": slug, "plan": "expiring"})
            } else {
                json!({ "slug": slug })
            })
            .send()
            .await?
            .json()
            .await?;
        let key = v["api_key"]["key"].as_str().context("no key")?.to_string();
        if args.expired > 0 {
            load::preload_expired(&http, &server.url, &key, args.expired, args.batch).await?;
        }
        let requests = args.logs.div_ceil(args.batch as u64).div_ceil(args.tenants as u64);
        tenants.push(Tenant::new(
            slug,
            key,
            t,
            args.tenants,
            (args.batch, usize::try_from(requests).unwrap_or(usize::MAX)),
            args.protocol,
        ));
    }
    let tenants = Arc::new(tenants);
    let avg_record = tenants[0].bodies[0].bytes.len() / args.batch;
    let batches = args.logs.div_ceil(args.batch as u64);
    // What the preload left processed: the run waits for its own records.
    let processed0 = metric(&http, &server.url, "loggerhub_logs_processed_total").await? as u64;
    let (cpu0, _) = proc_stat(pid)?;
    let split0 = cpu_snapshot(&http, &server.url, pid).await?;
    let started = Instant::now();
    let retries = load::send(
        &http,
        &server.url,
        syslog_port,
        args.protocol,
        tenants.clone(),
        batches,
        args.connections,
    )
    .await?;
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
    let split1 = cpu_snapshot(&http, &server.url, pid).await?;
    let wasm = metric(&http, &server.url, "loggerhub_wasm_seconds_total").await?;
    let cpu = cpu1 - cpu0;
    println!("protocol             {}", args.protocol.name());
    println!(
        "logs                 {total} ({avg_record} bytes each on the wire, {} per request, {} connections, {} tenants, {} workers)",
        args.batch, args.connections, args.tenants, args.workers
    );
    println!(
        "accepted             {:.0} logs/s, {:.0} requests/s ({accept_secs:.2} s, {retries} retries after 429/503)",
        total as f64 / accept_secs,
        batches as f64 / accept_secs,
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
    println!("CPU by stage (µs)    {}", cpu_split(&split0, &split1, cpu, total));
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
    for line in text
        .lines()
        .filter(|l| l.contains("_seconds_sum{") || l.starts_with("loggerhub_store_write_seconds_count"))
    {
        println!("  {line}");
    }
    drop(server);

    // What was measured is what was stored: every record once in each
    // store, with its content (the run's records only: expired ones may
    // not all be deleted yet).
    let checking = Instant::now();
    let expected = expected(&tenants)?;
    let since = loggerhub::model::now_ns() - 2 * loggerhub::model::DAY_NS;
    verify::every_record_once(&data_dir, &expected, since).await?;
    println!(
        "stores checked       every record once in metadata, raw and index, with its content ({:.1} s)",
        checking.elapsed().as_secs_f64()
    );

    // The stores alone, with the server stopped: the machine is this
    // process's.
    let slugs: Vec<String> = tenants.iter().map(|t| t.slug.clone()).collect();
    let baseline = stores_alone::stores_alone(&data_dir.join("stores-alone"), &slugs, total, args.batch).await?;
    let share = baseline.secs / e2e_secs;
    let cpu_us = cpu * 1e6 / total as f64;
    println!(
        "stores alone         {:.0} logs/s ({:.2} s, {:.1} µs of CPU a record); end to end is {:.0} % of it",
        total as f64 / baseline.secs,
        baseline.secs,
        baseline.cpu * 1e6 / total as f64,
        100.0 * share
    );
    let mut failed = None;
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
            failed = Some(format!("more than 10 % worse than {}", path.display()));
        }
    }
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    match failed {
        Some(why) => bail!(why),
        None => Ok(()),
    }
}

/// What each tenant was sent, by content: every record of every body, as
/// many times as the body was accepted.
fn expected(tenants: &[Tenant]) -> anyhow::Result<Vec<verify::Expected>> {
    let mut out = Vec::new();
    for t in tenants {
        let mut records: HashMap<verify::Content, u64> = HashMap::new();
        for body in &t.bodies {
            let times = body.accepted.load(Ordering::Relaxed);
            if times == 0 {
                continue;
            }
            for i in body.first..body.first + body.records {
                let d: Value = serde_json::from_str(&records::record(i))?;
                // Every protocol carries these as they are (syslog's
                // APP-NAME, MSG, severity and TIMESTAMP; OTLP's
                // service.name, body, severity text and time).
                let service = d["service"].as_str().unwrap_or_default().to_string();
                let message = d["message"].as_str().unwrap_or_default().to_string();
                let level = loggerhub::model::Level::parse(d["level"].as_str().unwrap_or_default())
                    .unwrap_or_default()
                    .as_str();
                let timestamp = loggerhub::model::parse_ts(d["timestamp"].as_str().unwrap_or_default()).unwrap_or(0);
                *records.entry((service, message, level, timestamp)).or_default() += times;
            }
        }
        out.push(verify::Expected {
            tenant: t.slug.clone(),
            records,
        });
    }
    Ok(out)
}
