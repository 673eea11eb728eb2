//! The registry ties plugin management together: uploads (validated before
//! activation), rollback, removal, the tenant's pipeline, and the compiled
//! pipeline each worker runs (`Resolved`).
//!
//! A tenant's pipeline is compiled off the hot path and swapped in as one
//! `Arc<Resolved>` with a new generation; workers pick it up between
//! batches, so batches in flight finish on the old plugins. A version that
//! fails to compile or validate never replaces a working one. Every change
//! made here is published through the shared store in a cluster.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::health::Health;
use super::names::{BUILTINS, PluginName, base_name, is_builtin};
use super::shared::PluginStore;
use super::stats::{Figures, PluginStats};
use super::versions::Tree;
use super::{PipelineSpec, RegistryError, validate};
use crate::runtime::{Limits, Plugin, Runtime, Stage, builtin};
use parking_lot::{Mutex, RwLock};

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

/// One plugin as listed by `GET /v1/plugins`.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub stage: &'static str,
    pub name: String,
    pub builtin: bool,
    pub versions: Vec<u32>,
    pub active: Option<u32>,
    /// Why the plugin was disabled, if it was.
    pub disabled: Option<String>,
    /// Its calls since this process started.
    pub figures: Figures,
}

/// Plugins compiled during a build, not yet validated.
type Fresh = Vec<(Stage, Arc<Plugin>)>;

/// Largest accepted component; Python and JavaScript components are ~18 MB.
pub const MAX_PLUGIN_BYTES: usize = 64 * 1024 * 1024;
/// Versions kept per plugin unless the operator says otherwise.
pub const DEFAULT_MAX_VERSIONS: usize = 10;

/// What a tenant's plan allows of plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Plugins, over every stage.
    pub plugins: usize,
    /// Versions kept of each.
    pub versions: usize,
}

impl Quota {
    pub const UNLIMITED: Quota = Quota {
        plugins: usize::MAX,
        versions: usize::MAX,
    };
}

pub struct Registry {
    tree: Tree,
    runtime: Runtime,
    builtins: HashMap<(Stage, &'static str), Arc<Plugin>>,
    /// Compiled versions by (path, mtime, size): a file replaced in place
    /// is compiled again.
    compiled: Mutex<HashMap<(PathBuf, SystemTime, u64), Arc<Plugin>>>,
    resolved: RwLock<HashMap<String, Arc<Resolved>>>,
    generation: AtomicU64,
    health: Health,
    stats: PluginStats,
    /// Where changes are shared with the other processors, in a cluster.
    plugin_store: Option<Arc<PluginStore>>,
    /// The operator's: what tenants' pipelines may lower, never raise.
    ceiling: Limits,
    /// Versions kept per plugin (the active and the previous one always).
    max_versions: usize,
    /// Slots for compiling uploads (`validate::COMPILE_SLOTS`).
    compiles: Arc<tokio::sync::Semaphore>,
    /// Each tenant's uploads queue on their own first, so that one tenant
    /// with many uploads holds one place in the compile queue, not all.
    tenant_compiles: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Registry {
    pub fn new(dir: PathBuf, runtime: Runtime) -> Result<Registry, RegistryError> {
        let bytes: [&[u8]; 4] = [
            builtin::JSON_PARSER,
            builtin::LINE_PARSER,
            builtin::DEFAULT_ENRICHER,
            builtin::DEFAULT_ROUTER,
        ];
        let mut builtins = HashMap::new();
        for ((stage, name), wasm) in BUILTINS.into_iter().zip(bytes) {
            builtins.insert((stage, name), runtime.compile(name, stage, wasm)?);
        }
        Ok(Registry {
            tree: Tree::new(dir)?,
            runtime,
            builtins,
            compiled: Mutex::new(HashMap::new()),
            resolved: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(1),
            health: Health::default(),
            stats: PluginStats::default(),
            plugin_store: None,
            ceiling: Limits::default(),
            max_versions: DEFAULT_MAX_VERSIONS,
            compiles: Arc::new(tokio::sync::Semaphore::new(validate::COMPILE_SLOTS)),
            tenant_compiles: Mutex::new(HashMap::new()),
        })
    }

    /// The operator's policy: the limits ceiling of every tenant's plugins,
    /// and how many versions of a plugin are kept (at least 2).
    pub fn with_policy(mut self, ceiling: Limits, max_versions: usize) -> Self {
        self.ceiling = ceiling;
        self.max_versions = max_versions.max(2);
        self
    }

    /// Shares every change made through this registry with the other
    /// processors through `store`.
    pub fn with_plugin_store(mut self, store: Arc<PluginStore>) -> Self {
        self.plugin_store = Some(store);
        self
    }

    /// Makes a change and publishes it, with no pull in between.
    async fn shared<T>(
        &self,
        tenant: &str,
        change: impl std::future::Future<Output = Result<T, RegistryError>>,
    ) -> Result<T, RegistryError> {
        let Some(store) = &self.plugin_store else {
            return change.await;
        };
        let _guard = store.lock().await;
        let out = change.await?;
        store.publish_or_defer(tenant).await;
        Ok(out)
    }

    pub fn dir(&self) -> &Path {
        self.tree.root()
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn pipeline(&self, tenant: &str) -> Result<PipelineSpec, RegistryError> {
        self.tree.pipeline(tenant)
    }

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
    async fn build_validated(&self, tenant: &str, spec: &PipelineSpec) -> Result<Resolved, RegistryError> {
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
    async fn dry_run(
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

    /// Whether the tenant's plugin `name` is left out of its pipeline:
    /// disabled after failures, or the tenant's plugin CPU is used up.
    fn skipped(&self, tenant: &str, name: &str) -> bool {
        !is_builtin(name) && (self.health.is_disabled(tenant, name) || self.health.is_exhausted(tenant))
    }

    /// Marks whether the tenant used its plan's plugin CPU for today; its
    /// pipeline is rebuilt when that changes.
    pub async fn set_cpu_exhausted(&self, tenant: &str, exhausted: bool) {
        if self.health.set_exhausted(tenant, exhausted) {
            if exhausted {
                tracing::warn!(tenant, "plugin CPU for today used up; the built-ins run instead");
            }
            let _ = self.reload(tenant).await;
        }
    }

    /// Counts a dead-lettered batch against `plugin` (`name@vN`); returns
    /// true when this disables it (its stage then runs the built-in).
    pub async fn record_failure(&self, tenant: &str, plugin: &str, reason: &str) -> bool {
        let name = base_name(plugin);
        if is_builtin(name) || !self.health.record_failure(tenant, name, reason) {
            return false;
        }
        tracing::error!(tenant, plugin = name, "plugin disabled after repeated failures");
        let _ = self.reload(tenant).await;
        true
    }

    /// A batch went through: the tenant's failure streaks end.
    pub fn record_success(&self, tenant: &str) {
        self.health.record_success(tenant);
    }

    /// Where the processor counts each plugin call.
    pub fn stats(&self) -> &PluginStats {
        &self.stats
    }

    pub fn list(&self, tenant: &str) -> Vec<PluginInfo> {
        let mut out: Vec<PluginInfo> = BUILTINS
            .iter()
            .map(|(stage, name)| PluginInfo {
                stage: stage.as_str(),
                name: name.to_string(),
                builtin: true,
                versions: vec![],
                active: None,
                disabled: None,
                figures: self.stats.get(tenant, *stage, name),
            })
            .collect();
        for stage in Stage::ALL {
            for name in self.tree.names(tenant, stage) {
                out.push(PluginInfo {
                    stage: stage.as_str(),
                    versions: self.tree.versions(tenant, stage, &name),
                    active: self.tree.active(tenant, stage, &name),
                    disabled: self.health.disabled_reason(tenant, name.as_str()).or_else(|| {
                        self.health
                            .is_exhausted(tenant)
                            .then(|| super::health::CPU_EXHAUSTED.to_string())
                    }),
                    figures: self.stats.get(tenant, stage, name.as_str()),
                    name: name.to_string(),
                    builtin: false,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for _ in 0..super::super::health::DISABLE_AFTER {
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
