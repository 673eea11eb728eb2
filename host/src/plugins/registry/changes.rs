//! What changes a tenant's plugins: an upload within its plan, a
//! rollback, a removal, a new pipeline; each made under the shared store's
//! lock and published to the other processors.

use std::sync::Arc;

use super::{Quota, Registry, Resolved};
use crate::plugins::names::PluginName;
use crate::plugins::{PipelineSpec, RegistryError, validate};
use crate::runtime::Stage;

impl Registry {
    /// Validates and stores a new version of a tenant plugin, then makes it
    /// active. Returns the version.
    pub async fn upload(
        &self,
        tenant: &str,
        stage: Stage,
        name: &PluginName,
        wasm: &[u8],
    ) -> Result<u32, RegistryError> {
        self.upload_within(tenant, stage, name, wasm, Quota::UNLIMITED).await
    }

    /// `upload`, within what the tenant's plan allows: a new plugin past
    /// `quota.plugins` is refused, and versions past `quota.versions` are
    /// pruned (the operator's `--plugin-versions` still bounds both).
    pub async fn upload_within(
        &self,
        tenant: &str,
        stage: Stage,
        name: &PluginName,
        wasm: &[u8],
        quota: Quota,
    ) -> Result<u32, RegistryError> {
        let name = name.clone();
        if name.is_builtin() {
            return Err(RegistryError::Reserved(name.to_string()));
        }
        // The tenant's own queue first, then the process's compile slots:
        // the slots' queue holds at most one upload of each tenant. Both
        // before the lock the processors share (`shared`), which only the
        // new version's storing takes: one tenant's compile holds no other
        // tenant's upload, on one processor or many.
        let mine = {
            let mut all = self.tenant_compiles.lock();
            if all.len() > 10_000 {
                all.retain(|_, l| Arc::strong_count(l) > 1);
            }
            all.entry(tenant.to_string()).or_default().clone()
        };
        let started = std::time::Instant::now();
        let _turn = tokio::time::timeout(validate::COMPILE_TIMEOUT, mine.lock_owned())
            .await
            .map_err(|_| RegistryError::Invalid {
                check: "compile",
                message: format!(
                    "the tenant's earlier uploads held the compile queue for {} s",
                    validate::COMPILE_TIMEOUT.as_secs()
                ),
            })?;
        self.within_quota(tenant, stage, &name, quota)?;
        let plugin = validate::compile_bounded(
            &self.runtime,
            &self.compiles,
            name.as_str(),
            stage,
            wasm,
            validate::COMPILE_TIMEOUT.saturating_sub(started.elapsed()),
        )
        .await?;
        let spec = self.tree.pipeline(tenant)?;
        self.dry_run(tenant, &spec, stage, &plugin).await?;
        self.shared(tenant, self.store_upload(tenant, stage, name, wasm, quota))
            .await
    }

    /// A new plugin past the plan's count is refused.
    fn within_quota(&self, tenant: &str, stage: Stage, name: &PluginName, quota: Quota) -> Result<(), RegistryError> {
        if self.tree.active(tenant, stage, name).is_none() {
            let have: usize = Stage::ALL.iter().map(|s| self.tree.names(tenant, *s).len()).sum();
            if have >= quota.plugins {
                return Err(RegistryError::OverPlan(format!(
                    "the plan allows {} plugins and the tenant has {have}; delete one or ask for a larger plan",
                    quota.plugins
                )));
            }
        }
        Ok(())
    }

    /// Stores a validated upload as the plugin's new active version.
    async fn store_upload(
        &self,
        tenant: &str,
        stage: Stage,
        name: PluginName,
        wasm: &[u8],
        quota: Quota,
    ) -> Result<u32, RegistryError> {
        // Again under the lock: another processor may have added one.
        self.within_quota(tenant, stage, &name, quota)?;
        let spec = self.tree.pipeline(tenant)?;
        let previous = self.tree.active(tenant, stage, &name);
        let version = self.tree.add_version(tenant, stage, &name, wasm)?;
        let keep = self.max_versions.min(quota.versions).max(2);
        let pruned = self.tree.prune(tenant, stage, &name, keep, previous)?;
        if !pruned.is_empty() {
            let dir = self.tree.plugin_dir(tenant, stage, &name);
            self.compiled
                .lock()
                .retain(|(p, _, _), _| !p.starts_with(&dir) || p.exists());
            tracing::info!(tenant, plugin = name.as_str(), ?pruned, "old plugin versions pruned");
        }
        self.health.enable(tenant, name.as_str());
        if spec.uses(stage, name.as_str()) {
            self.reload(tenant).await?;
        }
        Ok(version)
    }

    pub async fn rollback(
        &self,
        tenant: &str,
        stage: Stage,
        name: &PluginName,
        to: Option<u32>,
    ) -> Result<u32, RegistryError> {
        let name = name.clone();
        self.shared(tenant, self.rollback_here(tenant, stage, name, to)).await
    }

    async fn rollback_here(
        &self,
        tenant: &str,
        stage: Stage,
        name: PluginName,
        to: Option<u32>,
    ) -> Result<u32, RegistryError> {
        let versions = self.tree.versions(tenant, stage, &name);
        let active = self
            .tree
            .active(tenant, stage, &name)
            .ok_or_else(|| RegistryError::not_found(stage, &name))?;
        let no_version = |version| RegistryError::NoVersion {
            name: name.to_string(),
            version,
        };
        let target = match to {
            Some(v) if versions.contains(&v) => v,
            Some(v) => return Err(no_version(v)),
            None => *versions
                .iter()
                .rev()
                .find(|v| **v < active)
                .ok_or_else(|| no_version(active.saturating_sub(1)))?,
        };
        self.tree.set_active(tenant, stage, &name, target)?;
        self.health.enable(tenant, name.as_str());
        if self.tree.pipeline(tenant)?.uses(stage, name.as_str()) {
            self.reload(tenant).await?;
        }
        Ok(target)
    }

    pub async fn delete(&self, tenant: &str, stage: Stage, name: &PluginName) -> Result<(), RegistryError> {
        let name = name.clone();
        self.shared(tenant, self.delete_here(tenant, stage, name)).await
    }

    async fn delete_here(&self, tenant: &str, stage: Stage, name: PluginName) -> Result<(), RegistryError> {
        if self.tree.active(tenant, stage, &name).is_none() {
            return Err(RegistryError::not_found(stage, &name));
        }
        if self.tree.pipeline(tenant)?.uses(stage, name.as_str()) {
            return Err(RegistryError::InUse(format!(
                "{:?} is in the tenant's pipeline; change the pipeline first",
                name.as_str()
            )));
        }
        let dir = self.tree.plugin_dir(tenant, stage, &name);
        self.compiled.lock().retain(|(p, _, _), _| !p.starts_with(&dir));
        self.tree.remove(tenant, stage, &name)?;
        self.stats.forget_plugin(tenant, stage, name.as_str());
        Ok(())
    }

    /// Removes every plugin of a tenant being deleted, and puts its
    /// pipeline back to the built-ins (on every processor of a cluster).
    pub async fn purge_tenant(&self, tenant: &str) -> Result<usize, RegistryError> {
        let mut removed = 0;
        let result = async {
            if self.tree.pipeline(tenant)? != PipelineSpec::default() {
                self.set_pipeline(tenant, PipelineSpec::default()).await?;
            }
            for stage in Stage::ALL {
                for name in self.tree.names(tenant, stage) {
                    self.delete(tenant, stage, &name).await?;
                    removed += 1;
                }
            }
            Ok::<_, RegistryError>(())
        }
        .await;
        self.health.forget(tenant);
        self.stats.forget_tenant(tenant);
        let dir = self.tree.root().join(tenant);
        self.compiled.lock().retain(|(p, _, _), _| !p.starts_with(&dir));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        result.map(|()| removed)
    }

    /// Checks every plugin the spec names, then stores it and swaps it in.
    pub async fn set_pipeline(&self, tenant: &str, spec: PipelineSpec) -> Result<Arc<Resolved>, RegistryError> {
        self.shared(tenant, self.set_pipeline_here(tenant, spec)).await
    }

    async fn set_pipeline_here(&self, tenant: &str, spec: PipelineSpec) -> Result<Arc<Resolved>, RegistryError> {
        spec.limits.resolve(&self.ceiling)?;
        self.build_validated(tenant, &spec).await?;
        self.tree.set_pipeline(tenant, &spec)?;
        self.reload(tenant).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::runtime::{Runtime, builtin};

    fn registry(dir: &Path) -> Registry {
        Registry::new(dir.join("plugins"), Runtime::new().expect("runtime")).expect("registry")
    }

    fn n(name: &str) -> PluginName {
        PluginName::parse(name).expect("plugin name")
    }

    fn pii() -> Vec<u8> {
        std::fs::read(builtin::PII_REDACTOR_PATH).expect("example component (built by build.rs)")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn upload_use_roll_back_and_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = registry(dir.path());
        let first = r.resolve("acme").await.expect("default pipeline").generation;
        assert_eq!(
            r.upload("acme", Stage::Enricher, &n("pii"), &pii())
                .await
                .expect("upload"),
            1
        );
        assert_eq!(
            r.upload("acme", Stage::Enricher, &n("pii"), &pii())
                .await
                .expect("upload"),
            2
        );
        let spec = PipelineSpec {
            enrichers: vec!["default-enricher".into(), "pii".into()],
            ..PipelineSpec::default()
        };
        let resolved = r.set_pipeline("acme", spec).await.expect("pipeline");
        assert!(resolved.generation > first);
        assert_eq!(resolved.enrichers[1].name(), "pii@v2");
        assert_eq!(
            r.rollback("acme", Stage::Enricher, &n("pii"), None)
                .await
                .expect("rollback"),
            1
        );
        assert_eq!(r.resolve("acme").await.expect("resolve").enrichers[1].name(), "pii@v1");
        assert!(matches!(
            r.rollback("acme", Stage::Enricher, &n("pii"), Some(9)).await,
            Err(RegistryError::NoVersion { version: 9, .. })
        ));
        assert!(matches!(
            r.delete("acme", Stage::Enricher, &n("pii")).await,
            Err(RegistryError::InUse(_))
        ));
        r.set_pipeline("acme", PipelineSpec::default()).await.expect("pipeline");
        r.delete("acme", Stage::Enricher, &n("pii")).await.expect("delete");
        assert!(matches!(
            r.delete("acme", Stage::Enricher, &n("pii")).await,
            Err(RegistryError::NotFound { .. })
        ));
        // Another tenant never saw any of it.
        assert!(r.list("beta").iter().all(|p| p.builtin));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn refusals_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = registry(dir.path());
        assert!(matches!(
            r.upload("acme", Stage::Enricher, &n("default-enricher"), &pii()).await,
            Err(RegistryError::Reserved(_))
        ));
        assert!(matches!(
            r.upload("acme", Stage::Enricher, &n("pii"), b"not wasm").await,
            Err(RegistryError::Invalid { check: "compile", .. })
        ));
        let unknown = PipelineSpec {
            enrichers: vec!["nope".into()],
            ..PipelineSpec::default()
        };
        assert!(matches!(
            r.set_pipeline("acme", unknown).await,
            Err(RegistryError::NotFound { .. })
        ));
        assert_eq!(r.pipeline("acme").expect("pipeline"), PipelineSpec::default());
        assert!(r.list("acme").iter().all(|p| p.builtin), "nothing was stored");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_disabled_enricher_is_skipped_until_a_new_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = registry(dir.path());
        r.upload("acme", Stage::Enricher, &n("pii"), &pii())
            .await
            .expect("upload");
        let spec = PipelineSpec {
            enrichers: vec!["pii".into()],
            ..PipelineSpec::default()
        };
        r.set_pipeline("acme", spec).await.expect("pipeline");
        let mut disabled = false;
        for _ in 0..crate::plugins::health::DISABLE_AFTER {
            disabled = r.record_failure("acme", "pii@v1", "trap").await;
        }
        assert!(disabled);
        assert!(r.resolve("acme").await.expect("resolve").enrichers.is_empty());
        let listed = r.list("acme").into_iter().find(|p| p.name == "pii").expect("listed");
        assert_eq!(listed.disabled.as_deref(), Some("trap"));
        assert!(
            !r.record_failure("acme", "default-router", "trap").await,
            "built-ins never are"
        );
        r.upload("acme", Stage::Enricher, &n("pii"), &pii())
            .await
            .expect("upload");
        assert_eq!(r.resolve("acme").await.expect("resolve").enrichers.len(), 1);
    }
}
