//! The module boundaries docs/ARCHITECTURE.md states, checked on the
//! source: which modules may use which library, which module may depend on
//! which, and no import circles. A new dependency that breaks a boundary
//! fails here; change the rule (and the docs) only on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Libraries only some modules may know: (crate, modules allowed).
const LIBRARIES: &[(&str, &[&str])] = &[
    ("wasmtime", &["runtime"]),
    ("wasmtime_wasi", &["runtime"]),
    ("axum", &["api"]),
    ("utoipa_axum", &["api"]),
    // The pipeline and the plans are their own JSON bodies: their schemas
    // are derived where they are declared.
    ("utoipa", &["api", "plugins::spec", "tenants::plans"]),
    (
        "sqlx",
        &["stores::sql", "stores::accounts", "stores::sqlite", "stores::postgres"],
    ),
    ("tantivy", &["search::tantivy"]),
    ("opensearch", &["search::opensearch"]),
    ("redis", &["queue::redis", "ingest::rate::shared"]),
    ("object_store", &["stores::raw", "stores::blobs"]),
    ("notify", &["plugins::hot_reload"]),
    ("anyhow", &["server", "main", "cli", "bin"]),
];

/// Which top-level modules each module may use (`crate::<module>`).
/// Vocabulary first (model, error, config), backends next, services on
/// top; `server` wires everything.
const LAYERS: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("error", &[]),
    ("config", &["model"]),
    ("runtime", &[]),
    ("queue", &["model", "error", "config"]),
    ("telemetry", &["queue"]),
    ("stores", &["model", "error", "config"]),
    ("search", &["model", "error", "config", "stores"]),
    ("tenants", &["model", "error", "stores"]),
    ("usage", &["model", "error", "stores", "telemetry"]),
    ("ingest", &["model", "error", "queue", "telemetry", "usage"]),
    ("plugins", &["model", "error", "config", "runtime", "stores"]),
    (
        "pipeline",
        &[
            "model",
            "error",
            "config",
            "queue",
            "ingest",
            "plugins",
            "runtime",
            "search",
            "stores",
            "telemetry",
            "tenants",
            "usage",
        ],
    ),
    (
        "upkeep",
        &[
            "model",
            "error",
            // A deleted tenant's rate buckets go with it.
            "ingest",
            "queue",
            "plugins",
            "pipeline",
            "search",
            "stores",
            "telemetry",
            "tenants",
            "usage",
        ],
    ),
    (
        "syslog",
        &["config", "model", "ingest", "stores", "telemetry", "tenants"],
    ),
    (
        "api",
        &[
            "model",
            "error",
            "config",
            "queue",
            "plugins",
            "pipeline",
            "runtime",
            "search",
            "stores",
            "telemetry",
            "tenants",
            "ingest",
            "usage",
        ],
    ),
];

/// `host/src/stores/sqlite.rs` → `stores::sqlite`; `main.rs`, `cli/…` and
/// `bin/…` are the binaries' edges.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read source dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without comments (line and doc comments; the source
/// has no block comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `code` names the crate `name` as a path root: `name::` not
/// preceded by `::` or an identifier character.
fn uses_crate(code: &str, name: &str) -> bool {
    let pat = format!("{name}::");
    code.match_indices(&pat).any(|(i, _)| {
        let before = &code[..i];
        !(before.ends_with("::") || before.chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_'))
    }) || code.contains(&format!("use {name};"))
}

/// The top-level modules `code` reaches through `crate::`.
fn crate_deps(code: &str) -> BTreeSet<String> {
    let mut deps = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            for item in inner.split(',') {
                let root = item.trim().split("::").next().unwrap_or("").trim();
                if !root.is_empty() {
                    deps.insert(root.to_string());
                }
            }
        } else {
            let root: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !root.is_empty() {
                deps.insert(root);
            }
        }
    }
    deps
}

/// Every breach of the rules in the source under `src`.
fn breaches(src: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let module = module_of(src, &file);
        let top = module.split("::").next().unwrap_or("").to_string();
        let code = code(&std::fs::read_to_string(&file).expect("read source"));
        for (lib, allowed) in LIBRARIES {
            let ok = allowed
                .iter()
                .any(|a| module == *a || module.starts_with(&format!("{a}::")));
            if !ok && uses_crate(&code, lib) {
                out.push(format!("{module} uses {lib}, which only {allowed:?} may"));
            }
        }
        let Some((_, allowed)) = LAYERS.iter().find(|(m, _)| *m == top) else {
            continue;
        };
        for dep in crate_deps(&code) {
            if dep == top {
                continue;
            }
            if !allowed.contains(&dep.as_str()) {
                out.push(format!("{module} depends on crate::{dep}, which {top} may not"));
            }
            graph.entry(top.clone()).or_default().insert(dep);
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        out.push(format!("import circle: {}", cycle.join(" → ")));
    }
    out
}

/// A cycle of the graph, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for next in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn module_boundaries_hold() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = breaches(&src);
    assert!(found.is_empty(), "module boundaries broken:\n  {}", found.join("\n  "));
    // Every layer the rules name is a module that exists.
    for (m, _) in LAYERS {
        assert!(
            src.join(format!("{m}.rs")).exists() || src.join(m).join("mod.rs").exists(),
            "no module {m}"
        );
    }
}

/// The checker itself finds each kind of breach.
#[test]
fn the_checker_catches_breaches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "stores/mod.rs",
        "use crate::model::LogRecord;\n// axum:: in a comment is fine\n",
    );
    write("model.rs", "pub struct LogRecord;\n");
    assert!(breaches(src).is_empty(), "{:?}", breaches(src));
    write(
        "stores/postgres.rs",
        "use crate::tenants::valid_slug;\nuse axum::Router;\n",
    );
    write("tenants/mod.rs", "use crate::{model, stores::MetadataStore};\n");
    write("ingest/mod.rs", "fn f() { let _ = crate::pipeline::ids::record_id; }\n");
    write(
        "pipeline/mod.rs",
        "use sqlx::Row;\nuse crate::ingest::Ingest;\nuse crate::api::AppState;\n",
    );
    write("search/opensearch.rs", "fn f() { crate::search::opensearch::x(); }\n");
    let found = breaches(src);
    for expected in [
        "stores::postgres depends on crate::tenants",
        "stores::postgres uses axum",
        "ingest depends on crate::pipeline",
        "pipeline uses sqlx",
        "pipeline depends on crate::api",
        "import circle",
    ] {
        assert!(
            found.iter().any(|f| f.contains(expected)),
            "{expected} not in {found:?}"
        );
    }
    assert!(
        !found.iter().any(|f| f.contains("search::opensearch uses opensearch")),
        "{found:?}"
    );
}
