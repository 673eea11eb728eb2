//! Host bindings of the `loggerhub:plugin` worlds. The only `bindgen!` in
//! the project; the enricher and router reuse the parser's `types` and
//! `host` modules so the host interface is implemented once.

pub mod parser {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "parser",
        exports: { default: async },
    });
}

pub mod enricher {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "enricher",
        exports: { default: async },
        with: {
            "loggerhub:plugin/types": super::parser::loggerhub::plugin::types,
            "loggerhub:plugin/host": super::parser::loggerhub::plugin::host,
        },
    });
}

pub mod router {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "router",
        exports: { default: async },
        with: {
            "loggerhub:plugin/types": super::parser::loggerhub::plugin::types,
            "loggerhub:plugin/host": super::parser::loggerhub::plugin::host,
        },
    });
}

pub use parser::loggerhub::plugin::host;
pub use parser::loggerhub::plugin::types;
