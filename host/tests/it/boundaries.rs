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
    ("cpu", &[]),
    ("queue", &["model", "error", "config"]),
    ("telemetry", &["queue", "cpu"]),
    ("stores", &["model", "error", "config"]),
    ("search", &["model", "error", "config", "stores", "cpu"]),
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
            "cpu",
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
        &["config", "model", "ingest", "stores", "telemetry", "tenants", "cpu"],
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
            "cpu",
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

/// The "Module dependencies" table of docs/ARCHITECTURE.md, parsed: each
/// line names modules (`a, b`) and what they may use (`→ x, y (why)`, or
/// `← nothing`); `→ everything` marks the wiring modules the rules leave
/// out.
fn documented_layers(doc: &str) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let section = doc
        .split("## Module dependencies")
        .nth(1)
        .ok_or("docs/ARCHITECTURE.md has no \"Module dependencies\" section")?;
    let table = section
        .split("```")
        .nth(1)
        .ok_or("the section has no table in a code block")?;
    let mut out = BTreeMap::new();
    for line in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (names, deps) = if let Some((n, d)) = line.split_once('→') {
            (n, d.trim())
        } else if let Some((n, d)) = line.split_once('←') {
            if d.trim() != "nothing" {
                return Err(format!("{line:?}: `←` is only for `← nothing`"));
            }
            (n, "")
        } else {
            return Err(format!("{line:?} has no arrow"));
        };
        if deps == "everything" {
            continue;
        }
        // Drop the parenthesised reasons: "ingest (its rate buckets)".
        let mut plain = String::new();
        let mut depth = 0;
        for c in deps.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ if depth == 0 => plain.push(c),
                _ => {}
            }
        }
        let deps: BTreeSet<String> = plain
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
        for name in names.split(',').map(str::trim) {
            if out.insert(name.to_string(), deps.clone()).is_some() {
                return Err(format!("{name} is in the table twice"));
            }
        }
    }
    Ok(out)
}

/// docs/ARCHITECTURE.md's table says what the rules above enforce: the
/// same modules, each allowed the same modules.
#[test]
fn the_architecture_table_is_the_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("read ARCHITECTURE.md");
    let documented = documented_layers(&doc).unwrap_or_else(|e| panic!("{e}"));
    let rules: BTreeMap<String, BTreeSet<String>> = LAYERS
        .iter()
        .map(|(m, deps)| (m.to_string(), deps.iter().map(|d| d.to_string()).collect()))
        .collect();
    let table: Vec<String> = LAYERS
        .iter()
        .map(|(m, deps)| {
            if deps.is_empty() {
                format!("{m:<35}← nothing")
            } else {
                format!("{m:<35}→ {}", deps.join(", "))
            }
        })
        .collect();
    assert_eq!(
        documented,
        rules,
        "docs/ARCHITECTURE.md's module table differs from LAYERS in tests/it/boundaries.rs; the rules say:\n{}",
        table.join("\n")
    );
}

/// Files of one concept: none in host/src over 500 lines (issue 23: a long
/// file is one concept carrying its tests, never two).
#[test]
fn no_source_file_is_over_500_lines() {
    const MAX_LINES: usize = 500;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let long: Vec<String> = rust_files(&src)
        .into_iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(&f).expect("read source").lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.strip_prefix(&src).unwrap_or(&f).display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by concept: {long:?}");
}

#[test]
fn the_table_parser_reads_groups_reasons_and_nothing() {
    let doc = "x\n## Module dependencies\ntext\n```\nerror, model   ← nothing\npipeline → model, ingest (its rate buckets)\nserver → everything\n```\n";
    let got = documented_layers(doc).expect("parse");
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got["error"].is_empty() && got["model"].is_empty());
    assert_eq!(
        got["pipeline"],
        ["model", "ingest"]
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
    );
    assert!(documented_layers("## Module dependencies\n```\napi model\n```").is_err());
}
