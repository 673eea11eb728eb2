//! What each plugin of a tenant did since this process started: calls,
//! failed calls, records in and out, and time spent, per stage and plugin
//! (built-ins included). The processor reports every call; the plugins
//! page and `GET /v1/plugins` read them.
//!
//! The figures are the process's own, like the failure streaks of
//! `health`: in a cluster each processor counts its calls.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

use crate::runtime::Stage;

/// One plugin's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub calls: u64,
    /// Calls that trapped, timed out or returned an error or a bad batch.
    pub errors: u64,
    /// Records given to the plugin (for a parser: bodies).
    pub records_in: u64,
    /// Records it returned, from the calls that succeeded.
    pub records_out: u64,
    pub busy_us: u64,
    /// The slowest call.
    pub max_us: u64,
}

type Key = (String, Stage, String);

/// Figures per (tenant, stage, plugin). Bounded: a tenant has at most its
/// quota of plugins plus the built-ins, and a removed plugin or tenant
/// takes its figures with it.
#[derive(Default)]
pub struct PluginStats {
    figures: Mutex<HashMap<Key, Figures>>,
}

impl PluginStats {
    /// Counts one call of `plugin` (`name` or `name@vN`) that returned
    /// `returned` records, or failed (`None`).
    pub fn call(
        &self,
        tenant: &str,
        stage: Stage,
        plugin: &str,
        took: Duration,
        records_in: usize,
        returned: Option<usize>,
    ) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let key = (tenant.to_string(), stage, super::base_name(plugin).to_string());
        let mut map = self.figures.lock();
        let f = map.entry(key).or_default();
        f.calls += 1;
        f.records_in += records_in as u64;
        match returned {
            Some(n) => f.records_out += n as u64,
            None => f.errors += 1,
        }
        f.busy_us = f.busy_us.saturating_add(us);
        f.max_us = f.max_us.max(us);
    }

    pub fn get(&self, tenant: &str, stage: Stage, name: &str) -> Figures {
        self.figures
            .lock()
            .get(&(tenant.to_string(), stage, name.to_string()))
            .copied()
            .unwrap_or_default()
    }

    /// A plugin removed: a new one of the same name starts from nothing.
    pub fn forget_plugin(&self, tenant: &str, stage: Stage, name: &str) {
        self.figures
            .lock()
            .remove(&(tenant.to_string(), stage, name.to_string()));
    }

    pub fn forget_tenant(&self, tenant: &str) {
        self.figures.lock().retain(|(t, _, _), _| t != tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_add_up_per_tenant_stage_and_plugin() {
        let s = PluginStats::default();
        let ms = Duration::from_millis;
        s.call("acme", Stage::Enricher, "pii@v2", ms(3), 10, Some(9));
        s.call("acme", Stage::Enricher, "pii@v3", ms(5), 4, None);
        s.call("acme", Stage::Router, "pii", ms(1), 1, Some(1));
        s.call("other", Stage::Enricher, "pii", ms(1), 1, Some(1));
        assert_eq!(
            s.get("acme", Stage::Enricher, "pii"),
            Figures {
                calls: 2,
                errors: 1,
                records_in: 14,
                records_out: 9,
                busy_us: 8_000,
                max_us: 5_000,
            },
            "versions of a plugin count together, failed calls return nothing"
        );
        assert_eq!(s.get("acme", Stage::Router, "pii").calls, 1, "stages apart");
        s.forget_plugin("acme", Stage::Enricher, "pii");
        assert_eq!(s.get("acme", Stage::Enricher, "pii"), Figures::default());
        s.forget_tenant("other");
        assert_eq!(s.get("other", Stage::Enricher, "pii"), Figures::default());
        assert_eq!(
            s.get("acme", Stage::Router, "pii").calls,
            1,
            "another tenant's forgetting keeps it"
        );
    }
}
