//! `ServeArgs::check`: the flags checked into a `Config`, a setting that
//! cannot work refused with a message naming it, every path made absolute.

use std::time::Duration;

use super::syslog::syslog_bindings;
use super::{BackendUrls, Config, ConfigError, Limits, PluginPolicy, Secrets, ServeArgs, absolute, bad};

const UPKEEP_INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;
/// More workers than this only queue up on the cores and the stores.
const MAX_WORKERS: usize = 256;
/// A turn budget outside this range either commits tiny batches (below) or
/// lets a tenant hold a slot for long (above).
const TURN_BUDGET_MS: std::ops::RangeInclusive<u64> = 10..=10_000;

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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Backends, MetadataBackend, QueueBackend, RawBackend, S3Settings, Senders};
    use crate::model::Slug;
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
