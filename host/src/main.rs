//! The `loggerhub` binary: parses the command line and hands off to
//! `server::run` or the CLI client.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use loggerhub::config::{Backends, Config, Limits, ProcessorConfig, Roles};

mod cli;

// glibc malloc trims the heap after every large batch (DESIGN §8).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "loggerhub", version, about = "Multi-tenant log platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run LoggerHub's services (all of them unless --role says otherwise).
    Serve(ServeArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[derive(clap::Args)]
struct ServeArgs {
    #[arg(long, default_value = "./data", env = "LOGGERHUB_DATA_DIR")]
    data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080", env = "LOGGERHUB_LISTEN")]
    listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = Limits::default().max_body_bytes, env = "LOGGERHUB_MAX_BODY_BYTES")]
    max_body_bytes: usize,
    /// Bytes of unprocessed batches held before ingest answers 503.
    #[arg(long, default_value_t = Limits::default().queue_max_bytes, env = "LOGGERHUB_QUEUE_MAX_BYTES")]
    queue_max_bytes: u64,
    /// The metadata store: postgres://… or sqlite://<file>; unset, SQLite in
    /// the data dir.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// The queue: redis://host:port as a Redis stream; unset, the durable
    /// local queue in the data dir.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// The raw store: s3://bucket?endpoint=http://host:9000&region=r (keys in
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) or file://dir; unset,
    /// <data dir>/raw.
    #[arg(long, env = "OBJECT_STORE_URL")]
    object_store_url: Option<String>,
    /// The search index: http[s]://[user:password@]host:9200 for OpenSearch
    /// 2.x; unset, Tantivy in the data dir.
    #[arg(long, env = "OPENSEARCH_URL")]
    opensearch_url: Option<String>,
    /// Prefix of the tenants' OpenSearch index names (`<prefix><tenant>`).
    #[arg(long, default_value = loggerhub::search::opensearch::DEFAULT_INDEX_PREFIX, env = "OPENSEARCH_INDEX_PREFIX")]
    index_prefix: String,
    /// Prefix of the queue's Redis keys; one per deployment sharing a Redis.
    #[arg(long, default_value = "loggerhub", env = "LOGGERHUB_QUEUE_NAME")]
    queue_name: String,
    /// The services to run: ingest, processor, search (comma-separated) or
    /// all.
    #[arg(long, default_value = "all", env = "LOGGERHUB_ROLE", value_parser = Roles::parse)]
    role: Roles,
    /// Milliseconds a Redis queue entry stays with a silent processor
    /// before another processor takes it over.
    #[arg(long, default_value_t = Backends::default().claim_idle.as_millis() as u64, env = "LOGGERHUB_CLAIM_IDLE_MS")]
    claim_idle_ms: u64,
    /// Pipeline workers.
    #[arg(long, default_value_t = ProcessorConfig::default().workers, env = "LOGGERHUB_WORKERS")]
    workers: usize,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tantivy=warn"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LOGGERHUB_LOG_FORMAT").as_deref() == Ok("json") {
        fmt.json().init();
    } else {
        fmt.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    match Cli::parse().command {
        Command::Serve(a) => serve(a).await,
        Command::Client(c) => c.run().await,
    }
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::embedded(a.data_dir, a.listen);
    config.admin_token = std::env::var("LOGGERHUB_ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
    config.limits = Limits {
        max_body_bytes: a.max_body_bytes,
        queue_max_bytes: a.queue_max_bytes,
    };
    config.processor.workers = a.workers;
    config.backends.database_url = a.database_url.filter(|u| !u.is_empty());
    config.backends.redis_url = a.redis_url.filter(|u| !u.is_empty());
    config.backends.queue_name = a.queue_name;
    config.backends.claim_idle = std::time::Duration::from_millis(a.claim_idle_ms.max(1));
    config.roles = a.role;
    config.backends.object_store_url = a.object_store_url.filter(|u| !u.is_empty());
    config.backends.opensearch_url = a.opensearch_url.filter(|u| !u.is_empty());
    config.backends.index_prefix = a.index_prefix;
    std::fs::create_dir_all(&config.data_dir)?;
    let (token, _) = loggerhub::server::admin_token(&config)?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    // Written with errors ignored: nobody reading stdout must not stop the
    // server.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "LoggerHub ({}) is running at {url}", config.roles.names());
    if config.admin_token.is_none() {
        let _ = writeln!(
            out,
            "admin token: {token}  (kept in {})",
            config.data_dir.join("admin_token").display()
        );
    }
    let _ = writeln!(
        out,
        "create a tenant: curl -X POST {url}/v1/admin/tenants -H 'Authorization: Bearer <admin token>' -H 'content-type: application/json' -d '{{\"slug\":\"acme\"}}'"
    );
    let _ = out.flush();
    drop(out);
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    };
    loggerhub::server::run(config, listener, shutdown).await
}
