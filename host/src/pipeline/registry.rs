//! Tenants' plugins and pipelines: uploads (validated before activation),
//! versions, rollback, and the compiled pipeline each worker runs.
//!
//! On disk, under `<data>/plugins/<tenant>/`:
//! - `<stage>/<name>/<version>.wasm` — every uploaded version, kept;
//! - `<stage>/<name>/active` — the version in use;
//! - `pipeline.json` — the tenant's pipeline (`PipelineSpec`).
//!
//! A tenant's pipeline is compiled off the hot path and swapped in as one
//! `Arc<Resolved>` with a new generation; workers pick it up between
//! batches, so batches in flight finish on the old plugins. A version that
//! fails to compile or validate never replaces a working one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::plugin_store::PluginStore;
use crate::runtime::{
    LIMIT_MAX_CPU_TICKS, LIMIT_MAX_MEMORY, LIMIT_MAX_TIMEOUT, Limits, Plugin, Runtime, RuntimeError, Stage, builtin,
};
use loggerhub_codec::{self as codec, Level, Record};

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
    #[error("invalid pipeline: {0}")]
    BadPipeline(String),
    #[error("plugin storage: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl RegistryError {
    fn not_found(stage: Stage, name: &str) -> Self {
        RegistryError::NotFound {
            stage: stage.as_str(),
            name: name.to_string(),
        }
    }
}

/// A tenant's pipeline, as set through `PUT /v1/pipeline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Parser for JSON and NDJSON bodies.
    #[serde(default = "default_json_parser")]
    pub json_parser: String,
    /// Parser for `text/plain` bodies.
    #[serde(default = "default_text_parser")]
    pub text_parser: String,
    /// Enrichers, run in order.
    #[serde(default = "default_enrichers")]
    pub enrichers: Vec<String>,
    #[serde(default = "default_router")]
    pub router: String,
    /// Per-plugin configuration, read by plugins through `host.config`.
    #[serde(default)]
    pub config: BTreeMap<String, BTreeMap<String, String>>,
    /// The tenant's sandbox limits; unset ones take the host defaults.
    #[serde(default, skip_serializing_if = "LimitsSpec::is_empty")]
    pub limits: LimitsSpec,
}

/// Per-tenant sandbox limits, each optional and bounded by the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Memory per instance, MiB (1..=1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// CPU per call, ms, rounded up to 10 ms (10..=10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u32>,
    /// Wall clock per call, ms (100..=60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
}

impl LimitsSpec {
    fn is_empty(&self) -> bool {
        *self == LimitsSpec::default()
    }

    /// The runtime limits, or why they are out of bounds.
    pub fn resolve(&self) -> Result<Limits, RegistryError> {
        let mut l = Limits::default();
        let tick = crate::runtime::EPOCH_TICK.as_millis() as u32;
        if let Some(m) = self.memory_mib {
            let bytes = m as usize * 1024 * 1024;
            if m == 0 || bytes > LIMIT_MAX_MEMORY {
                return Err(RegistryError::BadPipeline(format!(
                    "limits.memory_mib must be 1 to {}",
                    LIMIT_MAX_MEMORY >> 20
                )));
            }
            l.memory_bytes = bytes;
        }
        if let Some(ms) = self.cpu_ms {
            let ticks = ms.div_ceil(tick);
            if ticks == 0 || ticks > LIMIT_MAX_CPU_TICKS {
                return Err(RegistryError::BadPipeline(format!(
                    "limits.cpu_ms must be 1 to {}",
                    LIMIT_MAX_CPU_TICKS * tick
                )));
            }
            l.cpu_ticks = ticks;
        }
        if let Some(ms) = self.timeout_ms {
            let t = std::time::Duration::from_millis(u64::from(ms));
            if ms < 100 || t > LIMIT_MAX_TIMEOUT {
                return Err(RegistryError::BadPipeline(format!(
                    "limits.timeout_ms must be 100 to {}",
                    LIMIT_MAX_TIMEOUT.as_millis()
                )));
            }
            l.timeout = t;
        }
        Ok(l)
    }
}

fn default_json_parser() -> String {
    "json-parser".into()
}
fn default_text_parser() -> String {
    "line-parser".into()
}
fn default_enrichers() -> Vec<String> {
    vec!["default-enricher".into()]
}
fn default_router() -> String {
    "default-router".into()
}

impl Default for PipelineSpec {
    fn default() -> Self {
        PipelineSpec {
            json_parser: default_json_parser(),
            text_parser: default_text_parser(),
            enrichers: default_enrichers(),
            router: default_router(),
            config: BTreeMap::new(),
            limits: LimitsSpec::default(),
        }
    }
}

impl PipelineSpec {
    fn uses(&self, stage: Stage, name: &str) -> bool {
        match stage {
            Stage::Parser => self.json_parser == name || self.text_parser == name,
            Stage::Enricher => self.enrichers.iter().any(|e| e == name),
            Stage::Router => self.router == name,
        }
    }
}

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
        let base = plugin.split('@').next().unwrap_or(plugin);
        self.config.get(base).cloned().unwrap_or_default()
    }
}

/// Plugins compiled during a build, not yet validated.
type Fresh = Vec<(Stage, Arc<Plugin>)>;

/// One plugin as listed by `GET /v1/plugins`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub stage: &'static str,
    pub name: String,
    pub builtin: bool,
    pub versions: Vec<u32>,
    pub active: Option<u32>,
    /// Why the plugin was disabled, if it was.
    pub disabled: Option<String>,
}

const BUILTINS: [(Stage, &str); 4] = [
    (Stage::Parser, "json-parser"),
    (Stage::Parser, "line-parser"),
    (Stage::Enricher, "default-enricher"),
    (Stage::Router, "default-router"),
];

/// Largest accepted component; Python and JavaScript components are ~18 MB.
pub const MAX_PLUGIN_BYTES: usize = 64 * 1024 * 1024;

pub struct Registry {
    dir: PathBuf,
    runtime: Runtime,
    builtins: HashMap<(Stage, &'static str), Arc<Plugin>>,
    /// Compiled versions by (path, mtime, size): a file replaced in place
    /// is compiled again.
    compiled: Mutex<HashMap<(PathBuf, std::time::SystemTime, u64), Arc<Plugin>>>,
    resolved: RwLock<HashMap<String, Arc<Resolved>>>,
    generation: AtomicU64,
    /// Consecutive dead-lettered entries per (tenant, plugin).
    failures: Mutex<HashMap<(String, String), u32>>,
    /// Disabled plugins per (tenant, plugin), with the last failure.
    disabled: RwLock<HashMap<(String, String), String>>,
    /// Where changes are shared with the other processors, in a cluster.
    plugin_store: Option<Arc<PluginStore>>,
}

/// A tenant plugin is disabled after this many consecutive dead-lettered
/// entries; its stage falls back to the built-in until a new version is
/// uploaded or rolled back to.
pub const DISABLE_AFTER: u32 = 5;

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=63).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

impl Registry {
    pub fn new(dir: PathBuf, runtime: Runtime) -> Result<Registry, RegistryError> {
        std::fs::create_dir_all(&dir)?;
        let mut builtins = HashMap::new();
        let bytes: [&[u8]; 4] = [
            builtin::JSON_PARSER,
            builtin::LINE_PARSER,
            builtin::DEFAULT_ENRICHER,
            builtin::DEFAULT_ROUTER,
        ];
        for ((stage, name), wasm) in BUILTINS.into_iter().zip(bytes) {
            builtins.insert((stage, name), runtime.compile(name, stage, wasm)?);
        }
        Ok(Registry {
            dir,
            runtime,
            builtins,
            compiled: Mutex::new(HashMap::new()),
            resolved: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(1),
            failures: Mutex::new(HashMap::new()),
            disabled: RwLock::new(HashMap::new()),
            plugin_store: None,
        })
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
        &self.dir
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn plugin_dir(&self, tenant: &str, stage: Stage, name: &str) -> PathBuf {
        self.dir.join(tenant).join(stage.as_str()).join(name)
    }

    fn versions(&self, tenant: &str, stage: Stage, name: &str) -> Vec<u32> {
        let mut v: Vec<u32> = std::fs::read_dir(self.plugin_dir(tenant, stage, name))
            .into_iter()
            .flatten()
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .into_string()
                    .ok()?
                    .strip_suffix(".wasm")?
                    .parse()
                    .ok()
            })
            .collect();
        v.sort_unstable();
        v
    }

    fn active(&self, tenant: &str, stage: Stage, name: &str) -> Option<u32> {
        std::fs::read_to_string(self.plugin_dir(tenant, stage, name).join("active"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Compiles one stored version, unless compiled before. Returns the
    /// plugin and whether it was compiled now (and so not yet validated).
    fn load_version(
        &self,
        tenant: &str,
        stage: Stage,
        name: &str,
        version: u32,
    ) -> Result<(Arc<Plugin>, bool), RegistryError> {
        let path = self.plugin_dir(tenant, stage, name).join(format!("{version}.wasm"));
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
        let version = self
            .active(tenant, stage, name)
            .ok_or_else(|| RegistryError::not_found(stage, name))?;
        let (plugin, new) = self.load_version(tenant, stage, name, version)?;
        if new {
            fresh.push((stage, plugin.clone()));
        }
        Ok(plugin)
    }

    pub fn pipeline(&self, tenant: &str) -> Result<PipelineSpec, RegistryError> {
        match std::fs::read(self.dir.join(tenant).join("pipeline.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| RegistryError::BadPipeline(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PipelineSpec::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Compiles what `spec` names; the plugins compiled now (never
    /// validated) are returned beside it.
    fn build(&self, tenant: &str, spec: &PipelineSpec) -> Result<(Resolved, Fresh), RegistryError> {
        let mut fresh = Vec::new();
        // A disabled plugin's place is taken by the built-in of its stage
        // (an enricher is skipped).
        let pick = |name: &str, fallback: &'static str| {
            if self.is_disabled(tenant, name) {
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
            .filter(|e| !self.is_disabled(tenant, e))
            .map(|e| self.lookup(tenant, Stage::Enricher, e, &mut fresh))
            .collect::<Result<_, _>>()?;
        let router = self.lookup(tenant, Stage::Router, &pick(&spec.router, "default-router"), &mut fresh)?;
        let limits = spec.limits.resolve()?;
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
        for (stage, plugin) in &fresh {
            if let Err(e) = self.dry_run(tenant, *stage, plugin).await {
                for (_, p) in &fresh {
                    self.forget(p);
                }
                return Err(e);
            }
        }
        Ok(resolved)
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
        let spec = self.pipeline(tenant)?;
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

    /// Validates and stores a new version of a tenant plugin, then makes it
    /// active. Returns the version.
    pub async fn upload(&self, tenant: &str, stage: Stage, name: &str, wasm: &[u8]) -> Result<u32, RegistryError> {
        self.shared(tenant, self.upload_here(tenant, stage, name, wasm)).await
    }

    async fn upload_here(&self, tenant: &str, stage: Stage, name: &str, wasm: &[u8]) -> Result<u32, RegistryError> {
        if !valid_name(name) {
            return Err(RegistryError::BadName(name.to_string()));
        }
        if BUILTINS.iter().any(|(_, b)| *b == name) {
            return Err(RegistryError::Reserved(name.to_string()));
        }
        let plugin = tokio::task::block_in_place(|| self.runtime.compile(name, stage, wasm)).map_err(|e| {
            let check = match e {
                RuntimeError::Link { .. } => "imports",
                RuntimeError::WrongWorld { .. } => "world",
                _ => "compile",
            };
            RegistryError::Invalid {
                check,
                message: e.to_string(),
            }
        })?;
        self.dry_run(tenant, stage, &plugin).await?;
        let dir = self.plugin_dir(tenant, stage, name);
        std::fs::create_dir_all(&dir)?;
        let version = self.versions(tenant, stage, name).last().map_or(1, |v| v + 1);
        write_atomic(&dir.join(format!("{version}.wasm")), wasm)?;
        write_atomic(&dir.join("active"), version.to_string().as_bytes())?;
        self.enable(tenant, name);
        if self.pipeline(tenant)?.uses(stage, name) {
            self.reload(tenant).await?;
        }
        Ok(version)
    }

    /// Runs the plugin once on a sample batch: it must not trap, time out
    /// or answer something malformed.
    async fn dry_run(&self, tenant: &str, stage: Stage, plugin: &Arc<Plugin>) -> Result<(), RegistryError> {
        let config = self
            .pipeline(tenant)?
            .config
            .get(plugin.name().split('@').next().unwrap_or_default())
            .map(|c| Arc::new(c.clone().into_iter().collect()))
            .unwrap_or_default();
        let limits = self.pipeline(tenant)?.limits.resolve()?;
        dry_run(&self.runtime, tenant, stage, plugin, config, limits).await
    }

    fn is_disabled(&self, tenant: &str, name: &str) -> bool {
        self.disabled
            .read()
            .contains_key(&(tenant.to_string(), name.to_string()))
    }

    fn enable(&self, tenant: &str, name: &str) {
        let key = (tenant.to_string(), name.to_string());
        self.disabled.write().remove(&key);
        self.failures.lock().remove(&key);
    }

    /// Counts a dead-lettered entry against `plugin` (`name@vN`); returns
    /// true when this disables it.
    pub async fn record_failure(&self, tenant: &str, plugin: &str, reason: &str) -> bool {
        let name = plugin.split('@').next().unwrap_or(plugin);
        if BUILTINS.iter().any(|(_, b)| *b == name) {
            return false;
        }
        let key = (tenant.to_string(), name.to_string());
        let n = {
            let mut f = self.failures.lock();
            let n = f.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        if n < DISABLE_AFTER || self.disabled.read().contains_key(&key) {
            return false;
        }
        self.disabled.write().insert(key, reason.to_string());
        tracing::error!(
            tenant,
            plugin = name,
            failures = n,
            "plugin disabled after repeated failures"
        );
        let _ = self.reload(tenant).await;
        true
    }

    /// A batch went through: the tenant's failure streaks end.
    pub fn record_success(&self, tenant: &str) {
        let mut f = self.failures.lock();
        if !f.is_empty() {
            f.retain(|(t, _), _| t != tenant);
        }
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
            })
            .collect();
        for stage in Stage::ALL {
            let Ok(entries) = std::fs::read_dir(self.dir.join(tenant).join(stage.as_str())) else {
                continue;
            };
            let mut names: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
            names.sort();
            for name in names {
                let disabled = self.disabled.read().get(&(tenant.to_string(), name.clone())).cloned();
                out.push(PluginInfo {
                    disabled,
                    stage: stage.as_str(),
                    versions: self.versions(tenant, stage, &name),
                    active: self.active(tenant, stage, &name),
                    name,
                    builtin: false,
                });
            }
        }
        out
    }

    pub async fn rollback(
        &self,
        tenant: &str,
        stage: Stage,
        name: &str,
        to: Option<u32>,
    ) -> Result<u32, RegistryError> {
        self.shared(tenant, self.rollback_here(tenant, stage, name, to)).await
    }

    async fn rollback_here(
        &self,
        tenant: &str,
        stage: Stage,
        name: &str,
        to: Option<u32>,
    ) -> Result<u32, RegistryError> {
        let versions = self.versions(tenant, stage, name);
        let active = self
            .active(tenant, stage, name)
            .ok_or_else(|| RegistryError::not_found(stage, name))?;
        let target = match to {
            Some(v) if versions.contains(&v) => v,
            Some(v) => {
                return Err(RegistryError::NoVersion {
                    name: name.to_string(),
                    version: v,
                });
            }
            None => *versions
                .iter()
                .rev()
                .find(|v| **v < active)
                .ok_or_else(|| RegistryError::NoVersion {
                    name: name.to_string(),
                    version: active.saturating_sub(1),
                })?,
        };
        write_atomic(
            &self.plugin_dir(tenant, stage, name).join("active"),
            target.to_string().as_bytes(),
        )?;
        self.enable(tenant, name);
        if self.pipeline(tenant)?.uses(stage, name) {
            self.reload(tenant).await?;
        }
        Ok(target)
    }

    pub async fn delete(&self, tenant: &str, stage: Stage, name: &str) -> Result<(), RegistryError> {
        self.shared(tenant, self.delete_here(tenant, stage, name)).await
    }

    async fn delete_here(&self, tenant: &str, stage: Stage, name: &str) -> Result<(), RegistryError> {
        if self.active(tenant, stage, name).is_none() {
            return Err(RegistryError::not_found(stage, name));
        }
        if self.pipeline(tenant)?.uses(stage, name) {
            return Err(RegistryError::InUse(format!(
                "{name:?} is in the tenant's pipeline; change the pipeline first"
            )));
        }
        let dir = self.plugin_dir(tenant, stage, name);
        self.compiled.lock().retain(|(p, _, _), _| !p.starts_with(&dir));
        std::fs::remove_dir_all(dir)?;
        Ok(())
    }

    /// Checks every plugin the spec names, then stores it and swaps it in.
    pub async fn set_pipeline(&self, tenant: &str, spec: PipelineSpec) -> Result<Arc<Resolved>, RegistryError> {
        self.shared(tenant, self.set_pipeline_here(tenant, spec)).await
    }

    async fn set_pipeline_here(&self, tenant: &str, spec: PipelineSpec) -> Result<Arc<Resolved>, RegistryError> {
        if spec.enrichers.len() > 16 {
            return Err(RegistryError::BadPipeline("at most 16 enrichers".into()));
        }
        self.build_validated(tenant, &spec).await?;
        let dir = self.dir.join(tenant);
        std::fs::create_dir_all(&dir)?;
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| RegistryError::BadPipeline(e.to_string()))?;
        write_atomic(&dir.join("pipeline.json"), &json)?;
        self.reload(tenant).await
    }
}

/// Runs `plugin` once on a sample batch: it must not trap, time out or
/// answer something malformed (refusing the sample is an answer).
pub async fn dry_run(
    runtime: &Runtime,
    tenant: &str,
    stage: Stage,
    plugin: &Arc<Plugin>,
    config: Arc<HashMap<String, String>>,
    limits: Limits,
) -> Result<(), RegistryError> {
    let fail = |e: RuntimeError| RegistryError::Invalid {
        check: "dry_run",
        message: e.to_string(),
    };
    let mut inst = runtime
        .instantiate(plugin, tenant, config, limits)
        .await
        .map_err(fail)?;
    let sample = sample_batch(tenant);
    let result = match stage {
        Stage::Parser => {
            let body = b"{\"message\":\"dry run\",\"level\":\"info\"}\n2025-10-10T12:00:00Z ERROR dry run\n";
            match inst.parse("application/x-ndjson", Some("dry-run"), body).await {
                Ok(out) => well_formed(plugin, &out),
                // Refusing the sample is an answer, not a fault.
                Err(RuntimeError::Refused { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Stage::Enricher => match inst.enrich(&codec::encode(&sample)).await {
            Ok(out) => well_formed(plugin, &out),
            Err(RuntimeError::Refused { .. }) => Ok(()),
            Err(e) => Err(e),
        },
        Stage::Router => inst.route(&codec::encode(&sample), sample.len()).await.map(drop),
    };
    result.map_err(fail)
}

/// Whether a stage's answer is a batch the host can read.
fn well_formed(plugin: &Plugin, out: &[u8]) -> Result<(), RuntimeError> {
    codec::decode(out).map(drop).map_err(|e| RuntimeError::BadOutput {
        plugin: plugin.name().to_string(),
        message: e.to_string(),
    })
}

fn sample_batch(tenant: &str) -> Vec<Record> {
    (0..3)
        .map(|i| Record {
            id: format!("01J00000000000000000000DR{i}"),
            tenant: tenant.to_string(),
            service: "dry-run".into(),
            level: Level::ALL[i % 6],
            timestamp: 1_760_099_196_000_000_000,
            message: format!("dry run {i} from 10.0.0.{i} for a@b.io"),
            full_log: format!("dry run {i}"),
            language: None,
            attributes: vec![("k".into(), "v".into())],
        })
        .collect()
}
