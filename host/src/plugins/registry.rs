//! The registry ties plugin management together: uploads (validated before
//! activation), rollback, removal, the tenant's pipeline, and the compiled
//! pipeline each worker runs (`Resolved`).
//!
//! A tenant's pipeline is compiled off the hot path and swapped in as one
//! `Arc<Resolved>` with a new generation; workers pick it up between
//! batches, so batches in flight finish on the old plugins. A version that
//! fails to compile or validate never replaces a working one. Every change
//! made here is published through the shared store in a cluster.
//!
//! `resolved` compiles a tenant's pipeline; `changes` holds what changes
//! a tenant's plugins.

mod changes;
mod resolved;

pub use resolved::Resolved;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use super::health::Health;
use super::names::{BUILTINS, base_name, is_builtin};
use super::shared::PluginStore;
use super::stats::{Figures, PluginStats};
use super::versions::Tree;
use super::{PipelineSpec, RegistryError, validate};
use crate::runtime::{Limits, Plugin, Runtime, Stage, builtin};
use parking_lot::{Mutex, RwLock};

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
