//! The raw store: every record routed to it, whole, as one NDJSON object per
//! batch under `logs/<tenant>/<yyyy>/<mm>/<dd>/<batch-id>.ndjson[.gz]`
//! (DESIGN §3). One implementation over `object_store`, so the embedded
//! local directory and S3 share the code and the key layout.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{Level, LogRecord, format_ts};
use loggerhub_codec::time::{civil_date, parse_rfc3339};

/// Batches smaller than this are stored plain: gzip's header and dictionary
/// warm-up do not pay for themselves below a few KiB.
const COMPRESS_FROM_BYTES: usize = 4096;
/// Refuse to inflate a stored object past this size (a corrupt or hostile
/// object must not exhaust memory).
const MAX_INFLATED_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Clone)]
pub struct RawStore {
    store: Arc<dyn ObjectStore>,
}

/// One line of a raw batch.
#[derive(Serialize, Deserialize)]
struct RawLine<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    tenant: Cow<'a, str>,
    #[serde(borrow)]
    service: Cow<'a, str>,
    #[serde(borrow)]
    level: Cow<'a, str>,
    timestamp: String,
    received_at: String,
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(borrow)]
    full_log: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    language: Option<Cow<'a, str>>,
    attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    raw_path: Option<Cow<'a, str>>,
}

/// A record as one JSON object: a line of a raw batch, and the stored
/// source of an index document.
pub fn record_to_json(r: &LogRecord) -> Vec<u8> {
    // Serialising plain strings and maps cannot fail.
    serde_json::to_vec(&to_line(r)).unwrap_or_default()
}

/// Reads what [`record_to_json`] wrote.
pub fn record_from_json(bytes: &[u8]) -> Result<LogRecord, String> {
    let raw: RawLine<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let raw_path = raw.raw_path.clone().map(Cow::into_owned);
    let mut rec = from_line(raw, "");
    rec.raw_path = raw_path;
    Ok(rec)
}

const S3_MAX_RETRIES: usize = 3;
const S3_RETRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const S3_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl RawStore {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        RawStore { store }
    }

    /// The bucket (or directory) itself, for what else the cluster shares
    /// through it (tenants' plugins).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The embedded store: a directory.
    pub fn local(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        Ok(RawStore::new(Arc::new(LocalFileSystem::new_with_prefix(dir)?)))
    }

    /// The store `OBJECT_STORE_URL` names: `s3://<bucket>?endpoint=<url>&region=<r>`
    /// for any S3 API (credentials from `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`), `file://<dir>` for a local directory; `None`
    /// means `<data dir>/raw`.
    pub fn open(url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        let Some(url) = url else {
            return Self::local(&data_dir.join("raw"));
        };
        if let Some(dir) = url.strip_prefix("file://") {
            return Self::local(Path::new(dir));
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(StoreError::BadUrl(format!(
                "OBJECT_STORE_URL {url:?}: expected s3://bucket?endpoint=… or file://dir"
            )));
        };
        let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
        let bucket = bucket.trim_end_matches('/');
        if bucket.is_empty() {
            return Err(StoreError::BadUrl(format!("OBJECT_STORE_URL {url:?}: no bucket")));
        }
        // Bounded retries: a store that is down must fail a batch (which the
        // processor hands back and retries) and /ready within seconds, not
        // after object_store's default three minutes.
        let retry = object_store::RetryConfig {
            backoff: object_store::BackoffConfig::default(),
            max_retries: S3_MAX_RETRIES,
            retry_timeout: S3_RETRY_TIMEOUT,
        };
        let client = object_store::ClientOptions::new().with_connect_timeout(S3_CONNECT_TIMEOUT);
        let mut s3 = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry)
            .with_client_options(client);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", v)) => {
                    // Self-hosted S3 (MinIO, Garage) is addressed by path,
                    // often over plain HTTP inside the cluster.
                    s3 = s3
                        .with_endpoint(v)
                        .with_allow_http(v.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                Some(("region", v)) => s3 = s3.with_region(v),
                _ => {
                    return Err(StoreError::BadUrl(format!(
                        "OBJECT_STORE_URL {url:?}: unknown parameter {pair:?} (endpoint, region)"
                    )));
                }
            }
        }
        Ok(RawStore::new(Arc::new(s3.build()?)))
    }

    /// Writes `records` as one object named after `batch_id` and returns its
    /// key; record `i` is line `i + 1`. The same records always give the same
    /// key and bytes, so a replay overwrites rather than duplicates.
    pub async fn put_batch(
        &self,
        tenant: &str,
        batch_id: ulid::Ulid,
        records: &[&LogRecord],
    ) -> Result<String, StoreError> {
        let mut ndjson = Vec::with_capacity(records.iter().map(|r| r.full_log.len() + r.message.len() + 256).sum());
        for r in records {
            let mut line = to_line(r);
            // The raw store is where raw_path points; it never holds it.
            line.raw_path = None;
            serde_json::to_writer(&mut ndjson, &line).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            ndjson.push(b'\n');
        }
        let (y, m, d) = civil_date(
            i64::try_from(batch_id.timestamp_ms())
                .unwrap_or(0)
                .saturating_mul(1_000_000),
        );
        let mut key = format!("logs/{tenant}/{y:04}/{m:02}/{d:02}/{batch_id}.ndjson");
        let body = if ndjson.len() >= COMPRESS_FROM_BYTES {
            key.push_str(".gz");
            let mut enc =
                flate2::write::GzEncoder::new(Vec::with_capacity(ndjson.len() / 4), flate2::Compression::fast());
            enc.write_all(&ndjson)?;
            enc.finish()?
        } else {
            ndjson
        };
        self.store
            .put(&ObjectPath::from(key.as_str()), PutPayload::from(body))
            .await?;
        Ok(key)
    }

    /// Rebuilds a record from `raw_path` (`<key>#<line>`).
    pub async fn read(&self, raw_path: &str) -> Result<Option<LogRecord>, StoreError> {
        let Some((key, line)) = raw_path.rsplit_once('#') else {
            return Err(StoreError::Corrupt(format!("bad raw path {raw_path:?}")));
        };
        let line: usize = line
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("bad raw path {raw_path:?}")))?;
        let bytes = match self.store.get(&ObjectPath::from(key)).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let text = if key.ends_with(".gz") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .take(MAX_INFLATED_BYTES)
                .read_to_end(&mut out)?;
            out
        } else {
            bytes.to_vec()
        };
        let Some(l) = text
            .split(|b| *b == b'\n')
            .nth(line.saturating_sub(1))
            .filter(|l| !l.is_empty())
        else {
            return Ok(None);
        };
        let raw: RawLine<'_> = serde_json::from_slice(l).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(from_line(raw, raw_path)))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        match self.store.head(&ObjectPath::from("logs/.ping")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn to_line(r: &LogRecord) -> RawLine<'_> {
    RawLine {
        id: Cow::Borrowed(&r.id),
        tenant: Cow::Borrowed(&r.tenant),
        service: Cow::Borrowed(&r.service),
        level: Cow::Borrowed(r.level.as_str()),
        timestamp: format_ts(r.timestamp),
        received_at: format_ts(r.received_at),
        message: Cow::Borrowed(&r.message),
        full_log: Cow::Borrowed(&r.full_log),
        language: r.language.as_deref().map(Cow::Borrowed),
        attributes: r
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
        raw_path: r.raw_path.as_deref().map(Cow::Borrowed),
    }
}

fn from_line(l: RawLine<'_>, raw_path: &str) -> LogRecord {
    LogRecord {
        id: l.id.into_owned(),
        tenant: l.tenant.into_owned(),
        service: l.service.into_owned(),
        level: Level::parse(&l.level).unwrap_or_default(),
        timestamp: parse_rfc3339(&l.timestamp).unwrap_or(0),
        received_at: parse_rfc3339(&l.received_at).unwrap_or(0),
        message: l.message.into_owned(),
        full_log: l.full_log.into_owned(),
        language: l.language.map(Cow::into_owned),
        attributes: l
            .attributes
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        raw_path: Some(raw_path.to_string()),
    }
}
