//! `loggerhub serve`'s settings as the user gives them: flags, each also
//! read from its environment variable, and the secrets, from the
//! environment only.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{
    DEFAULT_CLAIM_IDLE, DEFAULT_INDEX_PREFIX, DEFAULT_PLAN, DEFAULT_QUEUE_NAME, DEFAULT_UPKEEP_INTERVAL, Limits,
    PluginPolicy, ProcessorConfig, Roles,
};

/// `loggerhub serve`'s flags, each also read from its environment variable.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[arg(long, default_value = "./data", env = "LOGGERHUB_DATA_DIR")]
    pub data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080", env = "LOGGERHUB_LISTEN")]
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = Limits::default().max_body_bytes, env = "LOGGERHUB_MAX_BODY_BYTES")]
    pub max_body_bytes: usize,
    /// Bytes of unprocessed batches held before ingest answers 503.
    #[arg(long, default_value_t = Limits::default().queue_max_bytes, env = "LOGGERHUB_QUEUE_MAX_BYTES")]
    pub queue_max_bytes: u64,
    /// The metadata store: postgres://… or sqlite://<file>; unset, SQLite in
    /// the data dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// The queue: redis://host:port as a Redis stream; unset, the durable
    /// local queue in the data dir.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// The raw store: s3://bucket?endpoint=http://host:9000&region=r (other
    /// settings, keys included, from the AWS_* variables) or file://dir;
    /// unset, <data dir>/raw.
    #[arg(long, env = "OBJECT_STORE_URL")]
    pub object_store_url: Option<String>,
    /// The search index: http[s]://[user:password@]host:9200 for OpenSearch
    /// 2.x; unset, Tantivy in the data dir.
    #[arg(long, env = "OPENSEARCH_URL")]
    pub opensearch_url: Option<String>,
    /// Prefix of the tenants' OpenSearch index names (`<prefix><tenant>`).
    #[arg(long, default_value = DEFAULT_INDEX_PREFIX, env = "OPENSEARCH_INDEX_PREFIX")]
    pub index_prefix: String,
    /// Prefix of the queue's Redis keys; one per deployment sharing a Redis.
    #[arg(long, default_value = DEFAULT_QUEUE_NAME, env = "LOGGERHUB_QUEUE_NAME")]
    pub queue_name: String,
    /// The services to run: ingest, processor, search (comma-separated) or
    /// all.
    #[arg(long, default_value = "all", env = "LOGGERHUB_ROLE", value_parser = Roles::parse)]
    pub role: Roles,
    /// Milliseconds a Redis queue entry stays with a silent processor
    /// before another processor takes it over.
    #[arg(long, default_value_t = DEFAULT_CLAIM_IDLE.as_millis() as u64, env = "LOGGERHUB_CLAIM_IDLE_MS")]
    pub claim_idle_ms: u64,
    /// The most memory (MiB) an instance of a tenant's plugin may have;
    /// tenants' pipelines may lower it, never raise it.
    #[arg(long, default_value_t = PluginPolicy::default().memory_mib, env = "LOGGERHUB_PLUGIN_MEMORY_MIB")]
    pub plugin_memory_mib: u32,
    /// The most CPU (ms) a call of a tenant's plugin may use.
    #[arg(long, default_value_t = PluginPolicy::default().cpu_ms, env = "LOGGERHUB_PLUGIN_CPU_MS")]
    pub plugin_cpu_ms: u32,
    /// The most wall-clock time (ms) a call of a tenant's plugin may take.
    #[arg(long, default_value_t = PluginPolicy::default().timeout_ms, env = "LOGGERHUB_PLUGIN_TIMEOUT_MS")]
    pub plugin_timeout_ms: u32,
    /// Versions kept per plugin (the active and the previous one always).
    #[arg(long, default_value_t = PluginPolicy::default().max_versions, env = "LOGGERHUB_PLUGIN_VERSIONS")]
    pub plugin_versions: usize,
    /// Dead letters kept per tenant; past it the oldest are dropped and
    /// counted.
    #[arg(long, default_value_t = Limits::default().dead_letter_cap, env = "LOGGERHUB_DEAD_LETTER_CAP")]
    pub dead_letter_cap: usize,
    /// MiB of dead letters kept per tenant; past it the oldest are dropped
    /// and counted.
    #[arg(long, default_value_t = Limits::default().dead_letter_max_bytes >> 20, env = "LOGGERHUB_DEAD_LETTER_MAX_MIB")]
    pub dead_letter_max_mib: u64,
    /// Memory (MiB) all plugin instances of this process may hold between
    /// batches; past it the least recently used tenants' are dropped.
    #[arg(long, default_value_t = ProcessorConfig::default().instance_budget_bytes >> 20, env = "LOGGERHUB_PLUGIN_MEMORY_BUDGET_MIB")]
    pub plugin_memory_budget_mib: usize,
    /// Seconds after which an unused tenant's plugin instances are dropped.
    #[arg(long, default_value_t = ProcessorConfig::default().instance_idle.as_secs(), env = "LOGGERHUB_PLUGIN_IDLE_SECS")]
    pub plugin_idle_secs: u64,
    /// Pipeline workers (0: this process only queues, as an ingest node).
    #[arg(long, default_value_t = ProcessorConfig::default().workers, env = "LOGGERHUB_WORKERS")]
    pub workers: usize,
    /// A JSON file of plans (`{"name": {…}}`) that overrides or adds to
    /// the built-in `free`, `pro` and `enterprise` (docs/OPERATIONS.md).
    #[arg(long, env = "LOGGERHUB_PLANS")]
    pub plans: Option<PathBuf>,
    /// The plan of a tenant created without one: `unlimited` suits one
    /// team's own server; a service that sells plans sets `free`.
    #[arg(long, default_value = DEFAULT_PLAN, env = "LOGGERHUB_DEFAULT_PLAN")]
    pub default_plan: String,
    /// Processing time (ms) one tenant may use per round of the scheduler
    /// before the other tenants with work get theirs.
    #[arg(long, default_value_t = ProcessorConfig::default().turn_budget.as_millis() as u64, env = "LOGGERHUB_TURN_BUDGET_MS")]
    pub turn_budget_ms: u64,
    /// How often (ms) the upkeep job looks for expired logs and tenants
    /// being deleted, and meters what each tenant stores.
    #[arg(long, default_value_t = DEFAULT_UPKEEP_INTERVAL.as_millis() as u64, env = "LOGGERHUB_UPKEEP_INTERVAL_MS")]
    pub upkeep_interval_ms: u64,
    /// Syslog over TCP and UDP on this address (both), the tenant from the
    /// key in each message's structured data (`[loggerhub@32473
    /// key="lh_…"]`); unset, no syslog.
    #[arg(long, env = "LOGGERHUB_SYSLOG_LISTEN")]
    pub syslog_listen: Option<SocketAddr>,
    /// A tenant's own syslog address, `SLUG=ADDR` (TCP and UDP; repeat the
    /// flag, or separate with commas in the variable): every message that
    /// arrives there is the tenant's, with or without a key.
    #[arg(long = "syslog-tenant", env = "LOGGERHUB_SYSLOG_TENANTS", value_delimiter = ',')]
    pub syslog_tenants: Vec<String>,
}

/// Secrets come from the environment only, never from flags (which any user
/// of the machine can read in the process list).
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    /// `LOGGERHUB_ADMIN_TOKEN`.
    pub admin_token: Option<String>,
    /// `LOGGERHUB_OPERATOR_TOKEN`: when set, `/metrics` and the detail of
    /// `/ready` answer only to it.
    pub operator_token: Option<String>,
}

impl Secrets {
    pub fn from_env() -> Secrets {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.trim().is_empty());
        Secrets {
            admin_token: var("LOGGERHUB_ADMIN_TOKEN"),
            operator_token: var("LOGGERHUB_OPERATOR_TOKEN"),
        }
    }
}
