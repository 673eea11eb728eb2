//! Whether a tenant's plugins are healthy: consecutive dead-lettered
//! batches per plugin, and the plugins disabled after too many. A disabled
//! plugin's stage falls back to the built-in (an enricher is skipped) until
//! a new version is uploaded or rolled back to.

use std::collections::HashMap;

use parking_lot::Mutex;

/// A tenant plugin is disabled after this many consecutive dead-lettered
/// batches where nothing passed: one bad record among good ones does not
/// count against it, a plugin that fails on everything soon stops costing
/// the tenant its batches.
pub const DISABLE_AFTER: u32 = 5;

type Key = (String, String);

#[derive(Default)]
pub struct Health {
    /// Consecutive failures per (tenant, plugin).
    failures: Mutex<HashMap<Key, u32>>,
    /// Disabled plugins per (tenant, plugin), with the last failure.
    disabled: Mutex<HashMap<Key, String>>,
    /// Tenants that used their plan's plugin CPU for today.
    exhausted: Mutex<std::collections::HashSet<String>>,
}

/// Why a tenant's plugins are skipped when its plugin CPU is used up.
pub const CPU_EXHAUSTED: &str =
    "the plan's plugin CPU for today is used up: the built-in runs in this plugin's place until 00:00 UTC";

fn key(tenant: &str, name: &str) -> Key {
    (tenant.to_string(), name.to_string())
}

impl Health {
    pub fn is_disabled(&self, tenant: &str, name: &str) -> bool {
        self.disabled.lock().contains_key(&key(tenant, name))
    }

    /// Why the plugin was disabled, if it was.
    pub fn disabled_reason(&self, tenant: &str, name: &str) -> Option<String> {
        self.disabled.lock().get(&key(tenant, name)).cloned()
    }

    /// A new version or a rollback: the plugin gets a fresh start.
    pub fn enable(&self, tenant: &str, name: &str) {
        let k = key(tenant, name);
        self.disabled.lock().remove(&k);
        self.failures.lock().remove(&k);
    }

    /// Counts a failure against `name`; true when this one disables it.
    pub fn record_failure(&self, tenant: &str, name: &str, reason: &str) -> bool {
        let k = key(tenant, name);
        let n = {
            let mut f = self.failures.lock();
            let n = f.entry(k.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let mut disabled = self.disabled.lock();
        if n < DISABLE_AFTER || disabled.contains_key(&k) {
            return false;
        }
        disabled.insert(k, reason.to_string());
        true
    }

    /// Marks whether the tenant used its plugin CPU for today; true when
    /// that changed.
    pub fn set_exhausted(&self, tenant: &str, exhausted: bool) -> bool {
        let mut set = self.exhausted.lock();
        if exhausted {
            set.insert(tenant.to_string())
        } else {
            set.remove(tenant)
        }
    }

    pub fn is_exhausted(&self, tenant: &str) -> bool {
        self.exhausted.lock().contains(tenant)
    }

    /// A deleted tenant: nothing of it is kept.
    pub fn forget(&self, tenant: &str) {
        self.exhausted.lock().remove(tenant);
        self.failures.lock().retain(|(t, _), _| t != tenant);
        self.disabled.lock().retain(|(t, _), _| t != tenant);
    }

    /// A batch of the tenant went through: its failure streaks end.
    pub fn record_success(&self, tenant: &str) {
        let mut f = self.failures.lock();
        if !f.is_empty() {
            f.retain(|(t, _), _| t != tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_after_a_streak_once() {
        let h = Health::default();
        for _ in 1..DISABLE_AFTER {
            assert!(!h.record_failure("acme", "pii", "trap"));
        }
        assert!(!h.is_disabled("acme", "pii"));
        assert!(h.record_failure("acme", "pii", "trap: boom"));
        assert!(h.is_disabled("acme", "pii"));
        assert_eq!(h.disabled_reason("acme", "pii").as_deref(), Some("trap: boom"));
        assert!(!h.record_failure("acme", "pii", "again"), "reported once");
        assert!(!h.is_disabled("beta", "pii"), "other tenants are untouched");
        h.enable("acme", "pii");
        assert!(!h.is_disabled("acme", "pii"));
    }

    #[test]
    fn a_success_ends_the_tenants_streaks_only() {
        let h = Health::default();
        for _ in 1..DISABLE_AFTER {
            h.record_failure("acme", "pii", "trap");
            h.record_failure("beta", "pii", "trap");
        }
        h.record_success("acme");
        assert!(!h.record_failure("acme", "pii", "trap"), "acme starts over");
        assert!(h.record_failure("beta", "pii", "trap"), "beta's streak goes on");
    }
}
