//! Write LoggerHub pipeline plugins in Rust.
//!
//! A plugin is a WebAssembly component for one stage of the WIT package
//! `loggerhub:plugin` (`wit/plugin.wit`): a parser turns a raw body into
//! records, an enricher rewrites a batch, a router says where each record
//! goes. Implement the stage's trait on a type and export it with the
//! stage's macro:
//!
//! ```text
//! use loggerhub_plugin_sdk::{Enricher, Host, PluginError, Record};
//!
//! struct AddRegion;
//!
//! impl Enricher for AddRegion {
//!     fn enrich<'a>(mut batch: Vec<Record<'a>>, host: &dyn Host) -> Result<Vec<Record<'a>>, PluginError> {
//!         let region = host.config("region").unwrap_or_else(|| "eu".into());
//!         for r in &mut batch {
//!             r.set_attr("region", region.clone());
//!         }
//!         Ok(batch)
//!     }
//! }
//!
//! loggerhub_plugin_sdk::export_enricher!(AddRegion);
//! ```
//!
//! The macros generate the component bindings from the WIT files in the
//! plugin crate's `wit/` folder (override with `wit = "path"`), so a plugin
//! builds with `cargo build --target wasm32-wasip2` or `cargo component
//! build`. The batch encoding that crosses the boundary stays hidden: plugins
//! see `Vec<Record>`, whose strings borrow from the batch until changed.
//! [`testing`] runs the same logic natively in unit tests.

pub use loggerhub_codec::{AttrValue, DecodeError, Level, time};

/// A log record as a plugin sees it. Its strings are `Cow<str>`: they
/// borrow from the batch the host sent until the plugin changes them, so a
/// stage pays only for what it rewrites. Read them as `&str` (`r.message
/// .contains(..)`), assign owned or static strings with `.into()`.
pub use loggerhub_codec::RecordRef as Record;
pub use std::borrow::Cow;

#[doc(hidden)]
pub use loggerhub_codec as codec;
#[doc(hidden)]
pub use wit_bindgen;

pub mod testing;

// Guests spend much of a small stage in the allocator; talc is several times
// faster than the default wasm allocator (dlmalloc). Single-threaded wasm only.
#[cfg(all(feature = "talc", target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// What the host offers a plugin.
pub trait Host {
    /// Writes to the host's log, tagged with tenant and plugin.
    fn log(&self, level: Level, message: &str);
    /// The plugin's configuration value for `key`.
    fn config(&self, key: &str) -> Option<String>;
}

/// Why a stage refused a batch: a stable snake_case `code` and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub code: String,
    pub message: String,
}

impl PluginError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A body as the client sent it.
#[derive(Debug, Clone, Copy)]
pub struct RawInput<'a> {
    pub content_type: &'a str,
    /// The service named by the request, if any (`?service=` or header).
    pub service: Option<&'a str>,
    pub body: &'a [u8],
}

/// Where one record goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub metadata: bool,
    pub raw: bool,
    pub index: bool,
    /// Reserved for routing into a named sub-index.
    pub index_suffix: Option<String>,
}

impl Route {
    /// Every store.
    pub fn all() -> Self {
        Self {
            metadata: true,
            raw: true,
            index: true,
            index_suffix: None,
        }
    }

    /// Only the raw store.
    pub fn raw_only() -> Self {
        Self {
            metadata: false,
            raw: true,
            index: false,
            index_suffix: None,
        }
    }
}

/// The parse stage. Records may borrow from the input body.
pub trait Parser {
    fn parse<'a>(input: RawInput<'a>, host: &dyn Host) -> Result<Vec<Record<'a>>, PluginError>;
}

/// The enrich stage. Records borrow from the batch the host sent; the ones
/// returned may keep borrowing.
pub trait Enricher {
    fn enrich<'a>(batch: Vec<Record<'a>>, host: &dyn Host) -> Result<Vec<Record<'a>>, PluginError>;
}

/// The route stage: exactly one route per record, in order.
pub trait Router {
    fn route(batch: &[Record<'_>], host: &dyn Host) -> Vec<Route>;
}

/// Glue the export macros call; not part of the API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn decode(batch: &[u8]) -> Result<Vec<Record<'_>>, PluginError> {
        codec::decode_ref(batch).map_err(|e| PluginError::new("bad_batch", e.to_string()))
    }

    pub fn parse<P: Parser>(
        content_type: &str,
        service: Option<&str>,
        body: &[u8],
        host: &dyn Host,
    ) -> Result<Vec<u8>, PluginError> {
        let input = RawInput {
            content_type,
            service,
            body,
        };
        P::parse(input, host).map(|records| codec::encode(&records))
    }

    pub fn enrich<E: Enricher>(batch: &[u8], host: &dyn Host) -> Result<Vec<u8>, PluginError> {
        let records = decode(batch)?;
        E::enrich(records, host).map(|out| codec::encode(&out))
    }

    pub fn route<R: Router>(batch: &[u8], host: &dyn Host) -> Vec<Route> {
        match decode(batch) {
            Ok(records) => R::route(&records, host),
            // The host checks the route count; an empty answer fails the
            // batch there with a clear reason.
            Err(e) => {
                host.log(Level::Error, &e.message);
                Vec::new()
            }
        }
    }
}

/// Generates the component bindings and the `Host` implementation shared by
/// the stage macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __loggerhub_bindings {
    ($wit:literal, $world:literal) => {
        $crate::wit_bindgen::generate!({
            path: $wit,
            world: $world,
            runtime_path: "::loggerhub_plugin_sdk::wit_bindgen::rt",
        });

        struct HostImpl;

        impl $crate::Host for HostImpl {
            fn log(&self, level: $crate::Level, message: &str) {
                use loggerhub::plugin::types::Level as L;
                let level = match level {
                    $crate::Level::Trace => L::Trace,
                    $crate::Level::Debug => L::Debug,
                    $crate::Level::Info => L::Info,
                    $crate::Level::Warn => L::Warn,
                    $crate::Level::Error => L::Error,
                    $crate::Level::Fatal => L::Fatal,
                };
                loggerhub::plugin::host::log(level, message);
            }

            fn config(&self, key: &str) -> Option<String> {
                loggerhub::plugin::host::config(key)
            }
        }
    };
}

/// Exports a [`Parser`] as the component's `parse` function.
#[macro_export]
macro_rules! export_parser {
    ($ty:ty) => {
        $crate::export_parser!($ty, wit = "wit");
    };
    ($ty:ty, wit = $wit:literal) => {
        type __LoggerhubParser = $ty;
        #[doc(hidden)]
        mod __loggerhub_parser {
            $crate::__loggerhub_bindings!($wit, "loggerhub:plugin/parser");

            struct Export;

            impl Guest for Export {
                fn parse(input: RawInput) -> Result<Batch, PluginError> {
                    $crate::__private::parse::<super::__LoggerhubParser>(
                        &input.content_type,
                        input.service.as_deref(),
                        &input.body,
                        &HostImpl,
                    )
                    .map_err(|e| PluginError {
                        code: e.code,
                        message: e.message,
                    })
                }
            }

            export!(Export);
        }
    };
}

/// Exports an [`Enricher`] as the component's `enrich` function.
#[macro_export]
macro_rules! export_enricher {
    ($ty:ty) => {
        $crate::export_enricher!($ty, wit = "wit");
    };
    ($ty:ty, wit = $wit:literal) => {
        type __LoggerhubEnricher = $ty;
        #[doc(hidden)]
        mod __loggerhub_enricher {
            $crate::__loggerhub_bindings!($wit, "loggerhub:plugin/enricher");

            struct Export;

            impl Guest for Export {
                fn enrich(batch: Batch) -> Result<Batch, PluginError> {
                    $crate::__private::enrich::<super::__LoggerhubEnricher>(&batch, &HostImpl).map_err(|e| {
                        PluginError {
                            code: e.code,
                            message: e.message,
                        }
                    })
                }
            }

            export!(Export);
        }
    };
}

/// Exports a [`Router`] as the component's `route` function.
#[macro_export]
macro_rules! export_router {
    ($ty:ty) => {
        $crate::export_router!($ty, wit = "wit");
    };
    ($ty:ty, wit = $wit:literal) => {
        type __LoggerhubRouter = $ty;
        #[doc(hidden)]
        mod __loggerhub_router {
            $crate::__loggerhub_bindings!($wit, "loggerhub:plugin/router");

            struct Export;

            impl Guest for Export {
                fn route(batch: Batch) -> Vec<Route> {
                    $crate::__private::route::<super::__LoggerhubRouter>(&batch, &HostImpl)
                        .into_iter()
                        .map(|r| {
                            let mut d = Destinations::empty();
                            d.set(Destinations::METADATA, r.metadata);
                            d.set(Destinations::RAW, r.raw);
                            d.set(Destinations::INDEX, r.index);
                            Route {
                                destinations: d,
                                index_suffix: r.index_suffix,
                            }
                        })
                        .collect()
                }
            }

            export!(Export);
        }
    };
}
