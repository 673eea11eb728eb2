//! Settings of a `loggerhub serve` process. `ServeArgs` holds them as flags
//! and environment variables read (by clap, in `main`); `ServeArgs::check`
//! turns them into a `Config` whose backends are typed. A setting that
//! cannot work fails there, at start, with a message naming it. Tests build
//! a `Config` directly.
//!
//! **Invariant:** `config` depends on nothing else in the host but the
//! vocabulary of `model` (a setting naming a tenant holds a `Slug`); every
//! other module reads its settings from the `Config` it is handed.
//!
//! `flags` declares the settings, `check` turns them into a `Config`,
//! `backends` reads the backends' URLs, `syslog` the syslog addresses.

mod backends;
mod check;
mod flags;
mod roles;
mod syslog;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use backends::{BackendUrls, Backends, IndexBackend, MetadataBackend, QueueBackend, RawBackend, S3Settings};
pub use flags::{Secrets, ServeArgs};
pub use roles::{Role, Roles};
pub use syslog::{Cidr, Senders, SyslogBinding};

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
            // Bounded by the turn's 4 MiB of bodies and its time budget
            // first; this bound matters only for small entries, where 256
            // (one record a request) made a commit of every store for
            // every 256 records (issue 23, small requests).
            max_entries: 4096,
            turn_budget: Duration::from_millis(250),
            // The default pipeline's instances hold about 13 MiB a tenant
            // after a 4 MiB turn; 2 GiB let 100 busy tenants take the
            // server past 1.9 GiB (issue 23). A tenant past the budget
            // instantiates again on its next turn (~7 µs and its memory's
            // page faults), which is cheap next to the turn.
            instance_budget_bytes: 256 << 20,
            instance_idle: Duration::from_secs(300),
        }
    }
}
