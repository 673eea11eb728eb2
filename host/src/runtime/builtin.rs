//! The built-in plugins, compiled for wasm32-wasip2 by `build.rs` and
//! embedded in the binary: the default pipeline.

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
