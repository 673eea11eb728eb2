//! The backends a process uses, by URL (DESIGN §1): unset means the
//! embedded one in the data dir. URLs are checked here, at start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ConfigError, absolute, bad};

/// Where the metadata lives (`DATABASE_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataBackend {
    Sqlite(PathBuf),
    Postgres(String),
}

/// Where accepted batches wait (`REDIS_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueBackend {
    /// The durable local queue in this directory.
    Local(PathBuf),
    Redis {
        url: String,
        /// Prefix of the keys (`<name>:lane:<tenant>`, `<name>:bytes`): every
        /// process of one deployment uses the same.
        name: String,
        claim_idle: Duration,
    },
}

/// Where raw logs go (`OBJECT_STORE_URL`), and with them the dead letters
/// and, in a cluster, the tenants' plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawBackend {
    /// `<data dir>/raw`: this process alone.
    Embedded(PathBuf),
    /// `file://dir`: a directory other processes may share.
    Dir(PathBuf),
    S3(S3Settings),
}

impl RawBackend {
    /// The store an `OBJECT_STORE_URL` names.
    pub fn from_url(url: &str) -> Result<RawBackend, ConfigError> {
        parse_object_store_url(url)
    }

    /// Whether other processes see what this one writes there.
    pub fn is_shared(&self) -> bool {
        !matches!(self, RawBackend::Embedded(_))
    }
}

/// `s3://<bucket>?endpoint=<url>&region=<r>`; everything else (keys,
/// `AWS_ALLOW_HTTP`, …) comes from the `AWS_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

/// Where the full-text index lives (`OPENSEARCH_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexBackend {
    Tantivy(PathBuf),
    OpenSearch { url: String, prefix: String },
}

/// The backends of one process (DESIGN §1): unset URLs mean the embedded
/// one in the data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backends {
    pub metadata: MetadataBackend,
    pub queue: QueueBackend,
    pub raw: RawBackend,
    pub index: IndexBackend,
}

impl Backends {
    pub fn embedded(data_dir: &Path) -> Self {
        Backends {
            metadata: MetadataBackend::Sqlite(data_dir.join("metadata.db")),
            queue: QueueBackend::Local(data_dir.join("queue")),
            raw: RawBackend::Embedded(data_dir.join("raw")),
            index: IndexBackend::Tantivy(data_dir.join("index")),
        }
    }
}

/// The backend URLs as given, before they are checked.
#[derive(Debug, Clone)]
pub struct BackendUrls {
    pub database: Option<String>,
    pub redis: Option<String>,
    pub object_store: Option<String>,
    pub opensearch: Option<String>,
    pub index_prefix: String,
    pub queue_name: String,
    pub claim_idle: Duration,
}

impl BackendUrls {
    pub fn resolve(self, data_dir: &Path) -> Result<Backends, ConfigError> {
        let mut b = Backends::embedded(data_dir);
        if let Some(url) = self.database {
            b.metadata = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                MetadataBackend::Postgres(url)
            } else if let Some(path) = url.strip_prefix("sqlite://") {
                if path.starts_with(":memory:") {
                    return Err(bad(
                        "DATABASE_URL",
                        "sqlite://:memory: forgets every tenant when the process stops: name a file",
                    ));
                }
                MetadataBackend::Sqlite(absolute("DATABASE_URL", Path::new(path))?)
            } else {
                return Err(bad(
                    "DATABASE_URL",
                    format!("{url:?}: expected postgres://… or sqlite://…"),
                ));
            };
        }
        if let Some(url) = self.redis {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(bad("REDIS_URL", format!("{url:?}: expected redis://host:port")));
            }
            let name_ok = !self.queue_name.is_empty()
                && self.queue_name.len() <= 100
                && self.queue_name.bytes().all(|c| c.is_ascii_graphic());
            if !name_ok {
                return Err(bad(
                    "--queue-name (LOGGERHUB_QUEUE_NAME)",
                    "1 to 100 printable characters, no spaces",
                ));
            }
            b.queue = QueueBackend::Redis {
                url,
                name: self.queue_name,
                claim_idle: self.claim_idle,
            };
        }
        if let Some(url) = self.object_store {
            b.raw = parse_object_store_url(&url)?;
        }
        if let Some(url) = self.opensearch {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad("OPENSEARCH_URL", format!("{url:?}: expected http[s]://host:port")));
            }
            if !valid_index_prefix(&self.index_prefix) {
                return Err(bad(
                    "--index-prefix (OPENSEARCH_INDEX_PREFIX)",
                    format!(
                        "{:?}: lowercase letters, digits, '-', '_' and '.', starting with a letter or digit",
                        self.index_prefix
                    ),
                ));
            }
            b.index = IndexBackend::OpenSearch {
                url,
                prefix: self.index_prefix,
            };
        }
        Ok(b)
    }
}

/// OpenSearch index names are lowercase and may not start with `-`, `_` or
/// `+`; a tenant slug (at most 40 bytes) goes after the prefix.
fn valid_index_prefix(p: &str) -> bool {
    p.len() <= 200
        && p.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && p.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(&c))
}

fn parse_object_store_url(url: &str) -> Result<RawBackend, ConfigError> {
    const SETTING: &str = "OBJECT_STORE_URL";
    if let Some(dir) = url.strip_prefix("file://") {
        return Ok(RawBackend::Dir(absolute(SETTING, Path::new(dir))?));
    }
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(bad(
            SETTING,
            format!("{url:?}: expected s3://bucket?endpoint=… or file://dir"),
        ));
    };
    let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
    let bucket = bucket.trim_end_matches('/');
    if bucket.is_empty() {
        return Err(bad(SETTING, format!("{url:?}: no bucket")));
    }
    let mut s3 = S3Settings {
        bucket: bucket.to_string(),
        endpoint: None,
        region: None,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("endpoint", v)) if v.starts_with("http://") || v.starts_with("https://") => {
                s3.endpoint = Some(v.to_string());
            }
            Some(("region", v)) if !v.is_empty() => s3.region = Some(v.to_string()),
            _ => {
                return Err(bad(
                    SETTING,
                    format!("{url:?}: unknown or empty parameter {pair:?} (endpoint=http[s]://…, region=…)"),
                ));
            }
        }
    }
    Ok(RawBackend::S3(s3))
}
