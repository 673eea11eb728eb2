//! Plugin management: which plugins a tenant has, in which versions, in
//! which pipeline, whether they are healthy, and how a change reaches every
//! processor. The data path (`pipeline`) only asks the registry for a
//! tenant's compiled pipeline (`Registry::resolve`) and reports how batches
//! went (`record_failure`, `record_success`); everything that changes
//! plugins lives here.
//!
//! - `names`: plugin names, the only request strings that become paths;
//! - `spec`: the pipeline a tenant sets, and its sandbox limits;
//! - `versions`: the tree on disk (versions, `active`, `pipeline.json`);
//! - `validate`: compile, imports, world, dry run;
//! - `health`: failure streaks and disabled plugins;
//! - `stats`: calls, errors, records and time per plugin;
//! - `registry`: upload, rollback, delete, and the compiled pipelines;
//! - `shared`: the tree mirrored through the object store in a cluster;
//! - `hot_reload`: the tree watched on disk.
//!
//! **Invariant:** only `plugins::hot_reload` knows notify; plugins reach
//! wasmtime only through `runtime` and the object store only through
//! `stores::blobs`.

mod health;
pub mod hot_reload;
mod names;
pub mod registry;
pub mod shared;
mod spec;
pub mod stats;
pub mod validate;
mod versions;

pub use health::DISABLE_AFTER;
pub use names::{PluginName, base_name, is_builtin};
pub use registry::{MAX_PLUGIN_BYTES, PluginInfo, Quota, Registry, Resolved};
pub use spec::{LimitsSpec, PipelineSpec};

use std::path::Path;
use std::sync::Arc;

use crate::config::PluginPolicy;
use crate::error::Backend;
use crate::runtime::{Limits, Runtime, RuntimeError, Stage};
use crate::stores::raw::RawStore;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid plugin name {0:?}: use ^[a-z][a-z0-9_-]{{0,62}}$")]
    BadName(String),
    #[error("{0:?} is a built-in plugin name")]
    Reserved(String),
    #[error("the plugin failed validation ({check}): {message}")]
    Invalid { check: &'static str, message: String },
    #[error("no {stage} plugin {name:?}")]
    NotFound { stage: &'static str, name: String },
    #[error("no version {version} of {name:?}")]
    NoVersion { name: String, version: u32 },
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    OverPlan(String),
    #[error("invalid pipeline: {0}")]
    BadPipeline(String),
    #[error("plugin storage: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl RegistryError {
    fn not_found(stage: Stage, name: &PluginName) -> Self {
        RegistryError::NotFound {
            stage: stage.as_str(),
            name: name.to_string(),
        }
    }
}

/// The plugin side of one process: the registry over `<data>/plugins`;
/// on a processor, the hot-reload watch of that tree and, when the bucket
/// is shared with other processes, the store that mirrors it to them.
pub struct Plugins {
    pub registry: Arc<Registry>,
    /// Pulled before processing starts, then every few seconds.
    pub shared: Option<Arc<shared::PluginStore>>,
    _watcher: Option<hot_reload::Watcher>,
}

impl Plugins {
    /// Compiles the built-ins (cached in `<data>/compiled`) and opens the
    /// tenants' plugin tree.
    pub fn open(
        data_dir: &Path,
        raw: &RawStore,
        shared_bucket: bool,
        processor: bool,
        policy: &PluginPolicy,
    ) -> Result<Plugins, RegistryError> {
        let runtime = Runtime::with_cache(&data_dir.join("compiled"))?;
        // The settings were checked against the runtime's bounds.
        let ceiling = LimitsSpec {
            memory_mib: Some(policy.memory_mib),
            cpu_ms: Some(policy.cpu_ms),
            timeout_ms: Some(policy.timeout_ms),
        }
        .resolve(&Limits::MAX)?;
        let mut registry = Registry::new(data_dir.join("plugins"), runtime)?.with_policy(ceiling, policy.max_versions);
        // With a shared bucket, processors share tenants' plugins through
        // it; with the embedded store there is only this process.
        let shared = (processor && shared_bucket).then(|| {
            Arc::new(shared::PluginStore::new(
                raw.blobs(shared::PREFIX, Backend::Plugins),
                registry.dir().to_path_buf(),
            ))
        });
        if let Some(store) = &shared {
            registry = registry.with_plugin_store(store.clone());
        }
        let registry = Arc::new(registry);
        let watcher = processor
            .then(|| hot_reload::watch(registry.clone()))
            .transpose()
            .map_err(|e| RegistryError::Io(std::io::Error::other(format!("watching the plugin directory: {e}"))))?;
        Ok(Plugins {
            registry,
            shared,
            _watcher: watcher,
        })
    }
}
