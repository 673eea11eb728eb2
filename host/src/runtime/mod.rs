//! The WebAssembly runtime: the only module that knows wasmtime.
//!
//! One `Engine` per process; each plugin is compiled once into a
//! `Component` and pre-linked (`*Pre`), and each tenant gets its own
//! instances, reused batch after batch. Guests get WASI with nothing
//! granted (no files, env, sockets, clocks beyond the defaults), a memory
//! cap, a CPU budget counted in epoch ticks, and a wall-clock timeout.
//!
//! Here the engine and the linker (`Runtime`, `Runtime::compile`) and what
//! the host grants a guest (`HostState`); `instance` runs a plugin's calls,
//! `limits` bounds them.

mod bindings;
pub mod builtin;
mod guest_output;
mod instance;
mod limiter;
mod limits;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use bindings::enricher::EnricherPre;
use bindings::parser::{Parser, ParserPre};
use bindings::router::RouterPre;
use bindings::types;
use limiter::InstanceLimiter;
use limits::cut;

pub use instance::{Instance, Route};
pub use limits::{
    CALL_TIMEOUT, CPU_BUDGET_TICKS, EPOCH_TICK, LIMIT_MAX_CPU_TICKS, LIMIT_MAX_MEMORY, LIMIT_MAX_TIMEOUT, Limits,
    MAX_ERROR_CODE, MAX_ERROR_MESSAGE, MAX_INSTANCE_MEMORY, OUTPUT_BYTES_PER_INPUT_BYTE, OUTPUT_BYTES_SLACK,
    OUTPUT_RECORDS_PER_INPUT_RECORD, OUTPUT_RECORDS_SLACK, PARSER_INPUT_BYTES_PER_RECORD,
};

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
}
