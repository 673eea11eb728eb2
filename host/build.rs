//! Builds the built-in plugins (`plugins/*`) for wasm32-wasip2 and embeds
//! them in the binary.
//!
//! Stable cargo cannot build one workspace member for another target as a
//! dependency (`-Z bindeps` is nightly), so this runs a second cargo. It
//! uses its own target directory (sharing the outer one deadlocks on the
//! build lock) and drops the outer build's rustflags, which are meant for
//! the host target.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const PLUGINS: [(&str, &str); 4] = [
    ("JSON_PARSER", "json-parser"),
    ("LINE_PARSER", "line-parser"),
    ("DEFAULT_ENRICHER", "default-enricher"),
    ("DEFAULT_ROUTER", "default-router"),
];

/// Example plugins and test fixtures, built with the built-ins so tests can
/// upload them; only their paths are recorded, they are not embedded.
const EXAMPLES: [(&str, &str); 6] = [
    ("PII_REDACTOR", "lh-example-pii-redactor"),
    ("DEBUG_TO_RAW", "lh-example-debug-to-raw"),
    ("ACCESS_LOG_PARSER", "lh-example-access-log-parser"),
    ("HOSTILE_ENRICHER", "lh-fixture-hostile-enricher"),
    ("BAD_ROUTER", "lh-fixture-bad-router"),
    ("HOSTILE_PARSER", "lh-fixture-hostile-parser"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("workspace root").to_path_buf();
    for dir in [
        "wit",
        "plugins",
        "sdk-plugins",
        "examples/plugins",
        "host/tests/fixtures",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<pkg>/out: keep the guest build in
    // <target>/wasm-plugins so every host profile shares it.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map_or_else(|| out_dir.join("wasm-plugins"), |t| t.join("wasm-plugins"));

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--profile",
        "wasm",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(root.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir);
    for (_, crate_dir) in PLUGINS {
        cmd.args(["-p", &format!("lh-plugin-{crate_dir}")]);
    }
    for (_, crate_name) in EXAMPLES {
        cmd.args(["-p", crate_name]);
    }
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo for the wasm32-wasip2 plugins");
    assert!(
        status.success(),
        "building the built-in plugins failed; is the target installed? run: rustup target add wasm32-wasip2"
    );

    let wasm_dir = target_dir.join("wasm32-wasip2").join("wasm");
    let mut src = String::new();
    for (konst, crate_dir) in PLUGINS {
        let file = wasm_dir.join(format!("lh_plugin_{}.wasm", crate_dir.replace('-', "_")));
        assert!(Path::new(&file).exists(), "missing {}", file.display());
        writeln!(
            src,
            "/// The built-in `{crate_dir}` component.\npub const {konst}: &[u8] = include_bytes!({:?});",
            file.display().to_string()
        )
        .expect("write to string");
    }
    for (konst, crate_name) in EXAMPLES {
        let file = wasm_dir.join(format!("{}.wasm", crate_name.replace('-', "_")));
        assert!(Path::new(&file).exists(), "missing {}", file.display());
        writeln!(
            src,
            "/// Path of the `{crate_name}` example component (for tests).\npub const {konst}_PATH: &str = {:?};",
            file.display().to_string()
        )
        .expect("write to string");
    }
    std::fs::write(out_dir.join("builtin_plugins.rs"), src).expect("write builtin_plugins.rs");
}
