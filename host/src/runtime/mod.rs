//! The WebAssembly runtime: the only module that knows wasmtime.
//!
//! One `Engine` per process; each plugin is compiled once into a
//! `Component` and pre-linked (`*Pre`), and each tenant gets its own
//! instances, reused batch after batch. Guests get WASI with nothing
//! granted (no files, env, sockets, clocks beyond the defaults), a memory
//! cap, a CPU budget counted in epoch ticks, and a wall-clock timeout.

mod bindings;
pub mod builtin;
mod guest_output;
mod limiter;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use bindings::enricher::{Enricher, EnricherPre};
use bindings::parser::{Parser, ParserPre};
use bindings::router::{Router, RouterPre};
use bindings::types;
use limiter::InstanceLimiter;

/// Memory one instance may grow to. Python and JavaScript guests
/// (componentize-py/-js, ~18 MB components) need tens of MiB; 256 MiB
/// leaves room for large batches without letting one tenant exhaust the
/// host.
pub const MAX_INSTANCE_MEMORY: usize = 256 * 1024 * 1024;
/// How often the engine's epoch advances; the unit of the CPU budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Epoch ticks one call may run: 2 s of CPU, far above what a batch of
/// 16k records takes in the built-in plugins.
pub const CPU_BUDGET_TICKS: u32 = 200;
/// Wall-clock limit of one call, including time spent yielded.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest refusal message and code kept from a plugin (characters): they
/// become dead letters' reasons, the plugin's disabled reason and log
/// lines, once per failing batch and halving step.
pub const MAX_ERROR_MESSAGE: usize = 1024;
pub const MAX_ERROR_CODE: usize = 64;

/// Whether a call's answer of `records` records in `bytes` bytes is within
/// its bounds for `input_bytes` of input and at most `max_records`; else
/// which bound it broke, with the figures.
fn output_within(records: usize, bytes: usize, input_bytes: usize, max_records: usize) -> Result<(), String> {
    let max_bytes = input_bytes
        .saturating_mul(OUTPUT_BYTES_PER_INPUT_BYTE)
        .saturating_add(OUTPUT_BYTES_SLACK);
    if records > max_records {
        return Err(format!(
            "{records} records from {input_bytes} bytes of input; a call may return at most {max_records} records"
        ));
    }
    if bytes > max_bytes {
        return Err(format!(
            "{bytes} bytes from {input_bytes} bytes of input; a call may return at most {max_bytes} bytes"
        ));
    }
    Ok(())
}

/// `s`, cut to `max` characters (a string a guest hands the host).
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("plugin {plugin}: failed to compile: {message}")]
    Compile { plugin: String, message: String },
    #[error("plugin {plugin}: imports what the host does not grant: {message}")]
    Link { plugin: String, message: String },
    #[error("plugin {plugin}: does not export the {stage} world: {message}")]
    WrongWorld {
        plugin: String,
        stage: &'static str,
        message: String,
    },
    #[error("plugin {plugin}: failed to instantiate: {message}")]
    Instantiate { plugin: String, message: String },
    #[error("plugin {plugin}: trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin}: timed out after {timeout:?}")]
    Timeout { plugin: String, timeout: Duration },
    #[error("plugin {plugin}: refused the batch ({code}): {message}")]
    Refused {
        plugin: String,
        code: String,
        message: String,
    },
    #[error("plugin {plugin}: bad output: {message}")]
    BadOutput { plugin: String, message: String },
}

impl RuntimeError {
    /// The plugin the error is about.
    pub fn plugin(&self) -> &str {
        match self {
            RuntimeError::Compile { plugin, .. }
            | RuntimeError::Link { plugin, .. }
            | RuntimeError::WrongWorld { plugin, .. }
            | RuntimeError::Instantiate { plugin, .. }
            | RuntimeError::Trap { plugin, .. }
            | RuntimeError::Timeout { plugin, .. }
            | RuntimeError::Refused { plugin, .. }
            | RuntimeError::BadOutput { plugin, .. } => plugin,
        }
    }

    /// A stable word for metrics and dead letters.
    pub fn kind(&self) -> &'static str {
        match self {
            RuntimeError::Compile { .. } => "compile",
            RuntimeError::Link { .. } => "link",
            RuntimeError::WrongWorld { .. } => "wrong_world",
            RuntimeError::Instantiate { .. } => "instantiate",
            RuntimeError::Trap { .. } => "trap",
            RuntimeError::Timeout { .. } => "timeout",
            RuntimeError::Refused { .. } => "refused",
            RuntimeError::BadOutput { .. } => "bad_output",
        }
    }
}

/// Per-instance host state.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: InstanceLimiter,
    tenant: String,
    plugin: String,
    config: Arc<HashMap<String, String>>,
    ticks_left: u32,
    cpu_ticks: u32,
    log_budget: Arc<guest_output::LogBudget>,
}

/// Resource limits of one instance. The operator sets the ceiling (within
/// [`Limits::MAX`]); a tenant's pipeline may lower each limit under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: usize,
    /// CPU per call, in epoch ticks of `EPOCH_TICK`.
    pub cpu_ticks: u32,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: MAX_INSTANCE_MEMORY,
            cpu_ticks: CPU_BUDGET_TICKS,
            timeout: CALL_TIMEOUT,
        }
    }
}

/// What one call may return, relative to what it was given: a parser at
/// most one record per 8 bytes of body, an enricher at most twice the
/// records it got (each plus a little slack), and either at most 4 times
/// the input's bytes plus 64 KiB. More is a bad output, dead-lettered like
/// a trap, before the host decodes any of it: a plugin cannot make the host
/// hold millions of records it never asked for.
pub const OUTPUT_BYTES_PER_INPUT_BYTE: usize = 4;
pub const OUTPUT_BYTES_SLACK: usize = 64 * 1024;
pub const PARSER_INPUT_BYTES_PER_RECORD: usize = 8;
pub const OUTPUT_RECORDS_PER_INPUT_RECORD: usize = 2;
pub const OUTPUT_RECORDS_SLACK: usize = 16;

/// Upper bounds of per-tenant limits.
pub const LIMIT_MAX_MEMORY: usize = 1024 * 1024 * 1024;
pub const LIMIT_MAX_CPU_TICKS: u32 = 1000;
pub const LIMIT_MAX_TIMEOUT: Duration = Duration::from_secs(60);

impl Limits {
    /// The most an operator may allow.
    pub const MAX: Limits = Limits {
        memory_bytes: LIMIT_MAX_MEMORY,
        cpu_ticks: LIMIT_MAX_CPU_TICKS,
        timeout: LIMIT_MAX_TIMEOUT,
    };

    /// Each limit the lower of the two.
    pub fn min(&self, other: &Limits) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes.min(other.memory_bytes),
            cpu_ticks: self.cpu_ticks.min(other.cpu_ticks),
            timeout: self.timeout.min(other.timeout),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl bindings::host::Host for HostState {
    fn log(&mut self, level: types::Level, message: String) {
        if !self.log_budget.admit(&self.tenant) {
            return;
        }
        let (tenant, plugin) = (self.tenant.as_str(), self.plugin.as_str());
        let message = cut(&message, guest_output::MAX_LINE);
        match level {
            types::Level::Trace => tracing::trace!(tenant, plugin, message, "plugin log"),
            types::Level::Debug => tracing::debug!(tenant, plugin, message, "plugin log"),
            types::Level::Info => tracing::info!(tenant, plugin, message, "plugin log"),
            types::Level::Warn => tracing::warn!(tenant, plugin, message, "plugin log"),
            types::Level::Error | types::Level::Fatal => tracing::error!(tenant, plugin, message, "plugin log"),
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}

/// The pipeline stage a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Parser,
    Enricher,
    Router,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Parser, Stage::Enricher, Stage::Router];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Parser => "parser",
            Stage::Enricher => "enricher",
            Stage::Router => "router",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// What the stage does, as the `stage` label of the latency metric.
    pub fn verb(self) -> &'static str {
        match self {
            Stage::Parser => "parse",
            Stage::Enricher => "enrich",
            Stage::Router => "route",
        }
    }
}

enum Pre {
    Parser(ParserPre<HostState>),
    Enricher(EnricherPre<HostState>),
    Router(RouterPre<HostState>),
}

/// A compiled, linked plugin, ready to instantiate.
pub struct Plugin {
    name: String,
    pre: Pre,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The engine and linker shared by every plugin.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    /// Each tenant's log lines, over all its plugins' instances.
    log_budget: Arc<guest_output::LogBudget>,
}

impl Runtime {
    /// A runtime that compiles every component from scratch.
    pub fn new() -> Result<Runtime, RuntimeError> {
        Self::build(None)
    }

    /// A runtime that keeps compiled components in `dir`, keyed by their
    /// bytes and the engine's settings: a restart, or a reload of a version
    /// seen before, skips compilation (seconds for an 18 MB Python guest).
    pub fn with_cache(dir: &Path) -> Result<Runtime, RuntimeError> {
        Self::build(Some(dir))
    }

    fn build(cache_dir: Option<&Path>) -> Result<Runtime, RuntimeError> {
        let err = |e: wasmtime::Error| RuntimeError::Compile {
            plugin: "<engine>".into(),
            message: format!("{e:#}"),
        };
        let mut cfg = Config::new();
        cfg.epoch_interruption(true);
        cfg.wasm_component_model(true);
        if let Some(dir) = cache_dir {
            // wasmtime refuses a relative cache directory.
            let dir =
                std::path::absolute(dir).map_err(|e| err(wasmtime::Error::msg(format!("{}: {e}", dir.display()))))?;
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir);
            cfg.cache(Some(wasmtime::Cache::new(cache).map_err(err)?));
        }
        let engine = Engine::new(&cfg).map_err(err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(err)?;
        Parser::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(err)?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| RuntimeError::Compile {
                plugin: "<engine>".into(),
                message: e.to_string(),
            })?;
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            log_budget: Arc::default(),
        })
    }

    /// Compiles `wasm` as a component for `stage` and checks that it exports
    /// that stage's world.
    pub fn compile(&self, name: &str, stage: Stage, wasm: &[u8]) -> Result<Arc<Plugin>, RuntimeError> {
        let component = Component::new(&self.engine, wasm).map_err(|e| RuntimeError::Compile {
            plugin: name.to_string(),
            message: format!("{e:#}"),
        })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| RuntimeError::Link {
                plugin: name.to_string(),
                message: format!("{e:#}"),
            })?;
        let world = |e: wasmtime::Error| RuntimeError::WrongWorld {
            plugin: name.to_string(),
            stage: stage.as_str(),
            message: format!("{e:#}"),
        };
        let pre = match stage {
            Stage::Parser => Pre::Parser(ParserPre::new(pre).map_err(world)?),
            Stage::Enricher => Pre::Enricher(EnricherPre::new(pre).map_err(world)?),
            Stage::Router => Pre::Router(RouterPre::new(pre).map_err(world)?),
        };
        Ok(Arc::new(Plugin {
            name: name.to_string(),
            pre,
        }))
    }

    /// A fresh instance of `plugin` for `tenant`.
    pub async fn instantiate(
        &self,
        plugin: &Arc<Plugin>,
        tenant: &str,
        config: Arc<HashMap<String, String>>,
        limits: Limits,
    ) -> Result<Instance, RuntimeError> {
        let state = HostState {
            wasi: WasiCtx::builder()
                .stdout(guest_output::GuestOutput {
                    tenant: tenant.to_string(),
                    plugin: plugin.name.clone(),
                    stream: "stdout",
                    budget: self.log_budget.clone(),
                })
                .stderr(guest_output::GuestOutput {
                    tenant: tenant.to_string(),
                    plugin: plugin.name.clone(),
                    stream: "stderr",
                    budget: self.log_budget.clone(),
                })
                .build(),
            table: ResourceTable::new(),
            limits: InstanceLimiter::new(limits.memory_bytes),
            tenant: tenant.to_string(),
            plugin: plugin.name.clone(),
            config,
            ticks_left: limits.cpu_ticks,
            cpu_ticks: limits.cpu_ticks,
            log_budget: self.log_budget.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_callback(|mut ctx| {
            let s = ctx.data_mut();
            if s.ticks_left == 0 {
                let ms = u64::from(s.cpu_ticks) * EPOCH_TICK.as_millis() as u64;
                return Err(wasmtime::Error::msg(format!("cpu budget of {ms} ms exceeded")));
            }
            s.ticks_left -= 1;
            // Yield so the other tasks of this thread run while a long batch
            // is in the guest.
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);
        let err = |e: wasmtime::Error| RuntimeError::Instantiate {
            plugin: plugin.name.clone(),
            message: format!("{e:#}"),
        };
        let bindings = match &plugin.pre {
            Pre::Parser(p) => Bindings::Parser(p.instantiate_async(&mut store).await.map_err(err)?),
            Pre::Enricher(p) => Bindings::Enricher(p.instantiate_async(&mut store).await.map_err(err)?),
            Pre::Router(p) => Bindings::Router(p.instantiate_async(&mut store).await.map_err(err)?),
        };
        Ok(Instance {
            plugin: plugin.clone(),
            limits,
            store,
            bindings,
            poisoned: false,
        })
    }
}

enum Bindings {
    Parser(Parser),
    Enricher(Enricher),
    Router(Router),
}

/// Where one record goes, as a router said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub metadata: bool,
    pub raw: bool,
    pub index: bool,
}

/// A live instance of a plugin, owned by one worker.
pub struct Instance {
    plugin: Arc<Plugin>,
    limits: Limits,
    store: Store<HostState>,
    bindings: Bindings,
    /// A trap or timeout leaves the guest in an unknown state: the instance
    /// must be thrown away.
    poisoned: bool,
}

impl Instance {
    pub fn plugin(&self) -> &str {
        &self.plugin.name
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Bytes of memories and tables the instance holds now.
    pub fn memory_used(&self) -> usize {
        self.store.data().limits.used()
    }

    fn wrong_stage(&self) -> RuntimeError {
        RuntimeError::BadOutput {
            plugin: self.plugin.name.clone(),
            message: "called as the wrong stage".into(),
        }
    }

    /// Runs one guest call under the CPU budget and the wall-clock limit.
    async fn guarded<T>(
        &mut self,
        call: impl AsyncFnOnce(&mut Store<HostState>, &Bindings) -> wasmtime::Result<T>,
    ) -> Result<T, RuntimeError> {
        let state = self.store.data_mut();
        state.ticks_left = state.cpu_ticks;
        self.store.set_epoch_deadline(1);
        let plugin = self.plugin.name.clone();
        let timeout = self.limits.timeout;
        let result = tokio::time::timeout(timeout, call(&mut self.store, &self.bindings)).await;
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.poisoned = true;
                Err(RuntimeError::Trap {
                    plugin,
                    message: format!("{e:#}"),
                })
            }
            Err(_) => {
                self.poisoned = true;
                Err(RuntimeError::Timeout { plugin, timeout })
            }
        }
    }

    pub async fn parse(
        &mut self,
        content_type: &str,
        service: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, RuntimeError> {
        if !matches!(self.bindings, Bindings::Parser(_)) {
            return Err(self.wrong_stage());
        }
        let input = types::RawInput {
            content_type: content_type.to_string(),
            service: service.map(str::to_string),
            body: body.to_vec(),
        };
        let out = self
            .guarded(async |store, b| match b {
                Bindings::Parser(p) => p.call_parse(store, &input).await,
                _ => Err(wasmtime::Error::msg("not a parser")),
            })
            .await?;
        let out = out.map_err(|e| self.refused(e))?;
        let max_records = body.len() / PARSER_INPUT_BYTES_PER_RECORD + OUTPUT_RECORDS_SLACK;
        self.bounded(out, body.len(), max_records)
    }

    /// `out` if it is within the output bounds for `input_bytes` of input.
    fn bounded(&self, out: Vec<u8>, input_bytes: usize, max_records: usize) -> Result<Vec<u8>, RuntimeError> {
        let records = loggerhub_codec::batch_len(&out).unwrap_or(0);
        output_within(records, out.len(), input_bytes, max_records).map_err(|message| RuntimeError::BadOutput {
            plugin: self.plugin.name.clone(),
            message,
        })?;
        Ok(out)
    }

    // `&Vec`: the bindings lower a `list<u8>` from one; a slice would need a copy.
    #[allow(clippy::ptr_arg)]
    pub async fn enrich(&mut self, batch: &Vec<u8>) -> Result<Vec<u8>, RuntimeError> {
        if !matches!(self.bindings, Bindings::Enricher(_)) {
            return Err(self.wrong_stage());
        }
        let input_records = loggerhub_codec::batch_len(batch).unwrap_or(0);
        let out = self
            .guarded(async move |store, b| match b {
                Bindings::Enricher(p) => p.call_enrich(store, batch).await,
                _ => Err(wasmtime::Error::msg("not an enricher")),
            })
            .await?;
        let out = out.map_err(|e| self.refused(e))?;
        let max_records = input_records
            .saturating_mul(OUTPUT_RECORDS_PER_INPUT_RECORD)
            .saturating_add(OUTPUT_RECORDS_SLACK);
        self.bounded(out, batch.len(), max_records)
    }

    /// One route per record of `batch`, which holds `records` records.
    #[allow(clippy::ptr_arg)]
    pub async fn route(&mut self, batch: &Vec<u8>, records: usize) -> Result<Vec<Route>, RuntimeError> {
        if !matches!(self.bindings, Bindings::Router(_)) {
            return Err(self.wrong_stage());
        }
        let routes = self
            .guarded(async move |store, b| match b {
                Bindings::Router(p) => p.call_route(store, batch).await,
                _ => Err(wasmtime::Error::msg("not a router")),
            })
            .await?;
        if routes.len() != records {
            return Err(RuntimeError::BadOutput {
                plugin: self.plugin.name.clone(),
                message: format!("{} routes for {records} records", routes.len()),
            });
        }
        Ok(routes
            .into_iter()
            .map(|r| Route {
                metadata: r.destinations.contains(types::Destinations::METADATA),
                raw: r.destinations.contains(types::Destinations::RAW),
                index: r.destinations.contains(types::Destinations::INDEX),
            })
            .collect())
    }

    /// A plugin's refusal, its strings cut: they become a dead letter's
    /// reason, the plugin's disabled reason and log lines.
    fn refused(&self, e: types::PluginError) -> RuntimeError {
        RuntimeError::Refused {
            plugin: self.plugin.name.clone(),
            code: cut(&e.code, MAX_ERROR_CODE),
            message: cut(&e.message, MAX_ERROR_MESSAGE),
        }
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    /// Each bound fires alone, and says which it is.
    #[test]
    fn each_output_bound_holds_and_names_itself() {
        // A parser: one record per 8 bytes of body, plus the slack.
        let body = 800;
        let parser_max = body / PARSER_INPUT_BYTES_PER_RECORD + OUTPUT_RECORDS_SLACK;
        assert_eq!(parser_max, 116);
        assert!(output_within(parser_max, 1000, body, parser_max).is_ok());
        let e = output_within(parser_max + 1, 1000, body, parser_max).expect_err("records");
        assert!(e.contains("117 records") && e.contains("at most 116 records"), "{e}");
        // An enricher: twice its records, plus the slack.
        let enricher_max = 50 * OUTPUT_RECORDS_PER_INPUT_RECORD + OUTPUT_RECORDS_SLACK;
        assert!(output_within(enricher_max, 1000, body, enricher_max).is_ok());
        assert!(output_within(enricher_max + 1, 1000, body, enricher_max).is_err());
        // Bytes: four times the input, plus 64 KiB, whatever the records.
        let max_bytes = body * OUTPUT_BYTES_PER_INPUT_BYTE + OUTPUT_BYTES_SLACK;
        assert!(output_within(1, max_bytes, body, 10).is_ok());
        let e = output_within(1, max_bytes + 1, body, 10).expect_err("bytes");
        assert!(
            e.contains(&format!("at most {max_bytes} bytes")) && !e.contains("records"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod cut_tests {
    #[test]
    fn guest_strings_are_cut_on_characters() {
        assert_eq!(super::cut("short", 10), "short");
        assert_eq!(super::cut("ééééé", 3), "ééé…");
        assert_eq!(
            super::cut(&"m".repeat(1 << 20), super::MAX_ERROR_MESSAGE)
                .chars()
                .count(),
            super::MAX_ERROR_MESSAGE + 1
        );
    }
}
