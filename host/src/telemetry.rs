//! Metrics, in one place: every metric name appears only here. Rendered as
//! Prometheus text at `/metrics`.
//!
//! Here what is counted; `render` writes it out.

mod render;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as JSON when
/// `LOGGERHUB_LOG_FORMAT=json`.
pub fn init_tracing() {
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

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// Tenants with series of their own in `/metrics`: past it, the rest are
/// counted together under `tenant="_other"`, so that a deployment with many
/// tenants (or a flood of new ones) cannot grow the scrape without bound.
pub const MAX_TENANT_SERIES: usize = 1000;
/// The label of the tenants past `MAX_TENANT_SERIES`.
const OTHER_TENANTS: &str = "_other";

/// One tenant's counters (`/metrics`, per tenant).
#[derive(Default, Clone)]
struct TenantSeries {
    logs: u64,
    bytes: u64,
    plugin_cpu_us: u64,
    dead_letters: u64,
    refused: BTreeMap<&'static str, u64>,
    /// Bytes in each store, as last measured by this process.
    stored: Option<[u64; 3]>,
}

#[derive(Default)]
pub struct Metrics {
    ingest_requests: AtomicU64,
    logs_ingested: AtomicU64,
    ingest_bytes: AtomicU64,
    logs_processed: AtomicU64,
    batches_processed: AtomicU64,
    dead_letters: AtomicU64,
    plugins_disabled: AtomicU64,
    index_rejected: AtomicU64,
    /// Wall time spent inside guest calls, ns.
    wasm_ns: AtomicU64,
    /// Memory and tables held by live plugin instances, bytes.
    instance_bytes: AtomicU64,
    tenants_deleted: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    tenants: Mutex<BTreeMap<String, TenantSeries>>,
    /// Records (metadata, index) and objects (raw) retention deleted.
    expired: Mutex<BTreeMap<&'static str, u64>>,
    /// Syslog messages not taken, by reason.
    syslog_dropped: Mutex<BTreeMap<&'static str, u64>>,
    /// By stage, tenant and plugin (its name, not its version: a version
    /// is not worth a series that outlives it).
    stage_latency: Mutex<BTreeMap<(&'static str, String, String), Histogram>>,
    store_latency: Mutex<BTreeMap<&'static str, Histogram>>,
}

impl Metrics {
    pub fn logs_accepted(&self, count: usize, bytes: usize) {
        self.ingest_requests.fetch_add(1, Ordering::Relaxed);
        self.logs_ingested.fetch_add(count as u64, Ordering::Relaxed);
        self.ingest_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn instance_bytes(&self, bytes: usize) {
        self.instance_bytes.store(bytes as u64, Ordering::Relaxed);
    }

    pub fn logs_processed(&self, count: usize) {
        self.batches_processed.fetch_add(1, Ordering::Relaxed);
        self.logs_processed.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Records the index refused for good; they are in the other stores.
    pub fn index_rejected(&self, count: usize) {
        self.index_rejected.fetch_add(count as u64, Ordering::Relaxed);
    }

    pub fn plugin_disabled(&self) {
        self.plugins_disabled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dead_lettered(&self) {
        self.dead_letters.fetch_add(1, Ordering::Relaxed);
    }

    /// What one retention sweep deleted from `store`.
    pub fn syslog_dropped(&self, reason: &'static str, n: usize) {
        if n > 0 {
            *self.syslog_dropped.lock().entry(reason).or_default() += n as u64;
        }
    }

    pub fn expired(&self, store: &'static str, n: u64) {
        if n > 0 {
            *self.expired.lock().entry(store).or_default() += n;
        }
    }

    /// A tenant's deletion is done: its series go with it.
    pub fn tenant_deleted(&self, tenant: &str) {
        self.tenants_deleted.fetch_add(1, Ordering::Relaxed);
        self.tenants.lock().remove(tenant);
        self.stage_latency.lock().retain(|(_, t, _), _| t != tenant);
    }

    /// A tenant removed one of its plugins: its series go.
    pub fn plugin_removed(&self, tenant: &str, plugin: &str) {
        self.stage_latency
            .lock()
            .retain(|(_, t, p), _| !(t == tenant && p == plugin));
    }

    /// The label a tenant's series carry: its slug, or `_other` past the
    /// first `MAX_TENANT_SERIES` tenants.
    fn tenant_label(&self, tenant: &str) -> String {
        let all = self.tenants.lock();
        if all.contains_key(tenant) || all.len() < MAX_TENANT_SERIES {
            tenant.to_string()
        } else {
            OTHER_TENANTS.to_string()
        }
    }

    fn tenant<R>(&self, tenant: &str, f: impl FnOnce(&mut TenantSeries) -> R) -> R {
        let mut all = self.tenants.lock();
        let key = if all.contains_key(tenant) || all.len() < MAX_TENANT_SERIES {
            tenant
        } else {
            OTHER_TENANTS
        };
        f(all.entry(key.to_string()).or_default())
    }

    /// What a tenant used (logs and bytes accepted, plugin CPU, dead
    /// letters), as `usage::Meter` counts it.
    pub fn tenant_used(&self, tenant: &str, logs: u64, bytes: u64, plugin_cpu_us: u64, dead_letters: u64) {
        self.tenant(tenant, |t| {
            t.logs += logs;
            t.bytes += bytes;
            t.plugin_cpu_us += plugin_cpu_us;
            t.dead_letters += dead_letters;
        });
    }

    /// A tenant's request refused for `reason` (`rate_limited`,
    /// `daily_quota`, a fixed word).
    pub fn tenant_refused(&self, tenant: &str, reason: &'static str) {
        self.tenant(tenant, |t| *t.refused.entry(reason).or_default() += 1);
    }

    /// What a tenant's data takes in the metadata, raw and index stores.
    pub fn tenant_stored(&self, tenant: &str, metadata: u64, raw: u64, index: u64) {
        self.tenant(tenant, |t| t.stored = Some([metadata, raw, index]));
    }

    /// `kind` is a stable snake_case word (`trap`, `bad_request`, `store`…).
    pub fn error(&self, kind: &'static str) {
        *self.errors.lock().entry(kind).or_default() += 1;
    }

    /// A call of `tenant`'s plugin (`name` or `name@vN`) in `stage`.
    pub fn stage(&self, stage: &'static str, tenant: &str, plugin: &str, took: Duration) {
        self.wasm_ns.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        let name = plugin.split('@').next().unwrap_or(plugin).to_string();
        let tenant = self.tenant_label(tenant);
        self.stage_latency
            .lock()
            .entry((stage, tenant, name))
            .or_default()
            .observe(took.as_secs_f64());
    }

    pub fn store_write(&self, store: &'static str, took: Duration) {
        self.store_latency
            .lock()
            .entry(store)
            .or_default()
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Depth;

    /// Past `MAX_TENANT_SERIES` tenants, new ones share one series.
    #[test]
    fn tenant_series_are_bounded() {
        let m = Metrics::default();
        for i in 0..MAX_TENANT_SERIES + 50 {
            m.tenant_used(&format!("t{i}"), 1, 10, 0, 0);
        }
        m.tenant_used("t0", 1, 10, 0, 0);
        m.tenant_refused("t1", "rate_limited");
        m.tenant_stored("t2", 1, 2, 3);
        let text = m.render(Depth::default());
        let series = text
            .lines()
            .filter(|l| l.starts_with("loggerhub_tenant_logs_total{"))
            .count();
        assert_eq!(series, MAX_TENANT_SERIES + 1);
        assert!(text.contains("loggerhub_tenant_logs_total{tenant=\"_other\"} 50"));
        assert!(text.contains("loggerhub_tenant_logs_total{tenant=\"t0\"} 2"));
        assert!(text.contains("loggerhub_tenant_refused_total{tenant=\"t1\",reason=\"rate_limited\"} 1"));
        assert!(text.contains("loggerhub_tenant_stored_bytes{tenant=\"t2\",store=\"raw\"} 2"));
    }

    /// A plugin's series carry its tenant and its name, not its version;
    /// they go with the plugin and with the tenant.
    #[test]
    fn plugin_series_name_their_tenant_and_go_with_it() {
        let m = Metrics::default();
        for v in 1..=5 {
            m.stage("enrich", "acme", &format!("pii@v{v}"), Duration::from_millis(1));
        }
        m.stage("enrich", "beta", "pii@v1", Duration::from_millis(1));
        m.stage("parse", "acme", "json-parser", Duration::from_millis(1));
        let count = |m: &Metrics| {
            m.render(Depth::default())
                .lines()
                .filter(|l| l.starts_with("loggerhub_stage_seconds_count"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let all = count(&m);
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(
            all.contains(
                &"loggerhub_stage_seconds_count{stage=\"enrich\",tenant=\"acme\",plugin=\"pii\"} 5".to_string()
            )
        );
        m.plugin_removed("acme", "pii");
        assert_eq!(count(&m).len(), 2);
        m.tenant_deleted("acme");
        assert_eq!(
            count(&m),
            ["loggerhub_stage_seconds_count{stage=\"enrich\",tenant=\"beta\",plugin=\"pii\"} 1"]
        );
    }
}
