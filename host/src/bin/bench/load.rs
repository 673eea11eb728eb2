//! The load: one body pool per tenant, sent over `--connections` HTTP
//! connections (or syslog streams), each tenant's requests in turn, retried
//! after 429 and 503; and the preload of `--expired`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;

use crate::probe::metric;
use crate::records::{Protocol, record, record_at, stamp};

/// A tenant of the run: its key and the bodies it sends.
pub struct Tenant {
    pub slug: String,
    pub key: String,
    pub bodies: Vec<Body>,
}

/// One request's body, and how many times it was accepted.
pub struct Body {
    pub bytes: bytes::Bytes,
    /// The index of its first record (`records::record`).
    pub first: u64,
    pub records: u64,
    pub accepted: AtomicU64,
}

/// Bytes of distinct bodies a run keeps, over all its tenants: a run of
/// 1M records sends each record once, with its own time, as SDKs stamp
/// theirs. Past it, bodies are sent again: ids are assigned per request,
/// so every record stored is still distinct, but times repeat. (With 64
/// bodies, ten records each, 1,562 records shared every time stamp, and
/// SQLite's time indexes took each at a different page: the metadata
/// store cost 2.5 times its full-batch figure.)
const POOL_BYTES: usize = 1 << 30;
/// About what one record takes in a body, for the pool's size.
const RECORD_BYTES: usize = 400;

impl Tenant {
    /// The tenant's bodies of `batch` records: one for each of its
    /// `requests` while they fit in the pool (at least two).
    pub fn new(
        slug: String,
        key: String,
        index: usize,
        tenants: usize,
        (batch, requests): (usize, usize),
        protocol: Protocol,
    ) -> Tenant {
        let per_tenant = requests.min(POOL_BYTES / tenants / (batch * RECORD_BYTES)).max(2);
        let bodies = (0..per_tenant)
            .map(|k| {
                let first = ((index * per_tenant + k) * batch) as u64;
                let records: Vec<String> = (first..first + batch as u64).map(record).collect();
                Body {
                    bytes: bytes::Bytes::from(protocol.body(&records, &key)),
                    first,
                    records: batch as u64,
                    accepted: AtomicU64::new(0),
                }
            })
            .collect();
        Tenant { slug, key, bodies }
    }
}

/// Sends `batches` requests, request `b` from tenant `b % tenants` (its
/// bodies in turn), over `connections`; returns how many were retried
/// after 429 or 503.
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    syslog_port: u16,
    protocol: Protocol,
    tenants: Arc<Vec<Tenant>>,
    batches: u64,
    connections: usize,
) -> anyhow::Result<u64> {
    let next = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let pick = move |tenants: &Vec<Tenant>, b: u64| -> (usize, usize) {
        let n = tenants.len() as u64;
        let t = (b % n) as usize;
        (t, ((b / n) % tenants[t].bodies.len() as u64) as usize)
    };
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, url, tenants, next, retries) = (
            http.clone(),
            url.to_string(),
            tenants.clone(),
            next.clone(),
            retries.clone(),
        );
        if protocol == Protocol::Syslog {
            // No answers: accepted is when the last frame left the socket.
            tasks.push(tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", syslog_port)).await?;
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        stream.flush().await?;
                        return Ok::<_, anyhow::Error>(());
                    }
                    let (t, k) = pick(&tenants, b);
                    let body = &tenants[t].bodies[k];
                    stream.write_all(&body.bytes).await?;
                    body.accepted.fetch_add(1, Ordering::Relaxed);
                }
            }));
            continue;
        }
        let (route, content_type) = protocol.route();
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<_, anyhow::Error>(());
                }
                let (t, k) = pick(&tenants, b);
                let tenant = &tenants[t];
                let body = &tenant.bodies[k];
                loop {
                    let r = http
                        .post(format!("{url}{route}"))
                        .bearer_auth(&tenant.key)
                        .header("content-type", content_type)
                        .body(body.bytes.clone())
                        .send()
                        .await?;
                    match r.status().as_u16() {
                        202 => break,
                        200 => {
                            let answer = r.bytes().await?;
                            // A bulk answer says per item; any error fails the run.
                            if protocol == Protocol::Bulk && !answer.starts_with(b"{\"took\":")
                                || answer.windows(14).any(|w| w == b"\"errors\":true")
                            {
                                bail!(
                                    "bulk items refused: {}",
                                    String::from_utf8_lossy(&answer[..answer.len().min(500)])
                                );
                            }
                            break;
                        }
                        429 | 503 => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        s => bail!("unexpected status {s}: {}", r.text().await.unwrap_or_default()),
                    }
                }
                body.accepted.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(retries.load(Ordering::Relaxed))
}

/// Retention of the run's plan with `--expired`.
pub const EXPIRING_RETENTION_SECS: i64 = 2 * 86_400;

/// Sends `n` records that pass the plan's retention once the preload is
/// done (its time guessed generously: 10,000 records a second, plus 5 s),
/// a microsecond apart, and waits until they are processed: retention then
/// has them to delete while the run goes. (Ingest refuses records already
/// past the retention, so they cannot be sent expired.)
pub async fn preload_expired(http: &reqwest::Client, url: &str, key: &str, n: u64, batch: usize) -> anyhow::Result<()> {
    let lead = 5_000_000_000 + i64::try_from(n).unwrap_or(i64::MAX / 200_000) * 100_000;
    let base = loggerhub::model::now_ns() - EXPIRING_RETENTION_SECS * 1_000_000_000 + lead
        - i64::try_from(n).unwrap_or(0) * 1_000;
    let mut sent = 0;
    while sent < n {
        let body: Vec<String> = (sent..(sent + batch as u64).min(n))
            .map(|i| record_at(i, stamp(i, base, 1_000)))
            .collect();
        let count = body.len() as u64;
        loop {
            let r = http
                .post(format!("{url}/v1/logs"))
                .bearer_auth(key)
                .header("content-type", "application/x-ndjson")
                .body(body.join("\n"))
                .send()
                .await?;
            match r.status().as_u16() {
                202 => break,
                429 | 503 => tokio::time::sleep(Duration::from_millis(50)).await,
                s => bail!("preload: unexpected status {s}"),
            }
        }
        sent += count;
    }
    // Processed, or already deleted by the sweeps: either way in the stores.
    while metric(http, url, "loggerhub_logs_processed_total").await? < n as f64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
