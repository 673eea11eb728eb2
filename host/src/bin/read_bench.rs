//! `make read-bench`: how fast the reads a dashboard makes answer on one
//! big tenant.
//!
//! Loads `--logs` realistic records of one tenant, spread over the last
//! seven days, straight into the embedded stores of a data dir (the
//! metadata store with its count rollups, and the index: how they got
//! there does not matter to a read, and the pipeline would take hours),
//! then starts `loggerhub serve` (`--server`) over that dir and times each
//! read from the outside, over HTTP: the list view (plain, by service, by
//! level), search (a common term, a rare term, a phrase with a filter),
//! stats (1 h buckets over 7 days), a search's histogram (1 h buckets
//! over a day) and 20 pages followed by cursor.
//! Prints p50 and p99 per read; with `--browser`, also when the dashboard
//! paints its first rows in headless Chromium. With `--data-dir`, the loaded dir is kept
//! and a later run with the same `--logs` reuses it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use loggerhub::config::{Backends, MetadataBackend};
use loggerhub::model::{DAY_NS, Level, LogRecord, Slug, now_ns};
use loggerhub::search::IndexRow;
use loggerhub::stores::MetaRow;
use loggerhub::tenants::Tenants;
use loggerhub::tenants::plans::Plans;
use serde_json::Value;

#[derive(Parser)]
#[command(about = "LoggerHub read benchmark")]
struct Args {
    /// The loggerhub binary to benchmark.
    #[arg(long)]
    server: PathBuf,
    /// Records of the tenant.
    #[arg(long, default_value_t = 10_000_000)]
    logs: u64,
    /// Times each read is made.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    samples: u64,
    /// Data dir, kept and reused (default: a temp dir, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL server (`postgres://…/db`) for the metadata instead of
    /// SQLite: the benchmark makes its own database there,
    /// `loggerhub_read_bench`, replacing one a run with other records left.
    #[arg(long)]
    postgres: Option<String>,
    /// A Python with Playwright (infra/local/tools.sh installs one): the
    /// dashboard's first paint is timed too, in Debian's Chromium.
    #[arg(long)]
    browser: Option<PathBuf>,
}

/// Times the dashboard's first rows in a real browser.
const FIRST_PAINT: &str = include_str!("../../tests/browser/first_paint.py");

const ADMIN: &str = "read-bench-admin-token";
const TENANT: &str = "big";
const SERVICES: usize = 20;
/// Records per write to the stores while loading.
const LOAD_BATCH: usize = 50_000;

/// The version of [`record`]: a change to what it makes bumps it.
const GENERATOR: u32 = 2;

/// What a loaded dir holds, so a later run can reuse it.
#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct Loaded {
    /// [`GENERATOR`] of the records: a dir loaded by another is reloaded.
    #[serde(default)]
    generator: u32,
    /// Where the metadata went: the PostgreSQL database, or SQLite.
    #[serde(default)]
    database: Option<String>,
    logs: u64,
    key: String,
    /// The newest record's time: reads are relative to it.
    newest: i64,
}

/// The i-th record of `n`, stamped over the seven days before `newest`,
/// oldest first: a web service's mix of levels and messages, with a term
/// in one record of ten thousand.
fn record(i: u64, n: u64, newest: i64) -> LogRecord {
    let span = 7 * DAY_NS;
    let ts = newest - span + (i128::from(i) * i128::from(span) / i128::from(n.max(1))) as i64;
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The service takes other bits of the hash than the message's choice
    // below, so every message occurs in every service.
    let service = format!("svc-{:02}", (h >> 32) % SERVICES as u64);
    // A request's duration, a number attribute (fractions of a millisecond).
    let duration = match h % 100 {
        10..=19 => 200.0 + (h % 300_000) as f64 / 100.0,
        _ => (h % 40_000) as f64 / 100.0,
    };
    let (level, message) = match h % 100 {
        0..=2 => (Level::Debug, format!("cache miss for key session:{}", h % 100_000)),
        3..=9 => (
            Level::Error,
            format!("payment failed for order {}: card declined by issuer", h % 1_000_000),
        ),
        10..=19 => (Level::Warn, format!("slow query on orders took {duration} ms")),
        _ => (
            Level::Info,
            format!("request GET /api/v1/orders/{} handled in {duration} ms", h % 1_000_000),
        ),
    };
    let message = if i % 10_000 == 7 {
        format!("{message}; disk quota exceeded on volume vol-{}", h % 100)
    } else {
        message
    };
    let ms = u64::try_from(ts / 1_000_000).unwrap_or(0);
    LogRecord {
        id: ulid::Ulid::from_parts(ms, u128::from(h)).to_string(),
        tenant: TENANT.to_string(),
        service,
        level,
        timestamp: ts,
        received_at: ts,
        full_log: message.clone(),
        message,
        language: Some("rust".into()),
        attributes: vec![
            ("region".into(), ["eu", "us", "ap"][((h >> 16) % 3) as usize].into()),
            (
                "duration_ms".into(),
                loggerhub_codec::value::number_of(duration).unwrap_or_default(),
            ),
        ],
        raw_path: None,
    }
}

/// The benchmark's own database on the `--postgres` server.
const BENCH_DATABASE: &str = "loggerhub_read_bench";

async fn load(dir: &Path, n: u64, postgres: Option<&str>) -> anyhow::Result<Loaded> {
    // Where the metadata goes, by name: the marker compares it.
    let database = postgres
        .map(|url| loggerhub::stores::postgres::database_url(url, BENCH_DATABASE))
        .transpose()?;
    let marker = dir.join("read-bench.json");
    if let Ok(bytes) = std::fs::read(&marker)
        && let Ok(loaded) = serde_json::from_slice::<Loaded>(&bytes)
        && loaded.logs == n
        && loaded.generator == GENERATOR
        && loaded.database == database
    {
        eprintln!("reusing {} logs in {}", n, dir.display());
        return Ok(loaded);
    }
    if marker.exists() {
        // Loaded by this benchmark with other records or another count.
        eprintln!("reloading {}", dir.display());
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let mut b = Backends::embedded(dir);
    if let Some(server) = postgres {
        let db = loggerhub::stores::postgres::recreate_database(server, BENCH_DATABASE).await?;
        b.metadata = MetadataBackend::Postgres(db);
    }
    let loggerhub::stores::Metadata { accounts, logs: meta } = loggerhub::stores::open_metadata(&b.metadata).await?;
    let index = loggerhub::search::open(&b.index)?;
    let tenants = Tenants::new(accounts, Arc::new(Plans::builtin()));
    let key = tenants
        .create(&Slug::parse(TENANT).map_err(|e| anyhow::anyhow!("{e}"))?, "enterprise")
        .await?
        .secret;
    let newest = now_ns();
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<LogRecord> = (i..(i + LOAD_BATCH as u64).min(n))
            .map(|j| record(j, n, newest))
            .collect();
        let rows: Vec<MetaRow<'_>> = batch
            .iter()
            .map(|r| MetaRow {
                record: r,
                indexed: true,
                may_exist: false,
            })
            .collect();
        meta.insert_logs(&rows).await?;
        let rows: Vec<IndexRow<'_>> = batch
            .iter()
            .map(|r| IndexRow {
                record: r,
                may_exist: false,
            })
            .collect();
        index.index(TENANT, &rows).await?;
        i += batch.len() as u64;
        if i % 1_000_000 < LOAD_BATCH as u64 {
            let secs = started.elapsed().as_secs_f64();
            eprintln!("loaded {i} logs in {secs:.0} s ({:.0} logs/s)", i as f64 / secs);
        }
    }
    let loaded = Loaded {
        generator: GENERATOR,
        database,
        logs: n,
        key,
        newest,
    };
    std::fs::write(&marker, serde_json::to_vec(&loaded)?)?;
    Ok(loaded)
}

/// A read: a GET of a path, or a POST of a JSON body to it.
enum Read {
    Get(String),
    Post(&'static str, Value),
}

impl From<String> for Read {
    fn from(path: String) -> Self {
        Read::Get(path)
    }
}

/// A read's i-th sample.
type PathOf = Box<dyn Fn(usize) -> Read>;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// p50 and p99 of `times`, in ms.
fn percentiles(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5) * 1e3, at(0.99) * 1e3)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    let loaded = load(&dir, args.logs, args.postgres.as_deref()).await?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}");
    let _server = Server(
        Command::new(&args.server)
            .args(["serve", "--data-dir"])
            .arg(&dir)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--workers", "0"])
            .env("LOGGERHUB_ADMIN_TOKEN", ADMIN)
            // The stores the records were loaded into, whatever the
            // caller's environment names.
            .env_remove("REDIS_URL")
            .env_remove("OBJECT_STORE_URL")
            .env_remove("OPENSEARCH_URL")
            .env_remove("DATABASE_URL")
            .envs(loaded.database.iter().map(|db| ("DATABASE_URL", db)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the server")?,
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while http.get(format!("{url}/health")).send().await.is_err() {
        if Instant::now() > deadline {
            bail!("the server did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let get = |read: Read| {
        let http = http.clone();
        let key = loaded.key.clone();
        let (request, url) = match read {
            Read::Get(path) => {
                let url = format!("{url}{path}");
                (http.get(&url), url)
            }
            Read::Post(path, body) => (
                http.post(format!("{url}{path}")).json(&body),
                format!("POST {path} {body}"),
            ),
        };
        async move {
            let started = Instant::now();
            let resp = request.bearer_auth(key).send().await?;
            let status = resp.status();
            let v: Value = resp.json().await?;
            let took = started.elapsed().as_secs_f64();
            if !status.is_success() {
                bail!("{url}: {status} {v}");
            }
            // A fast answer of nothing measures nothing: every read here
            // has matches in the loaded records.
            if found_nothing(&v) {
                bail!("{url} found nothing: {v}");
            }
            Ok::<_, anyhow::Error>((took, v))
        }
    };
    let ts = loggerhub::model::format_ts;
    let week_ago = ts(loaded.newest - 7 * DAY_NS);
    let day_ago = ts(loaded.newest - DAY_NS);
    let now = ts(loaded.newest + 1);
    let (day_from, day_to) = (day_ago.clone(), now.clone());
    let (agg_from, agg_to) = (day_ago.clone(), now.clone());
    let (stats_from, stats_to) = (day_ago.clone(), now.clone());
    let (by_from, by_to) = (day_ago.clone(), now.clone());
    let reads: Vec<(&str, PathOf)> = vec![
        (
            "list, newest page",
            Box::new(|_| "/v1/logs?limit=100".to_string().into()),
        ),
        (
            "list by service",
            Box::new(|i| format!("/v1/logs?limit=100&service=svc-{:02}", i % SERVICES).into()),
        ),
        (
            "list by level=error",
            Box::new(|_| "/v1/logs?limit=100&level=error".to_string().into()),
        ),
        (
            "search, common term",
            Box::new(|_| "/v1/search?limit=100&q=orders".to_string().into()),
        ),
        (
            "search, rare term",
            Box::new(|_| "/v1/search?limit=100&q=quota".to_string().into()),
        ),
        (
            "search, phrase + filter",
            Box::new(|i| {
                format!(
                    "/v1/search?limit=100&q=%22payment%20failed%22%20service:svc-{:02}",
                    i % SERVICES
                )
                .into()
            }),
        ),
        (
            "stats, 1 h buckets over 7 days",
            Box::new(move |_| format!("/v1/stats?interval=1h&from={week_ago}&to={now}").into()),
        ),
        (
            "histogram of a search (common term), 1 h buckets over a day",
            Box::new(move |_| format!("/v1/stats?q=orders&interval=1h&from={day_from}&to={day_to}").into()),
        ),
        (
            "count by service, top 10",
            Box::new(|_| Read::Post("/v1/aggregate", serde_json::json!({"by": "service", "size": 10}))),
        ),
        (
            "count errors by an attribute over a day, 1 h series",
            Box::new(move |_| {
                Read::Post(
                    "/v1/aggregate",
                    serde_json::json!({"q": "level:error", "by": "@region", "from": agg_from, "to": agg_to, "interval": "1h"}),
                )
            }),
        ),
        (
            "p95 (and the rest) of a number attribute over a day",
            Box::new(move |_| {
                Read::Post(
                    "/v1/aggregate",
                    serde_json::json!({"stats": "@duration_ms", "from": stats_from, "to": stats_to}),
                )
            }),
        ),
        (
            "p95 of a number attribute per service over a day",
            Box::new(move |_| {
                Read::Post(
                    "/v1/aggregate",
                    serde_json::json!({"stats": "@duration_ms", "by": "service", "size": 10, "from": by_from, "to": by_to}),
                )
            }),
        ),
    ];
    println!(
        "read benchmark: {} logs of one tenant over 7 days, metadata in {}, index in Tantivy, {} samples each\n",
        loaded.logs,
        if loaded.database.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        args.samples
    );
    println!("| read | p50 | p99 |\n|---|---|---|");
    for (name, path) in &reads {
        // One unmeasured read: the first touches cold pages.
        get(path(0)).await?;
        let mut times = Vec::new();
        for i in 0..args.samples as usize {
            times.push(get(path(i)).await?.0);
        }
        let (p50, p99) = percentiles(times);
        println!("| {name} | {p50:.1} ms | {p99:.1} ms |");
    }
    let mut times = Vec::new();
    for _ in 0..args.samples.div_ceil(10) {
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let path = match &cursor {
                Some(c) => format!("/v1/logs?limit=100&cursor={c}"),
                None => "/v1/logs?limit=100".to_string(),
            };
            let (t, v) = get(path.into()).await?;
            times.push(t);
            cursor = v["next_cursor"].as_str().map(str::to_string);
        }
    }
    let (p50, p99) = percentiles(times);
    println!("| 20 pages by cursor, each | {p50:.1} ms | {p99:.1} ms |");
    if let Some(python) = &args.browser {
        let status = Command::new(python)
            .arg("-c")
            .arg(FIRST_PAINT)
            .args([&url, &loaded.key, &args.samples.min(20).to_string()])
            .status()
            .context("running the browser timing")?;
        if !status.success() {
            bail!("the browser timing failed: {status}");
        }
    }
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Whether a list, search or stats answer holds no record.
fn found_nothing(v: &Value) -> bool {
    match (v.get("hits"), v.get("total")) {
        (Some(hits), _) => hits.as_array().is_none_or(Vec::is_empty),
        (None, Some(total)) => total.as_u64().unwrap_or(0) == 0,
        (None, None) => true,
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("loggerhub-read-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
