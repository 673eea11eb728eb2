//! Settings of a `loggerhub serve` process, built from flags and env by
//! `main` and passed in explicitly, so tests set them directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `LOGGERHUB_ADMIN_TOKEN`; generated and kept in the data dir if unset.
    pub admin_token: Option<String>,
    pub limits: Limits,
    pub processor: ProcessorConfig,
    pub backends: Backends,
    /// The services this process runs (`--role`).
    pub roles: Roles,
}

/// One service of the platform (DESIGN §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `POST /v1/logs` into the queue.
    Ingest,
    /// The pipeline workers, and the plugin, pipeline and dead-letter API
    /// (plugins live beside the workers that run them).
    Processor,
    /// The read API (list, search, detail, stats) and the admin API.
    Search,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Processor => "processor",
            Role::Search => "search",
        }
    }
}

/// A set of roles: `all`, or a comma-separated list such as
/// `ingest,search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub ingest: bool,
    pub processor: bool,
    pub search: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        ingest: true,
        processor: true,
        search: true,
    };

    pub fn parse(s: &str) -> Result<Roles, String> {
        let mut roles = Roles {
            ingest: false,
            processor: false,
            search: false,
        };
        for part in s.split(',').map(str::trim) {
            match part {
                "all" => roles = Roles::ALL,
                "ingest" => roles.ingest = true,
                "processor" => roles.processor = true,
                "search" => roles.search = true,
                other => return Err(format!("unknown role {other:?}: use ingest, processor, search or all")),
            }
        }
        Ok(roles)
    }

    pub fn has(&self, role: Role) -> bool {
        match role {
            Role::Ingest => self.ingest,
            Role::Processor => self.processor,
            Role::Search => self.search,
        }
    }

    pub fn names(&self) -> String {
        if *self == Roles::ALL {
            return "all".into();
        }
        [Role::Ingest, Role::Processor, Role::Search]
            .into_iter()
            .filter(|r| self.has(*r))
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Which distributed backends to use, by URL (DESIGN §1); `None` means the
/// embedded one in the data dir.
#[derive(Debug, Clone)]
pub struct Backends {
    /// `DATABASE_URL`: `postgres://…` or `sqlite://<file>`.
    pub database_url: Option<String>,
    /// `REDIS_URL`: `redis://host:port[/db]`, the queue as a Redis stream.
    pub redis_url: Option<String>,
    /// `OBJECT_STORE_URL`: `s3://bucket?endpoint=…&region=…` or `file://dir`.
    pub object_store_url: Option<String>,
    /// `OPENSEARCH_URL`: `http[s]://[user:password@]host:port`.
    pub opensearch_url: Option<String>,
    /// Tenant `t`'s OpenSearch index is `<index_prefix>t`.
    pub index_prefix: String,
    /// Prefix of the queue's Redis keys (`<name>:stream`, `<name>:bytes`):
    /// every process of one deployment uses the same.
    pub queue_name: String,
    /// How long a Redis queue entry stays with a processor that stopped
    /// answering before another one takes it: longer than the slowest
    /// batch (CPU budgets are 2 s per plugin call, store retries back off
    /// 1 s).
    pub claim_idle: Duration,
}

impl Default for Backends {
    fn default() -> Self {
        Backends {
            database_url: None,
            redis_url: None,
            object_store_url: None,
            opensearch_url: None,
            index_prefix: crate::search::opensearch::DEFAULT_INDEX_PREFIX.into(),
            queue_name: "loggerhub".into(),
            claim_idle: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Bytes of unprocessed batches the queue holds before ingest answers 503.
    pub queue_max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 10 * 1024 * 1024,
            queue_max_bytes: 512 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Concurrent pipeline workers.
    pub workers: usize,
    /// Queue entries a worker takes at once.
    pub max_entries: usize,
    /// Records a worker gathers before it runs the pipeline and commits.
    pub max_records: usize,
    /// How long a worker waits for more entries to fill a batch.
    pub linger: Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            workers: 2,
            max_entries: 256,
            max_records: 16_384,
            linger: Duration::from_millis(50),
        }
    }
}

impl Config {
    /// Embedded defaults over `data_dir`.
    pub fn embedded(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Config {
            data_dir: data_dir.into(),
            listen,
            admin_token: None,
            limits: Limits::default(),
            processor: ProcessorConfig::default(),
            backends: Backends::default(),
            roles: Roles::ALL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse() {
        assert_eq!(Roles::parse("all"), Ok(Roles::ALL));
        assert_eq!(Roles::parse("ingest,search,processor"), Ok(Roles::ALL));
        let r = Roles::parse("ingest, search").expect("parses");
        assert!(r.has(Role::Ingest) && r.has(Role::Search) && !r.has(Role::Processor));
        assert_eq!(r.names(), "ingest,search");
        assert!(Roles::parse("indexer").is_err());
        assert!(Roles::parse("").is_err());
    }
}
