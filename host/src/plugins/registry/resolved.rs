//! The compiled pipeline each worker runs (`Resolved`): built from the
//! tenant's spec, the plugins compiled for it dry-run, then swapped in
//! whole with a new generation.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Registry;
use crate::plugins::names::{PluginName, base_name};
use crate::plugins::{PipelineSpec, RegistryError, validate};
use crate::runtime::{Limits, Plugin, Stage};

/// A compiled pipeline, ready to instantiate.
pub struct Resolved {
    pub generation: u64,
    pub json: Arc<Plugin>,
    pub text: Arc<Plugin>,
    pub enrichers: Vec<Arc<Plugin>>,
    pub router: Arc<Plugin>,
    /// Configuration per plugin name.
    pub config: HashMap<String, Arc<HashMap<String, String>>>,
    pub limits: Limits,
}

impl Resolved {
    pub fn config_of(&self, plugin: &str) -> Arc<HashMap<String, String>> {
        self.config.get(base_name(plugin)).cloned().unwrap_or_default()
    }
}

/// Plugins compiled during a build, not yet validated.
type Fresh = Vec<(Stage, Arc<Plugin>)>;

impl Registry {
    /// The tenant's current compiled pipeline.
    pub async fn resolve(&self, tenant: &str) -> Result<Arc<Resolved>, RegistryError> {
        if let Some(r) = self.resolved.read().get(tenant) {
            return Ok(r.clone());
        }
        self.reload(tenant).await
    }

    /// Recompiles the tenant's pipeline from disk and swaps it in; on any
    /// error the running pipeline stays.
    pub async fn reload(&self, tenant: &str) -> Result<Arc<Resolved>, RegistryError> {
        let spec = self.tree.pipeline(tenant)?;
        let resolved = match self.build_validated(tenant, &spec).await {
            Ok(r) => Arc::new(r),
            Err(e) => {
                tracing::warn!(tenant, error = %e, "pipeline reload failed; keeping the running pipeline");
                return Err(e);
            }
        };
        self.resolved.write().insert(tenant.to_string(), resolved.clone());
        tracing::info!(tenant, generation = resolved.generation, "pipeline loaded");
        Ok(resolved)
    }

    /// Compiles one stored version, unless compiled before. Returns the
    /// plugin and whether it was compiled now (and so not yet validated).
    fn load_version(
        &self,
        tenant: &str,
        stage: Stage,
        name: &PluginName,
        version: u32,
    ) -> Result<(Arc<Plugin>, bool), RegistryError> {
        let path = self.tree.version_path(tenant, stage, name, version);
        let meta = std::fs::metadata(&path)?;
        let key = (path, meta.modified()?, meta.len());
        if let Some(p) = self.compiled.lock().get(&key) {
            return Ok((p.clone(), false));
        }
        let wasm = std::fs::read(&key.0)?;
        let plugin = self.runtime.compile(&format!("{name}@v{version}"), stage, &wasm)?;
        self.compiled.lock().insert(key, plugin.clone());
        Ok((plugin, true))
    }

    fn forget(&self, plugin: &Arc<Plugin>) {
        self.compiled.lock().retain(|_, p| !Arc::ptr_eq(p, plugin));
    }

    /// The plugin `name` of `stage` for `tenant`: a built-in, or the
    /// tenant's active version. Newly compiled ones are added to `fresh`.
    fn lookup(&self, tenant: &str, stage: Stage, name: &str, fresh: &mut Fresh) -> Result<Arc<Plugin>, RegistryError> {
        if let Some(p) = self.builtins.get(&(stage, name)) {
            return Ok(p.clone());
        }
        let name = PluginName::parse(name)?;
        let version = self
            .tree
            .active(tenant, stage, &name)
            .ok_or_else(|| RegistryError::not_found(stage, &name))?;
        let (plugin, new) = self.load_version(tenant, stage, &name, version)?;
        if new {
            fresh.push((stage, plugin.clone()));
        }
        Ok(plugin)
    }

    /// Compiles what `spec` names; the plugins compiled now (never
    /// validated) are returned beside it.
    fn build(&self, tenant: &str, spec: &PipelineSpec) -> Result<(Resolved, Fresh), RegistryError> {
        spec.check()?;
        let limits = spec.limits.clamped(&self.ceiling);
        let mut fresh = Vec::new();
        // A disabled plugin's place is taken by the built-in of its stage
        // (an enricher is skipped).
        let pick = |name: &str, fallback: &'static str| {
            if self.skipped(tenant, name) {
                fallback.to_string()
            } else {
                name.to_string()
            }
        };
        let json = self.lookup(
            tenant,
            Stage::Parser,
            &pick(&spec.json_parser, "json-parser"),
            &mut fresh,
        )?;
        let text = self.lookup(
            tenant,
            Stage::Parser,
            &pick(&spec.text_parser, "line-parser"),
            &mut fresh,
        )?;
        let enrichers = spec
            .enrichers
            .iter()
            .filter(|e| !self.skipped(tenant, e))
            .map(|e| self.lookup(tenant, Stage::Enricher, e, &mut fresh))
            .collect::<Result<_, _>>()?;
        let router = self.lookup(tenant, Stage::Router, &pick(&spec.router, "default-router"), &mut fresh)?;
        let resolved = Resolved {
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
            json,
            text,
            enrichers,
            router,
            limits,
            config: spec
                .config
                .iter()
                .map(|(k, v)| (k.clone(), Arc::new(v.clone().into_iter().collect())))
                .collect(),
        };
        Ok((resolved, fresh))
    }

    /// Builds the tenant's pipeline and dry-runs every plugin compiled for
    /// it now; one that fails is forgotten and nothing is swapped.
    pub(super) async fn build_validated(&self, tenant: &str, spec: &PipelineSpec) -> Result<Resolved, RegistryError> {
        // Compiling takes tens of ms per plugin: keep it off the workers.
        let (resolved, fresh) = tokio::task::block_in_place(|| self.build(tenant, spec))?;
        // A new version is tried with the config and limits the tenant runs
        // now: a pipeline change may configure a plugin to refuse batches
        // (dead letters are its answer), which is not a broken plugin.
        let running = self.tree.pipeline(tenant)?;
        for (stage, plugin) in &fresh {
            if let Err(e) = self.dry_run(tenant, &running, *stage, plugin).await {
                for (_, p) in &fresh {
                    self.forget(p);
                }
                return Err(e);
            }
        }
        Ok(resolved)
    }

    /// Runs the plugin once on a sample batch with the config and limits
    /// `spec` gives it.
    pub(super) async fn dry_run(
        &self,
        tenant: &str,
        spec: &PipelineSpec,
        stage: Stage,
        plugin: &Arc<Plugin>,
    ) -> Result<(), RegistryError> {
        let config = Arc::new(spec.config_of(plugin.name()).into_iter().collect());
        let limits = spec.limits.clamped(&self.ceiling);
        validate::dry_run(&self.runtime, tenant, stage, plugin, config, limits).await
    }
}
