//! A live instance of a plugin (`Instance`): made by
//! `Runtime::instantiate` with its own host state, then called batch after
//! batch under its CPU budget and wall-clock limit, each answer held to its
//! output bounds.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;

use super::bindings::enricher::Enricher;
use super::bindings::parser::Parser;
use super::bindings::router::Router;
use super::bindings::types;
use super::limiter::InstanceLimiter;
use super::limits::{
    EPOCH_TICK, Limits, MAX_ERROR_CODE, MAX_ERROR_MESSAGE, OUTPUT_RECORDS_PER_INPUT_RECORD, OUTPUT_RECORDS_SLACK,
    PARSER_INPUT_BYTES_PER_RECORD, cut, output_within,
};
use super::{HostState, Plugin, Pre, Runtime, RuntimeError, guest_output};

impl Runtime {
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
