//! `Metrics::render`: every metric as Prometheus text, with its name,
//! help and type.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{BUCKETS, Histogram, Metrics, TenantSeries};
use crate::cpu;
use crate::queue::Depth;

impl Metrics {
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
        out.push_str(
            "# HELP loggerhub_stage_cpu_seconds_total CPU time of each stage of the data path on the runtime's threads (a stage nested in another counts only in the inner one).\n# TYPE loggerhub_stage_cpu_seconds_total counter\n",
        );
        for stage in cpu::Stage::ALL {
            let _ = writeln!(
                out,
                "loggerhub_stage_cpu_seconds_total{{stage=\"{}\"}} {}",
                stage.name(),
                cpu::spent(stage)
            );
        }
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
    use std::time::Duration;

    use super::*;

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
}
