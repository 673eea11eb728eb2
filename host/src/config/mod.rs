//! Settings of a `loggerhub serve` process. `ServeArgs` holds them as flags
//! and environment variables read (by clap, in `main`); `ServeArgs::check`
//! turns them into a `Config` whose backends are typed. A setting that
//! cannot work fails there, at start, with a message naming it. Tests build
//! a `Config` directly.
//!
//! **Invariant:** `config` depends on nothing else in the host but the
//! vocabulary of `model` (a setting naming a tenant holds a `Slug`); every
//! other module reads its settings from the `Config` it is handed.

mod backends;
mod roles;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::Slug;

pub use backends::{BackendUrls, Backends, IndexBackend, MetadataBackend, QueueBackend, RawBackend, S3Settings};
pub use roles::{Role, Roles};

/// A setting that cannot work, named as the user sets it.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

fn bad(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        message: message.into(),
    }
}

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

/// The plan of a tenant created without one (`tenants::plans` defines it;
/// the plans test starts a server with no setting and checks the name).
pub const DEFAULT_PLAN: &str = "unlimited";
/// Tenant `t`'s OpenSearch index is `<prefix>t`.
pub const DEFAULT_INDEX_PREFIX: &str = "loggerhub-logs-";
pub const DEFAULT_QUEUE_NAME: &str = "loggerhub";
/// How long a Redis queue entry stays with a processor that stopped
/// answering before another one takes it: longer than the slowest batch
/// (CPU budgets are 2 s per plugin call, store retries back off 1 s).
pub const DEFAULT_CLAIM_IDLE: Duration = Duration::from_secs(60);
/// Retention and deletion are not urgent: a minute between sweeps keeps
/// their cost out of ingest's way.
pub const DEFAULT_UPKEEP_INTERVAL: Duration = Duration::from_secs(60);
const UPKEEP_INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;
/// More workers than this only queue up on the cores and the stores.
const MAX_WORKERS: usize = 256;
/// A turn budget outside this range either commits tiny batches (below) or
/// lets a tenant hold a slot for long (above).
const TURN_BUDGET_MS: std::ops::RangeInclusive<u64> = 10..=10_000;

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

impl ServeArgs {
    /// The settings, checked, with the secrets from the environment.
    pub fn check(self, secrets: Secrets) -> Result<Config, ConfigError> {
        let set = |v: Option<String>| v.filter(|u| !u.trim().is_empty());
        if self.max_body_bytes == 0 {
            return Err(bad("--max-body-bytes (LOGGERHUB_MAX_BODY_BYTES)", "must be at least 1"));
        }
        if self.queue_max_bytes == 0 {
            return Err(bad(
                "--queue-max-bytes (LOGGERHUB_QUEUE_MAX_BYTES)",
                "must be at least 1",
            ));
        }
        if self.claim_idle_ms == 0 {
            return Err(bad("--claim-idle-ms (LOGGERHUB_CLAIM_IDLE_MS)", "must be at least 1"));
        }
        // The runtime's own bounds (runtime::Limits::MAX), named by setting.
        if !(1..=1024).contains(&self.plugin_memory_mib) {
            return Err(bad(
                "--plugin-memory-mib (LOGGERHUB_PLUGIN_MEMORY_MIB)",
                "must be 1 to 1024",
            ));
        }
        if !(10..=10_000).contains(&self.plugin_cpu_ms) {
            return Err(bad("--plugin-cpu-ms (LOGGERHUB_PLUGIN_CPU_MS)", "must be 10 to 10000"));
        }
        if !(100..=60_000).contains(&self.plugin_timeout_ms) {
            return Err(bad(
                "--plugin-timeout-ms (LOGGERHUB_PLUGIN_TIMEOUT_MS)",
                "must be 100 to 60000",
            ));
        }
        if self.plugin_versions < 2 {
            return Err(bad(
                "--plugin-versions (LOGGERHUB_PLUGIN_VERSIONS)",
                "must be at least 2",
            ));
        }
        // At least one letter of the largest entry must fit: a body, or a
        // shipper request's converted part.
        let largest = self.max_body_bytes.max(crate::model::CONVERTED_ENTRY_BYTES) as u64;
        if !(1..=1 << 20).contains(&self.dead_letter_max_mib) || (self.dead_letter_max_mib << 20) < largest {
            return Err(bad(
                "--dead-letter-max-mib (LOGGERHUB_DEAD_LETTER_MAX_MIB)",
                "must hold one letter of the largest entry (--max-body-bytes, and 8 MiB for a shipper's converted records) and be at most 1048576",
            ));
        }
        if self.dead_letter_cap == 0 {
            return Err(bad(
                "--dead-letter-cap (LOGGERHUB_DEAD_LETTER_CAP)",
                "must be at least 1",
            ));
        }
        if self.workers > MAX_WORKERS {
            return Err(bad("--workers (LOGGERHUB_WORKERS)", format!("at most {MAX_WORKERS}")));
        }
        if !TURN_BUDGET_MS.contains(&self.turn_budget_ms) {
            return Err(bad(
                "--turn-budget-ms (LOGGERHUB_TURN_BUDGET_MS)",
                format!("must be {} to {} ms", TURN_BUDGET_MS.start(), TURN_BUDGET_MS.end()),
            ));
        }
        if !UPKEEP_INTERVAL_MS.contains(&self.upkeep_interval_ms) {
            return Err(bad(
                "--upkeep-interval-ms (LOGGERHUB_UPKEEP_INTERVAL_MS)",
                format!(
                    "must be {} to {} ms",
                    UPKEEP_INTERVAL_MS.start(),
                    UPKEEP_INTERVAL_MS.end()
                ),
            ));
        }
        let urls = BackendUrls {
            database: set(self.database_url),
            redis: set(self.redis_url),
            object_store: set(self.object_store_url),
            opensearch: set(self.opensearch_url),
            index_prefix: self.index_prefix,
            queue_name: self.queue_name,
            claim_idle: Duration::from_millis(self.claim_idle_ms),
        };
        // Every path is made absolute here, once, against the directory the
        // server was started in: some consumers refuse relative paths
        // (wasmtime's cache), and none should depend on the working
        // directory staying the same.
        let data_dir = absolute("--data-dir (LOGGERHUB_DATA_DIR)", &self.data_dir)?;
        let mut config = Config::embedded(data_dir, self.listen);
        config.backends = urls.resolve(&config.data_dir)?;
        config.admin_token = set(secrets.admin_token);
        config.operator_token = set(secrets.operator_token);
        config.limits = Limits {
            max_body_bytes: self.max_body_bytes,
            queue_max_bytes: self.queue_max_bytes,
            dead_letter_cap: self.dead_letter_cap,
            dead_letter_max_bytes: self.dead_letter_max_mib << 20,
        };
        config.plugins = PluginPolicy {
            memory_mib: self.plugin_memory_mib,
            cpu_ms: self.plugin_cpu_ms,
            timeout_ms: self.plugin_timeout_ms,
            max_versions: self.plugin_versions,
        };
        config.processor.workers = self.workers;
        config.processor.turn_budget = Duration::from_millis(self.turn_budget_ms);
        config.processor.instance_budget_bytes = self.plugin_memory_budget_mib.saturating_mul(1 << 20);
        config.processor.instance_idle = Duration::from_secs(self.plugin_idle_secs.max(1));
        config.roles = self.role;
        config.plans_file = self
            .plans
            .map(|p| absolute("--plans (LOGGERHUB_PLANS)", &p))
            .transpose()?;
        config.default_plan = self.default_plan;
        config.upkeep_interval = Duration::from_millis(self.upkeep_interval_ms);
        config.syslog = syslog_bindings(self.syslog_listen, &self.syslog_tenants)?;
        Ok(config)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `LOGGERHUB_ADMIN_TOKEN`; generated and kept in the data dir if unset.
    pub admin_token: Option<String>,
    /// `LOGGERHUB_OPERATOR_TOKEN`; unset, `/metrics` and `/ready` are open
    /// to whoever reaches the listener.
    pub operator_token: Option<String>,
    pub limits: Limits,
    pub plugins: PluginPolicy,
    pub processor: ProcessorConfig,
    pub backends: Backends,
    /// The services this process runs (`--role`).
    pub roles: Roles,
    /// The operator's plans (`--plans`): a JSON file over the built-ins.
    pub plans_file: Option<PathBuf>,
    /// The plan of a tenant created without one (`--default-plan`; checked
    /// against the plans at start).
    pub default_plan: String,
    /// Between two sweeps of the upkeep job (`--upkeep-interval-ms`).
    pub upkeep_interval: Duration,
    /// The syslog listeners (`--syslog-listen`, `--syslog-tenant`).
    pub syslog: Vec<SyslogBinding>,
}

/// A syslog address and whose messages arrive there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogBinding {
    pub addr: SocketAddr,
    /// `None`: each message names its tenant with a key.
    pub tenant: Option<Slug>,
    /// On a tenant's own address, who may send there.
    pub senders: Senders,
}

impl SyslogBinding {
    /// Whether `peer` may send here at all.
    pub fn admits(&self, peer: std::net::IpAddr) -> bool {
        match &self.senders {
            Senders::From(nets) => nets.iter().any(|n| n.contains(peer)),
            Senders::Anyone | Senders::Keyed => true,
        }
    }
}

/// Who may send to a tenant's own syslog address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Senders {
    /// Anyone who reaches it (the address is the credential).
    Anyone,
    /// Each message must carry a key of the tenant, as on the shared
    /// address (`;key`).
    Keyed,
    /// Only these networks (`;from=10.0.0.0/8|192.168.1.7`).
    From(Vec<Cidr>),
}

/// An IP network: an address and how many of its leading bits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `fd00::/8`, or one address.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse().ok()?, None),
        };
        let max = if matches!(addr, std::net::IpAddr::V4(_)) {
            32
        } else {
            128
        };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        // An IPv4 peer on an IPv6 socket comes mapped.
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        let bits = |ip: std::net::IpAddr| match ip {
            std::net::IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
            std::net::IpAddr::V6(a) => (u128::from(a), 128),
        };
        let ((net, len), (peer, peer_len)) = (bits(self.addr), bits(ip));
        if len != peer_len {
            return false;
        }
        let mask = if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        };
        net & mask == peer & mask
    }
}

impl Config {
    /// Embedded defaults over `data_dir`.
    pub fn embedded(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        let data_dir = data_dir.into();
        Config {
            backends: Backends::embedded(&data_dir),
            data_dir,
            listen,
            admin_token: None,
            operator_token: None,
            limits: Limits::default(),
            plugins: PluginPolicy::default(),
            processor: ProcessorConfig::default(),
            roles: Roles::ALL,
            plans_file: None,
            default_plan: DEFAULT_PLAN.into(),
            upkeep_interval: DEFAULT_UPKEEP_INTERVAL,
            syslog: Vec::new(),
        }
    }
}

/// `path` made absolute against the working directory, or an error naming
/// the setting (an empty path, or a working directory that is gone).
pub(crate) fn absolute(setting: &'static str, path: &std::path::Path) -> Result<PathBuf, ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(bad(setting, "an empty path"));
    }
    std::path::absolute(path).map_err(|e| bad(setting, format!("{}: {e}", path.display())))
}

fn syslog_bindings(keyed: Option<SocketAddr>, tenants: &[String]) -> Result<Vec<SyslogBinding>, ConfigError> {
    const SETTING: &str = "--syslog-tenant (LOGGERHUB_SYSLOG_TENANTS)";
    let mut out: Vec<SyslogBinding> = keyed
        .map(|addr| SyslogBinding {
            addr,
            tenant: None,
            senders: Senders::Keyed,
        })
        .into_iter()
        .collect();
    for item in tenants.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let (item_addr, options) = item.split_once(';').unwrap_or((item, ""));
        let (slug, addr) = item_addr
            .split_once('=')
            .ok_or_else(|| bad(SETTING, format!("{item:?}: expected SLUG=ADDR[;key|;from=CIDR|CIDR…]")))?;
        let senders = match options.trim() {
            "" => Senders::Anyone,
            "key" => Senders::Keyed,
            o => match o.strip_prefix("from=") {
                Some(list) => Senders::From(
                    list.split('|')
                        .map(|c| {
                            Cidr::parse(c.trim())
                                .ok_or_else(|| bad(SETTING, format!("{item:?}: {c:?} is not an address or network")))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                None => return Err(bad(SETTING, format!("{item:?}: after `;`, `key` or `from=CIDR|CIDR…`"))),
            },
        };
        let slug = Slug::parse(slug.trim()).map_err(|e| bad(SETTING, format!("{item:?}: {e}")))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|e| bad(SETTING, format!("{item:?}: {e}")))?;
        if out.iter().any(|b| b.addr == addr && addr.port() != 0) {
            return Err(bad(SETTING, format!("{addr} is used twice")));
        }
        out.push(SyslogBinding {
            addr,
            tenant: Some(slug),
            senders,
        });
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Bytes of unprocessed batches the queue holds before ingest answers 503.
    pub queue_max_bytes: u64,
    /// Dead letters kept per tenant.
    pub dead_letter_cap: usize,
    /// Bytes of dead letters kept per tenant.
    pub dead_letter_max_bytes: u64,
}

/// What the operator allows tenants' plugins: the ceiling of their limits
/// (a pipeline may lower each, never raise it) and the versions kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginPolicy {
    pub memory_mib: u32,
    pub cpu_ms: u32,
    pub timeout_ms: u32,
    pub max_versions: usize,
}

impl Default for PluginPolicy {
    /// The runtime's defaults (runtime::Limits::default()).
    fn default() -> Self {
        PluginPolicy {
            memory_mib: 256,
            cpu_ms: 2000,
            timeout_ms: 10_000,
            max_versions: 10,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 10 * 1024 * 1024,
            queue_max_bytes: 512 * 1024 * 1024,
            dead_letter_cap: 1000,
            dead_letter_max_bytes: 256 << 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Concurrent pipeline workers.
    pub workers: usize,
    /// Queue entries one turn takes at most.
    pub max_entries: usize,
    /// The processing time one tenant may use per round of the scheduler
    /// before the others get theirs.
    pub turn_budget: Duration,
    /// Memory and tables all plugin instances of the process may hold;
    /// past it the least recently used tenants' instances are dropped.
    pub instance_budget_bytes: usize,
    /// Instances unused this long are dropped.
    pub instance_idle: Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            workers: 2,
            max_entries: 256,
            turn_budget: Duration::from_millis(250),
            instance_budget_bytes: 2048 << 20,
            instance_idle: Duration::from_secs(300),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// Checks `args` as flags; URLs they do not name are set empty, so the
    /// environment (`make test` exports the services' URLs) plays no part.
    fn check(args: &[&str]) -> Result<Config, ConfigError> {
        let unset = [
            "--database-url",
            "--redis-url",
            "--object-store-url",
            "--opensearch-url",
        ]
        .into_iter()
        .filter(|flag| !args.contains(flag))
        .map(|flag| format!("{flag}="));
        let argv: Vec<String> = std::iter::once("serve".to_string())
            .chain(args.iter().map(|a| a.to_string()))
            .chain(unset)
            .collect();
        Cli::try_parse_from(argv)
            .expect("parses")
            .serve
            .check(Secrets::default())
    }

    #[test]
    fn backends_by_url() {
        let c = check(&[
            "--data-dir",
            "/d",
            "--database-url",
            "postgres://u@h/db",
            "--redis-url",
            "redis://h:6379",
            "--object-store-url",
            "s3://logs?endpoint=http://h:9000&region=r1",
            "--opensearch-url",
            "http://h:9200",
        ])
        .expect("valid");
        assert_eq!(
            c.backends.metadata,
            MetadataBackend::Postgres("postgres://u@h/db".into())
        );
        assert!(matches!(&c.backends.queue, QueueBackend::Redis { name, .. } if name == "loggerhub"));
        assert_eq!(
            c.backends.raw,
            RawBackend::S3(S3Settings {
                bucket: "logs".into(),
                endpoint: Some("http://h:9000".into()),
                region: Some("r1".into()),
            })
        );
        assert!(c.backends.raw.is_shared());
        let e = check(&["--data-dir", "/d"]).expect("embedded");
        assert_eq!(e.backends, Backends::embedded(Path::new("/d")));
        assert!(!e.backends.raw.is_shared());
    }

    /// Each setting that cannot work is named in the error.
    #[test]
    fn syslog_bindings_parse() {
        let c = check(&[
            "--syslog-listen",
            "127.0.0.1:5514",
            "--syslog-tenant",
            "acme=127.0.0.1:5515",
        ])
        .expect("ok");
        assert_eq!(c.syslog.len(), 2);
        assert_eq!(c.syslog[0].tenant, None);
        assert_eq!(c.syslog[1].tenant.as_ref().map(Slug::as_str), Some("acme"));
        assert_eq!(c.syslog[1].senders, Senders::Anyone);
        let c = check(&[
            "--syslog-tenant",
            "acme=127.0.0.1:5515;key,beta=127.0.0.1:5516;from=10.0.0.0/8|192.168.1.7|fd00::/8",
        ])
        .expect("ok");
        assert_eq!(c.syslog[0].senders, Senders::Keyed);
        let Senders::From(nets) = &c.syslog[1].senders else {
            panic!("{:?}", c.syslog[1].senders)
        };
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        assert!(nets.iter().any(|n| n.contains(ip("10.200.3.4"))));
        assert!(nets.iter().any(|n| n.contains(ip("192.168.1.7"))));
        assert!(nets.iter().any(|n| n.contains(ip("::ffff:10.1.1.1"))), "v4-mapped");
        assert!(nets.iter().any(|n| n.contains(ip("fd00::1"))));
        assert!(!nets.iter().any(|n| n.contains(ip("192.168.1.8"))));
        assert!(!nets.iter().any(|n| n.contains(ip("11.0.0.1"))));
    }

    /// Relative paths, as `make run` passes them, become absolute against
    /// the working directory; the derived ones follow.
    #[test]
    fn relative_paths_become_absolute() {
        let cwd = std::env::current_dir().expect("cwd");
        let c = check(&["--data-dir", "./data", "--plans", "plans.json"]).expect("valid");
        assert_eq!(c.data_dir, cwd.join("data"));
        assert_eq!(c.plans_file, Some(cwd.join("plans.json")));
        assert_eq!(c.backends, Backends::embedded(&cwd.join("data")));
        let c = check(&[
            "--data-dir",
            "d",
            "--database-url",
            "sqlite://meta/lh.db",
            "--object-store-url",
            "file://raw",
        ])
        .expect("valid");
        assert_eq!(c.backends.metadata, MetadataBackend::Sqlite(cwd.join("meta/lh.db")));
        assert_eq!(c.backends.raw, RawBackend::Dir(cwd.join("raw")));
        let c = check(&["--database-url", "sqlite:///var/lh.db"]).expect("valid");
        assert_eq!(c.backends.metadata, MetadataBackend::Sqlite("/var/lh.db".into()));
    }

    #[test]
    fn bad_settings_fail_naming_the_setting() {
        for (args, setting) in [
            (&["--max-body-bytes", "0"][..], "--max-body-bytes"),
            (&["--database-url", "sqlite://"], "DATABASE_URL"),
            (&["--database-url", "sqlite://:memory:"], "DATABASE_URL"),
            (&["--object-store-url", "file://"], "OBJECT_STORE_URL"),
            (&["--queue-max-bytes", "0"], "--queue-max-bytes"),
            (&["--claim-idle-ms", "0"], "--claim-idle-ms"),
            (&["--workers", "100000"], "--workers"),
            (&["--turn-budget-ms", "0"], "--turn-budget-ms"),
            (&["--turn-budget-ms", "60000"], "--turn-budget-ms"),
            (&["--database-url", "mysql://x"], "DATABASE_URL"),
            (&["--redis-url", "http://x"], "REDIS_URL"),
            (&["--redis-url", "redis://x", "--queue-name", "a b"], "--queue-name"),
            (&["--object-store-url", "gs://b"], "OBJECT_STORE_URL"),
            (&["--object-store-url", "s3://"], "OBJECT_STORE_URL"),
            (&["--object-store-url", "s3://b?endpoint=h:9000"], "OBJECT_STORE_URL"),
            (&["--object-store-url", "s3://b?secret=x"], "OBJECT_STORE_URL"),
            (&["--opensearch-url", "h:9200"], "OPENSEARCH_URL"),
            (
                &["--opensearch-url", "http://h:9200", "--index-prefix", "Logs-"],
                "--index-prefix",
            ),
            (&["--syslog-tenant", "acme"], "--syslog-tenant"),
            (&["--syslog-tenant", "../x=127.0.0.1:5514"], "--syslog-tenant"),
            (&["--syslog-tenant", "acme=localhost"], "--syslog-tenant"),
            (&["--syslog-tenant", "acme=127.0.0.1:5514;keys"], "--syslog-tenant"),
            (
                &["--syslog-tenant", "acme=127.0.0.1:5514;from=10.0.0.0/33"],
                "--syslog-tenant",
            ),
            (&["--syslog-tenant", "acme=127.0.0.1:5514;from=host"], "--syslog-tenant"),
            (
                &["--syslog-tenant", "acme=127.0.0.1:5514,beta=127.0.0.1:5514"],
                "--syslog-tenant",
            ),
        ] {
            let err = check(args).expect_err("must fail");
            assert!(err.setting.starts_with(setting), "{args:?}: {err}");
        }
    }
}
