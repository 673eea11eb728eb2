//! One tenant's live plugin instances, owned by one worker and reused batch
//! after batch for one generation of the tenant's pipeline. A new
//! generation (upload, rollback, pipeline change, file change) or a trapped
//! instance makes the next batch instantiate afresh: a batch never mixes
//! plugin versions, and a trapped instance is never reused.
//!
//! Instances are held against one budget per process (`InstanceBudget`):
//! past it, the least recently used tenants' instances are dropped by the
//! workers that own them (as soon as their pass is done), and so are
//! instances idle for long.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::plugins::{Registry, RegistryError};
use crate::runtime::Instance;
use crate::telemetry::Metrics;

/// The memory (linear memories and tables) all plugin instances of a
/// process may hold between batches.
pub struct InstanceBudget {
    limit: usize,
    idle: Duration,
    metrics: Arc<Metrics>,
    leases: Mutex<Leases>,
}

#[derive(Default)]
struct Leases {
    next: u64,
    held: HashMap<u64, Held>,
}

struct Held {
    bytes: usize,
    last_used: Instant,
    evict: Arc<AtomicBool>,
}

/// One tenant's instances' share of the budget; given back when dropped.
pub struct Lease {
    id: u64,
    evict: Arc<AtomicBool>,
    budget: Arc<InstanceBudget>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut leases = self.budget.leases.lock();
        leases.held.remove(&self.id);
        let total = leases.held.values().map(|h| h.bytes).sum();
        drop(leases);
        self.budget.metrics.instance_bytes(total);
    }
}

impl InstanceBudget {
    pub fn new(limit: usize, idle: Duration, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(InstanceBudget {
            limit,
            idle,
            metrics,
            leases: Mutex::new(Leases::default()),
        })
    }

    fn lease(self: &Arc<Self>) -> Lease {
        let evict = Arc::new(AtomicBool::new(false));
        let mut leases = self.leases.lock();
        leases.next += 1;
        let id = leases.next;
        leases.held.insert(
            id,
            Held {
                bytes: 0,
                last_used: Instant::now(),
                evict: evict.clone(),
            },
        );
        Lease {
            id,
            evict,
            budget: self.clone(),
        }
    }

    /// After a pass: `lease`'s instances hold `bytes`. Past the limit, the
    /// least recently used other leases are marked for their owners to drop.
    fn record(&self, lease: &Lease, bytes: usize) {
        let mut leases = self.leases.lock();
        if let Some(h) = leases.held.get_mut(&lease.id) {
            h.bytes = bytes;
            h.last_used = Instant::now();
        }
        let mut total: usize = leases.held.values().map(|h| h.bytes).sum();
        self.metrics.instance_bytes(total);
        if total <= self.limit {
            return;
        }
        // One tenant holding more than half the budget (a guest that grew
        // its memory) gives its own back rather than throwing out every
        // other tenant's warm instances, turn after turn.
        if bytes > self.limit / 2 {
            lease.evict.store(true, Ordering::Relaxed);
            return;
        }
        let mut others: Vec<&Held> = leases
            .held
            .iter()
            .filter(|(id, h)| **id != lease.id && !h.evict.load(Ordering::Relaxed))
            .map(|(_, h)| h)
            .collect();
        others.sort_by_key(|h| h.last_used);
        for h in others {
            if total <= self.limit {
                break;
            }
            h.evict.store(true, Ordering::Relaxed);
            total -= h.bytes;
        }
        // Alone over the budget: it goes too, once its pass is done.
        if total > self.limit {
            lease.evict.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the owner should drop the lease's instances now: marked by
    /// the budget, or idle past the idle time.
    fn should_drop(&self, lease: &Lease) -> bool {
        lease.evict.load(Ordering::Relaxed)
            || self
                .leases
                .lock()
                .held
                .get(&lease.id)
                .is_none_or(|h| h.last_used.elapsed() > self.idle)
    }
}

pub struct TenantInstances {
    lease: Lease,
    generation: u64,
    pub json: Instance,
    pub text: Instance,
    pub enrichers: Vec<Instance>,
    pub router: Instance,
}

impl TenantInstances {
    /// Reports what the instances hold after a pass.
    pub fn record_use(&self) {
        let bytes = [&self.json, &self.text, &self.router]
            .into_iter()
            .chain(&self.enrichers)
            .map(Instance::memory_used)
            .sum();
        self.lease.budget.record(&self.lease, bytes);
    }

    /// Whether its owner should drop it (over budget, or idle).
    pub fn should_drop(&self) -> bool {
        self.lease.budget.should_drop(&self.lease)
    }

    fn poisoned(&self) -> bool {
        self.json.is_poisoned()
            || self.text.is_poisoned()
            || self.router.is_poisoned()
            || self.enrichers.iter().any(Instance::is_poisoned)
    }

    /// The instances for the tenant's current pipeline: `slot`'s own, or
    /// new ones if the pipeline changed or one of them trapped.
    pub async fn current<'s>(
        slot: &'s mut Option<TenantInstances>,
        registry: &Registry,
        budget: &Arc<InstanceBudget>,
        tenant: &str,
    ) -> Result<&'s mut TenantInstances, RegistryError> {
        let r = registry.resolve(tenant).await?;
        let current = match slot.take() {
            Some(t) if t.generation == r.generation && !t.poisoned() => t,
            _ => {
                let rt = registry.runtime();
                let mut enrichers = Vec::with_capacity(r.enrichers.len());
                for e in &r.enrichers {
                    enrichers.push(rt.instantiate(e, tenant, r.config_of(e.name()), r.limits).await?);
                }
                TenantInstances {
                    lease: budget.lease(),
                    generation: r.generation,
                    json: rt
                        .instantiate(&r.json, tenant, r.config_of(r.json.name()), r.limits)
                        .await?,
                    text: rt
                        .instantiate(&r.text, tenant, r.config_of(r.text.name()), r.limits)
                        .await?,
                    enrichers,
                    router: rt
                        .instantiate(&r.router, tenant, r.config_of(r.router.name()), r.limits)
                        .await?,
                }
            }
        };
        Ok(slot.insert(current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_budget_the_least_recently_used_go() {
        let budget = InstanceBudget::new(100, Duration::from_secs(60), Arc::default());
        let (a, b, c) = (budget.lease(), budget.lease(), budget.lease());
        budget.record(&a, 40);
        budget.record(&b, 40);
        assert!(!budget.should_drop(&a) && !budget.should_drop(&b));
        // c's pass takes the total to 130: a, the least recently used, goes.
        budget.record(&c, 50);
        assert!(budget.should_drop(&a));
        assert!(!budget.should_drop(&b) && !budget.should_drop(&c));
        drop(a);
        // Holding more than half the budget alone, the one that just ran
        // goes, and only it: one tenant's big guest does not throw out
        // everyone else's instances.
        budget.record(&c, 500);
        assert!(!budget.should_drop(&b));
        assert!(budget.should_drop(&c));
        assert_eq!(budget.leases.lock().held.len(), 2);
        drop((b, c));
        assert!(budget.leases.lock().held.is_empty());
        // Idle ones go too.
        let idle = InstanceBudget::new(100, Duration::from_millis(1), Arc::default());
        let d = idle.lease();
        idle.record(&d, 10);
        std::thread::sleep(Duration::from_millis(5));
        assert!(idle.should_drop(&d));
    }
}
