//! One tenant's live plugin instances, owned by one worker and reused batch
//! after batch for one generation of the tenant's pipeline. A new
//! generation (upload, rollback, pipeline change, file change) or a trapped
//! instance makes the next batch instantiate afresh: a batch never mixes
//! plugin versions, and a trapped instance is never reused.

use crate::plugins::{Registry, RegistryError};
use crate::runtime::Instance;

pub struct TenantInstances {
    generation: u64,
    pub json: Instance,
    pub text: Instance,
    pub enrichers: Vec<Instance>,
    pub router: Instance,
}

impl TenantInstances {
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
