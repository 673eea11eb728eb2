//! Metrics, in one place: every metric name appears only here. Rendered as
//! Prometheus text at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::queue::Depth;

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

    pub fn render(&self, depth: Depth) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "loggerhub_ingest_requests_total",
            "Accepted ingest requests.",
            load(&self.ingest_requests),
        );
        counter(
            &mut out,
            "loggerhub_logs_ingested_total",
            "Logs accepted with 202.",
            load(&self.logs_ingested),
        );
        counter(
            &mut out,
            "loggerhub_ingest_bytes_total",
            "Body bytes accepted.",
            load(&self.ingest_bytes),
        );
        counter(
            &mut out,
            "loggerhub_logs_processed_total",
            "Logs written to the stores.",
            load(&self.logs_processed),
        );
        counter(
            &mut out,
            "loggerhub_batches_processed_total",
            "Pipeline batches committed.",
            load(&self.batches_processed),
        );
        counter(
            &mut out,
            "loggerhub_dead_letters_total",
            "Queue entries dead-lettered.",
            load(&self.dead_letters),
        );
        counter(
            &mut out,
            "loggerhub_plugins_disabled_total",
            "Tenant plugins disabled after repeated failures.",
            load(&self.plugins_disabled),
        );
        counter(
            &mut out,
            "loggerhub_index_rejected_total",
            "Records the search index refused (kept in the metadata and raw stores).",
            load(&self.index_rejected),
        );
        counter(
            &mut out,
            "loggerhub_tenants_deleted_total",
            "Tenants whose deletion finished.",
            load(&self.tenants_deleted),
        );
        let _ = writeln!(
            out,
            "# HELP loggerhub_expired_total Records (metadata, index) and raw objects deleted by retention.\n# TYPE loggerhub_expired_total counter"
        );
        for (store, n) in self.expired.lock().iter() {
            let _ = writeln!(out, "loggerhub_expired_total{{store=\"{store}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP loggerhub_syslog_dropped_total Syslog messages not taken, by reason.\n# TYPE loggerhub_syslog_dropped_total counter"
        );
        for (reason, n) in self.syslog_dropped.lock().iter() {
            let _ = writeln!(out, "loggerhub_syslog_dropped_total{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP loggerhub_wasm_seconds_total Time spent in plugin calls.\n# TYPE loggerhub_wasm_seconds_total counter\nloggerhub_wasm_seconds_total {}",
            load(&self.wasm_ns) as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "# HELP loggerhub_plugin_instance_bytes Memory and tables of the live plugin instances.\n# TYPE loggerhub_plugin_instance_bytes gauge\nloggerhub_plugin_instance_bytes {}",
            load(&self.instance_bytes)
        );
        let _ = writeln!(
            out,
            "# HELP loggerhub_queue_depth Queue entries not yet processed.\n# TYPE loggerhub_queue_depth gauge\nloggerhub_queue_depth {}\n# HELP loggerhub_queue_bytes Bytes of queue entries not yet processed.\n# TYPE loggerhub_queue_bytes gauge\nloggerhub_queue_bytes {}",
            depth.entries, depth.bytes
        );
        let _ = writeln!(
            out,
            "# HELP loggerhub_errors_total Errors by kind.\n# TYPE loggerhub_errors_total counter"
        );
        for (kind, n) in self.errors.lock().iter() {
            let _ = writeln!(out, "loggerhub_errors_total{{kind=\"{kind}\"}} {n}");
        }
        self.render_tenants(&mut out);
        let _ = writeln!(
            out,
            "# HELP loggerhub_stage_seconds Plugin call latency per stage, tenant and plugin.\n# TYPE loggerhub_stage_seconds histogram"
        );
        for ((stage, tenant, plugin), h) in self.stage_latency.lock().iter() {
            write_histogram(
                &mut out,
                "loggerhub_stage_seconds",
                &format!("stage=\"{stage}\",tenant=\"{tenant}\",plugin=\"{plugin}\""),
                h,
            );
        }
        let _ = writeln!(
            out,
            "# HELP loggerhub_store_write_seconds Store write latency per store.\n# TYPE loggerhub_store_write_seconds histogram"
        );
        for (store, h) in self.store_latency.lock().iter() {
            write_histogram(
                &mut out,
                "loggerhub_store_write_seconds",
                &format!("store=\"{store}\""),
                h,
            );
        }
        out
    }
}

impl Metrics {
    fn render_tenants(&self, out: &mut String) {
        let tenants = self.tenants.lock().clone();
        let family =
            |out: &mut String, name: &str, kind: &str, help: &str, rows: &mut dyn Iterator<Item = (String, String)>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (labels, v) in rows {
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                }
            };
        let each = |f: fn(&TenantSeries) -> String| {
            tenants
                .iter()
                .map(move |(t, s)| (format!("tenant=\"{t}\""), f(s)))
                .collect::<Vec<_>>()
        };
        family(
            out,
            "loggerhub_tenant_logs_total",
            "counter",
            "Logs accepted with 202, per tenant.",
            &mut each(|s| s.logs.to_string()).into_iter(),
        );
        family(
            out,
            "loggerhub_tenant_bytes_total",
            "counter",
            "Body bytes accepted, per tenant.",
            &mut each(|s| s.bytes.to_string()).into_iter(),
        );
        family(
            out,
            "loggerhub_tenant_plugin_cpu_seconds_total",
            "counter",
            "Time in the tenant's own plugins (built-ins are not counted).",
            &mut each(|s| (s.plugin_cpu_us as f64 / 1e6).to_string()).into_iter(),
        );
        family(
            out,
            "loggerhub_tenant_dead_letters_total",
            "counter",
            "Dead letters written, per tenant.",
            &mut each(|s| s.dead_letters.to_string()).into_iter(),
        );
        family(
            out,
            "loggerhub_tenant_refused_total",
            "counter",
            "Ingest requests refused by the tenant's plan, per reason.",
            &mut tenants.iter().flat_map(|(t, s)| {
                s.refused
                    .iter()
                    .map(move |(r, n)| (format!("tenant=\"{t}\",reason=\"{r}\""), n.to_string()))
            }),
        );
        family(
            out,
            "loggerhub_tenant_stored_bytes",
            "gauge",
            "Bytes of the tenant's data in each store, as last measured.",
            &mut tenants.iter().flat_map(|(t, s)| {
                ["metadata", "raw", "index"]
                    .into_iter()
                    .zip(s.stored.unwrap_or_default())
                    .filter(|_| s.stored.is_some())
                    .map(move |(store, n)| (format!("tenant=\"{t}\",store=\"{store}\""), n.to_string()))
            }),
        );
    }
}

fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (b, c) in BUCKETS.iter().zip(h.counts.iter()) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {c}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.logs_accepted(3, 100);
        m.error("trap");
        m.stage("enrich", "acme", "default-enricher", Duration::from_millis(2));
        let text = m.render(Depth { entries: 2, bytes: 10 });
        assert!(text.contains("loggerhub_logs_ingested_total 3"));
        assert!(text.contains("loggerhub_queue_depth 2"));
        assert!(text.contains("loggerhub_errors_total{kind=\"trap\"} 1"));
        assert!(text.contains(
            "loggerhub_stage_seconds_bucket{stage=\"enrich\",tenant=\"acme\",plugin=\"default-enricher\",le=\"0.0025\"} 1"
        ));
        assert!(
            text.contains(
                "loggerhub_stage_seconds_count{stage=\"enrich\",tenant=\"acme\",plugin=\"default-enricher\"} 1"
            )
        );
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
