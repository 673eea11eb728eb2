//! The raw store: every record routed to it, whole, as one NDJSON object per
//! batch under `logs/<tenant>/<yyyy>/<mm>/<dd>/<name>-<newest>.ndjson[.gz]`
//! (`<name>`: `name::BatchName`)
//! (DESIGN §3), where the date and `<newest>` (unix ms) are those of the
//! newest record in it: retention deletes an object once its newest record
//! has expired, from the name alone. One implementation over
//! `object_store`, so the embedded local directory and S3 share the code
//! and the key layout.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreExt, PutPayload};

mod name;

pub use self::name::BatchName;
use self::name::newest_of;
use super::blobs::{Blobs, local, object_err};
use crate::config::{RawBackend, S3Settings};
use crate::error::{Backend, BackendError};
use crate::model::LogRecord;
use crate::model::json::write_record;
use crate::model::record_from_json;
use loggerhub_codec::time::civil_date;

/// Batches smaller than this are stored plain: gzip's header and dictionary
/// warm-up do not pay for themselves below a few KiB.
const COMPRESS_FROM_BYTES: usize = 4096;
/// Refuse to inflate a stored object past this size (a corrupt or hostile
/// object must not take a detail read's CPU for long).
const MAX_INFLATED_BYTES: u64 = 512 * 1024 * 1024;
/// Longest line a detail read holds: a record is at most a request body
/// (10 MiB by default) and its JSON escapes. The object is read a line at a
/// time, so a read holds one line, never the whole object inflated.
const MAX_LINE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Clone)]
pub struct RawStore {
    store: Arc<dyn ObjectStore>,
}

const S3_MAX_RETRIES: usize = 3;
const S3_RETRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const S3_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn err(e: object_store::Error) -> BackendError {
    object_err(Backend::Raw, e)
}

fn corrupt(raw_path: &str) -> BackendError {
    BackendError::corrupt(Backend::Raw, format!("bad raw path {raw_path:?}"))
}

impl RawStore {
    /// The store the settings name (`OBJECT_STORE_URL`).
    pub fn open(backend: &RawBackend) -> Result<Self, BackendError> {
        let store: Arc<dyn ObjectStore> = match backend {
            RawBackend::Embedded(dir) | RawBackend::Dir(dir) => Arc::new(local(dir, Backend::Raw)?),
            RawBackend::S3(s3) => Arc::new(s3_store(s3)?.build().map_err(err)?),
        };
        Ok(RawStore { store })
    }

    /// A directory of this machine.
    pub fn local(dir: &Path) -> Result<Self, BackendError> {
        Self::open(&RawBackend::Embedded(dir.to_path_buf()))
    }

    /// The folder `prefix/` of the same bucket (or directory), for what
    /// else the cluster shares through it.
    pub fn blobs(&self, prefix: &str, backend: Backend) -> Blobs {
        Blobs::new(self.store.clone(), prefix, backend)
    }

    /// Writes `records` as one object named after `batch` (a queue entry,
    /// or several written together) and returns its key; record `i` is line
    /// `i + 1`. The same records always give the same key and bytes, so a
    /// replay overwrites rather than duplicates.
    pub async fn put_batch(
        &self,
        tenant: &str,
        batch: impl Into<BatchName>,
        records: &[&LogRecord],
    ) -> Result<String, BackendError> {
        let batch = batch.into();
        let mut ndjson = Vec::with_capacity(records.iter().map(|r| r.full_log.len() + r.message.len() + 256).sum());
        for r in records {
            // The raw store is where raw_path points; it never holds it.
            write_record(&mut ndjson, r, false);
            ndjson.push(b'\n');
        }
        let newest_ms = records
            .iter()
            .map(|r| r.timestamp.div_euclid(1_000_000))
            .max()
            .unwrap_or_else(|| batch.time_ms())
            .max(0);
        let (y, m, d) = civil_date(newest_ms.saturating_mul(1_000_000));
        let stem = batch.stem(records.iter().map(|r| r.id.as_str()));
        let mut key = format!("logs/{tenant}/{y:04}/{m:02}/{d:02}/{stem}-{newest_ms}.ndjson");
        let body = if ndjson.len() >= COMPRESS_FROM_BYTES {
            key.push_str(".gz");
            let mut enc =
                flate2::write::GzEncoder::new(Vec::with_capacity(ndjson.len() / 4), flate2::Compression::fast());
            let io = |e| BackendError::io(Backend::Raw, e);
            enc.write_all(&ndjson).map_err(io)?;
            enc.finish().map_err(io)?
        } else {
            ndjson
        };
        self.store
            .put(&ObjectPath::from(key.as_str()), PutPayload::from(body))
            .await
            .map_err(err)?;
        Ok(key)
    }

    /// The keys of the tenant's batch objects, in no particular order.
    pub async fn batch_keys(&self, tenant: &str) -> Result<Vec<String>, BackendError> {
        if !crate::model::valid_slug(tenant) {
            return Ok(Vec::new());
        }
        let prefix = ObjectPath::from(format!("logs/{tenant}"));
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(err)?;
        Ok(objects.into_iter().map(|o| o.location.to_string()).collect())
    }

    /// Every record of the batch object `key`, each with its raw path
    /// (`<key>#<line>`); none if there is no such object.
    pub async fn read_batch(&self, key: &str) -> Result<Vec<LogRecord>, BackendError> {
        let bytes = match self.store.get(&ObjectPath::from(key)).await {
            Ok(r) => r.bytes().await.map_err(err)?,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let inflated: Box<dyn Read + '_> = if key.ends_with(".gz") {
            Box::new(flate2::read::GzDecoder::new(&bytes[..]))
        } else {
            Box::new(&bytes[..])
        };
        let mut text = String::new();
        inflated
            .take(MAX_INFLATED_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| BackendError::corrupt(Backend::Raw, e))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(i, l)| {
                let mut rec = record_from_json(l.as_bytes()).map_err(|e| BackendError::corrupt(Backend::Raw, e))?;
                rec.raw_path = Some(format!("{key}#{}", i + 1));
                Ok(rec)
            })
            .collect()
    }

    /// Rebuilds a record from `raw_path` (`<key>#<line>`).
    pub async fn read(&self, raw_path: &str) -> Result<Option<LogRecord>, BackendError> {
        let Some((key, line)) = raw_path.rsplit_once('#') else {
            return Err(corrupt(raw_path));
        };
        let line: usize = line.parse().map_err(|_| corrupt(raw_path))?;
        let bytes = match self.store.get(&ObjectPath::from(key)).await {
            Ok(r) => r.bytes().await.map_err(err)?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let inflated: Box<dyn Read + '_> = if key.ends_with(".gz") {
            Box::new(flate2::read::GzDecoder::new(&bytes[..]))
        } else {
            Box::new(&bytes[..])
        };
        let Some(l) =
            nth_line(inflated.take(MAX_INFLATED_BYTES), line).map_err(|e| BackendError::corrupt(Backend::Raw, e))?
        else {
            return Ok(None);
        };
        let mut rec = record_from_json(&l).map_err(|e| BackendError::corrupt(Backend::Raw, e))?;
        rec.raw_path = Some(raw_path.to_string());
        Ok(Some(rec))
    }

    /// Deletes up to `max` of the tenant's objects whose every record has a
    /// timestamp before `before` (unix ns); returns how many went. Only the
    /// days up to `before` are listed.
    pub async fn delete_expired(&self, tenant: &str, before: i64, max: usize) -> Result<usize, BackendError> {
        let (by, bm, bd) = civil_date(before.max(0));
        let cutoff_day = (by, bm, bd);
        let mut deleted = 0;
        for year in self.folders(&format!("logs/{tenant}")).await? {
            for month in self.folders(&year.0).await? {
                for day in self.folders(&month.0).await? {
                    let (Some(y), Some(m), Some(d)) = (year.1, month.1, day.1) else {
                        continue;
                    };
                    if (y, m, d) > cutoff_day {
                        return Ok(deleted);
                    }
                    let objects: Vec<_> = self
                        .store
                        .list(Some(&ObjectPath::from(day.0.as_str())))
                        .try_collect()
                        .await
                        .map_err(err)?;
                    for o in objects {
                        if deleted >= max {
                            return Ok(deleted);
                        }
                        let name = o.location.filename().unwrap_or("");
                        let expired = match newest_of(name) {
                            Some(ms) => ms.saturating_add(1).saturating_mul(1_000_000) <= before,
                            // Named before objects carried their newest
                            // record: its folder's day has to be over.
                            None => (y, m, d) < cutoff_day,
                        };
                        if expired {
                            self.delete(&o.location).await?;
                            deleted += 1;
                        }
                    }
                }
            }
        }
        Ok(deleted)
    }

    /// Deletes up to `max` of the tenant's objects; returns how many (0 once
    /// none is left).
    pub async fn purge(&self, tenant: &str, max: usize) -> Result<usize, BackendError> {
        let prefix = ObjectPath::from(format!("logs/{tenant}"));
        let mut listed = self.store.list(Some(&prefix));
        let mut deleted = 0;
        while deleted < max
            && let Some(o) = listed.try_next().await.map_err(err)?
        {
            self.delete(&o.location).await?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Bytes the tenant's objects take.
    pub async fn stored_bytes(&self, tenant: &str) -> Result<u64, BackendError> {
        let prefix = ObjectPath::from(format!("logs/{tenant}"));
        let mut listed = self.store.list(Some(&prefix));
        let mut bytes = 0u64;
        while let Some(o) = listed.try_next().await.map_err(err)? {
            bytes = bytes.saturating_add(o.size);
        }
        Ok(bytes)
    }

    async fn delete(&self, path: &ObjectPath) -> Result<(), BackendError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    /// The folders right under `prefix`, in order, each with its name as a
    /// number (None when it is not one).
    async fn folders(&self, prefix: &str) -> Result<Vec<(String, Option<i64>)>, BackendError> {
        let listed = match self.store.list_with_delimiter(Some(&ObjectPath::from(prefix))).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let mut out: Vec<_> = listed
            .common_prefixes
            .into_iter()
            .map(|p| {
                let n = p.filename().and_then(|f| f.parse().ok());
                (p.to_string(), n)
            })
            .collect();
        out.sort_by_key(|(_, n)| *n);
        Ok(out)
    }

    pub async fn ping(&self) -> Result<(), BackendError> {
        match self.store.head(&ObjectPath::from("logs/.ping")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }
}

/// An S3 client: our retry and timeout bounds first, then every `AWS_*`
/// variable as object_store and the AWS tools document them (endpoint,
/// keys, `AWS_ALLOW_HTTP`, …), then the URL's own `endpoint` and `region`.
fn s3_store(s3: &S3Settings) -> Result<AmazonS3Builder, BackendError> {
    // Bounded retries: a store that is down must fail a batch (which the
    // processor hands back and retries) and /ready within seconds, not
    // after object_store's default three minutes.
    let retry = object_store::RetryConfig {
        backoff: object_store::BackoffConfig::default(),
        max_retries: S3_MAX_RETRIES,
        retry_timeout: S3_RETRY_TIMEOUT,
    };
    let client = object_store::ClientOptions::new().with_connect_timeout(S3_CONNECT_TIMEOUT);
    let mut b = AmazonS3Builder::new().with_client_options(client).with_retry(retry);
    for (key, value) in std::env::vars() {
        if key.starts_with("AWS_")
            && let Ok(k) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
        {
            b = b.with_config(k, value);
        }
    }
    b = b.with_bucket_name(&s3.bucket);
    if let Some(endpoint) = &s3.endpoint {
        // Self-hosted S3 (MinIO, Garage) is addressed by path, often over
        // plain HTTP inside the cluster.
        b = b
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    if let Some(region) = &s3.region {
        b = b.with_region(region);
    }
    let http_endpoint = [AmazonS3ConfigKey::Endpoint, AmazonS3ConfigKey::S3Endpoint]
        .iter()
        .filter_map(|k| b.get_config_value(k))
        .find(|e| e.starts_with("http://"));
    let allow_http = b
        .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if let Some(endpoint) = http_endpoint
        && !allow_http
    {
        return Err(BackendError::rejected(
            Backend::Raw,
            format!(
                "AWS_ENDPOINT {endpoint:?} is plain HTTP: set AWS_ALLOW_HTTP=true, or name it in OBJECT_STORE_URL (s3://bucket?endpoint=…)"
            ),
        ));
    }
    Ok(b)
}

/// Line `n` (from 1) of `text`, read a line at a time: what is held is
/// one line of at most `MAX_LINE_BYTES`. `None` past the end or for an
/// empty line.
fn nth_line(text: impl Read, n: usize) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(text);
    let mut buf = Vec::new();
    for _ in 0..n.max(1) {
        buf.clear();
        let read = (&mut reader).take(MAX_LINE_BYTES).read_until(b'\n', &mut buf)?;
        if read == 0 {
            return Ok(None);
        }
        if buf.last() != Some(&b'\n') && read as u64 == MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a line over {MAX_LINE_BYTES} bytes"),
            ));
        }
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    Ok((!buf.is_empty()).then_some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    fn settings(endpoint: Option<&str>) -> S3Settings {
        S3Settings {
            bucket: "b".into(),
            endpoint: endpoint.map(str::to_string),
            region: Some("r".into()),
        }
    }

    /// An endpoint named in the URL is allowed over HTTP; the URL wins over
    /// the environment. (The environment's own AWS_ENDPOINT and
    /// AWS_ALLOW_HTTP are tested end to end: tests must not set variables
    /// other tests read.)
    #[test]
    fn url_endpoint_allows_http() {
        let b = s3_store(&settings(Some("http://127.0.0.1:1"))).expect("valid");
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::Endpoint).as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
                .as_deref(),
            Some("true")
        );
        assert_eq!(b.get_config_value(&AmazonS3ConfigKey::Region).as_deref(), Some("r"));
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    fn record(tenant: &str, n: usize) -> LogRecord {
        LogRecord {
            id: format!("01HZ{n:022}"),
            tenant: tenant.into(),
            service: "web".into(),
            level: loggerhub_codec::Level::Info,
            timestamp: 1_700_000_000_000_000_000,
            received_at: 1_700_000_000_000_000_000,
            message: format!("message {n}"),
            full_log: "x".repeat(n * 100),
            language: None,
            attributes: Vec::new(),
            raw_path: None,
        }
    }

    /// A tenant's batches read back whole, each record with the raw path a
    /// detail read would use; another tenant's are not listed.
    #[tokio::test]
    async fn batches_read_back_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = RawStore::local(dir.path()).expect("open");
        let small: Vec<LogRecord> = (1..=3).map(|n| record("acme", n)).collect();
        // Big enough to be compressed.
        let big: Vec<LogRecord> = (1..=100).map(|n| record("acme", n)).collect();
        let other = [record("beta", 1)];
        let mut keys = Vec::new();
        for recs in [&small[..], &big[..]] {
            let refs: Vec<&LogRecord> = recs.iter().collect();
            keys.push(raw.put_batch("acme", ulid::Ulid::new(), &refs).await.expect("put"));
        }
        raw.put_batch("beta", ulid::Ulid::new(), &[&other[0]])
            .await
            .expect("put");
        assert!(keys[1].ends_with(".gz"), "{keys:?}");
        let mut listed = raw.batch_keys("acme").await.expect("list");
        listed.sort();
        keys.sort();
        assert_eq!(listed, keys);
        for key in &keys {
            let back = raw.read_batch(key).await.expect("read");
            for (i, r) in back.iter().enumerate() {
                let path = r.raw_path.clone().expect("raw path");
                assert_eq!(path, format!("{key}#{}", i + 1));
                let one = raw.read(&path).await.expect("read one").expect("found");
                assert_eq!(
                    (one.id.as_str(), one.message.as_str()),
                    (r.id.as_str(), r.message.as_str())
                );
            }
            assert!(back.len() == 3 || back.len() == 100, "{}", back.len());
        }
        assert!(raw.read_batch("logs/acme/none.ndjson").await.expect("read").is_empty());
        assert!(raw.batch_keys("../etc").await.expect("list").is_empty());
    }
}

#[cfg(test)]
mod line_tests {
    use super::nth_line;
    use std::io::Read;

    #[test]
    fn one_line_is_read_at_a_time() {
        let text = b"first\nsecond\n\nfourth";
        let line = |n| nth_line(&text[..], n).expect("read");
        assert_eq!(line(1), Some(b"first".to_vec()));
        assert_eq!(line(2), Some(b"second".to_vec()));
        assert_eq!(line(3), None, "an empty line");
        assert_eq!(line(4), Some(b"fourth".to_vec()));
        assert_eq!(line(5), None, "past the end");
        // A stream that never ends a line stops at the bound instead of
        // filling memory.
        let endless = std::io::repeat(b'x').take(super::MAX_LINE_BYTES + 10);
        assert!(nth_line(endless, 1).is_err());
    }
}
