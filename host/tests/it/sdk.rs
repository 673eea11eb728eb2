//! The plugin author's path, as an author takes it: `loggerhub plugin new`,
//! `cargo test`, then a component built both with `cargo build --target
//! wasm32-wasip2` and with `cargo component build`; both validate, and the
//! one cargo-component made runs on a tenant. An example from the repo is
//! built with cargo-component too and must behave as the build.rs build.
//!
//! cargo-component comes from infra/local/tools.sh (`make test` runs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::Server;
use crate::common::private::tools_dir as tools;
use loggerhub::runtime::builtin;
use serde_json::{Value, json};

/// Where nested builds go: beside the project's target directory, so that
/// later runs reuse them.
fn build_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("sdk-builds")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `cargo <args>` in `dir`, cargo-component on the PATH; panics with
/// its output when it fails.
fn cargo(dir: &Path, args: &[&str]) {
    let cc_bin = tools().join("cargo-component/bin");
    assert!(
        cc_bin.join("cargo-component").exists(),
        "cargo-component is not installed in {}: run infra/local/tools.sh (make test does)",
        cc_bin.display()
    );
    let path = format!("{}:{}", cc_bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", build_dir())
        // The outer build's flags are for the host, not for wasm guests,
        // and its lints are for this workspace, not the author's project.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {args:?} in {} failed:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the loggerhub CLI; returns stdout, panics with stderr on failure.
fn loggerhub(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_loggerhub"))
        .args(args)
        .output()
        .expect("run loggerhub");
    assert!(
        out.status.success(),
        "loggerhub {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server whose tenant `acme` runs the default enricher, then the
/// component at `wasm` uploaded as `name` with `config`.
async fn tenant_with_enricher(data: &Path, wasm: &Path, name: &str, config: Value) -> (Server, String) {
    let s = Server::start(data, &[]).await;
    let key = s.tenant("acme").await;
    let (status, body) = s
        .put_plugin(&key, "enricher", name, std::fs::read(wasm).expect("component"))
        .await;
    assert_eq!(status, 201, "{body}");
    let pipeline = json!({"enrichers": ["default-enricher", name], "config": {name: config}});
    assert_eq!(s.put_pipeline(&key, &pipeline).await.0, 200);
    (s, key)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[tokio::test]
async fn a_new_plugin_builds_both_ways_and_runs_on_a_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("team-tagger");
    loggerhub(&[
        "plugin",
        "new",
        "team-tagger",
        "--stage",
        "enricher",
        "--dir",
        path_str(&project),
    ]);
    // The workspace's lock pins the SDK's dependencies to versions known to
    // build here.
    std::fs::copy(workspace().join("Cargo.lock"), project.join("Cargo.lock")).expect("lock");

    cargo(&project, &["test", "--quiet"]);
    cargo(&project, &["build", "--release", "--target", "wasm32-wasip2"]);
    cargo(&project, &["component", "build", "--release"]);
    let p2 = build_dir().join("wasm32-wasip2/release/team_tagger.wasm");
    let p1 = build_dir().join("wasm32-wasip1/release/team_tagger.wasm");
    for wasm in [&p2, &p1] {
        let said = loggerhub(&["plugin", "validate", "enricher", path_str(wasm)]);
        assert!(said.contains("a valid enricher plugin"), "{said}");
    }

    // The cargo-component build, uploaded and configured, tags live logs.
    let data = tempfile::tempdir().expect("data dir");
    let (s, key) = tenant_with_enricher(data.path(), &p1, "team-tagger", json!({"team": "payments"})).await;
    let (status, _) = s
        .post_logs(
            &key,
            "application/json",
            json!({"message": "card declined"}).to_string(),
        )
        .await;
    assert_eq!(status, 202);
    s.drained(1).await;
    let (_, page) = s.get(&key, "/v1/logs").await;
    assert_eq!(page["hits"][0]["attributes"]["team"], "payments", "{page}");
}

#[test]
fn an_example_built_with_cargo_component_behaves_as_the_wasip2_build() {
    let example = workspace().join("examples/plugins/pii-redactor");
    cargo(&example, &["component", "build", "--release"]);
    let p1 = build_dir().join("wasm32-wasip1/release/lh_example_pii_redactor.wasm");
    let input = tempfile::NamedTempFile::with_suffix(".ndjson").expect("input");
    std::fs::write(
        input.path(),
        json!({"message": "mail ann@example.com from 10.1.2.3, card 4111 1111 1111 1111"}).to_string(),
    )
    .expect("write input");
    let run = |wasm: &str| {
        loggerhub(&[
            "plugin",
            "test",
            "--stage",
            "enricher",
            wasm,
            "--input",
            path_str(input.path()),
        ])
    };
    let via_component = run(path_str(&p1));
    assert!(
        !via_component.contains("ann@example.com") && !via_component.contains("4111"),
        "{via_component}"
    );
    assert_eq!(via_component, run(builtin::PII_REDACTOR_PATH));
}

/// The Python example, built by componentize-py from `wit/` and the Python
/// SDK: the contract is not Rust's alone.
#[tokio::test]
async fn a_python_plugin_built_with_componentize_py_runs_on_a_tenant() {
    let componentize = tools().join("python/bin/componentize-py");
    assert!(
        componentize.exists(),
        "componentize-py is not installed in {}: run infra/local/tools.sh (make test does)",
        tools().display()
    );
    let ws = workspace();
    // The logic and the SDK's codec, natively first.
    let out = Command::new("python3")
        .args(["-m", "unittest", "--quiet"])
        .current_dir(ws.join("examples/plugins/python-tagger"))
        .env("PYTHONPATH", ws.join("sdk-plugins/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    std::fs::create_dir_all(build_dir()).expect("build dir");
    let wasm = build_dir().join("python-tagger.wasm");
    let out = Command::new(&componentize)
        .arg("--wit-path")
        .arg(ws.join("wit"))
        .args(["--world", "enricher", "componentize", "app", "--python-path"])
        .arg(ws.join("examples/plugins/python-tagger"))
        .arg("--python-path")
        .arg(ws.join("sdk-plugins/python"))
        .arg("--output")
        .arg(&wasm)
        .output()
        .expect("run componentize-py");
    assert!(
        out.status.success(),
        "componentize-py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let data = tempfile::tempdir().expect("data dir");
    let (s, key) = tenant_with_enricher(
        data.path(),
        &wasm,
        "tagger",
        json!({"rules": "timeout=network,quota=billing"}),
    )
    .await;
    let lines = [
        json!({"message": "upstream timeout after 30 s", "level": "info", "attributes": {"zone": "é-1"}}),
        json!({"message": "payment failed: quota", "level": "debug", "language": "python"}),
        json!({"message": "all good", "level": "error"}),
    ];
    let body: Vec<String> = lines.iter().map(Value::to_string).collect();
    let (status, _) = s.post_logs(&key, "application/x-ndjson", body.join("\n")).await;
    assert_eq!(status, 202);
    s.drained(3).await;
    let (_, page) = s.get(&key, "/v1/logs").await;
    let by_message = |m: &str| {
        page["hits"]
            .as_array()
            .and_then(|h| h.iter().find(|r| r["message"] == m))
            .cloned()
            .unwrap_or_else(|| panic!("{m:?} not stored: {page}"))
    };
    let timeout = by_message("upstream timeout after 30 s");
    assert_eq!(timeout["attributes"]["category"], "network");
    assert_eq!(
        timeout["attributes"]["zone"], "é-1",
        "non-ASCII survives the Python codec"
    );
    assert_eq!(timeout["level"], "INFO");
    let failed = by_message("payment failed: quota");
    assert_eq!(failed["attributes"]["category"], "billing");
    assert_eq!(failed["level"], "WARN", "escalated by the plugin");
    let good = by_message("all good");
    assert_eq!(good["attributes"]["tagged_by"], "python");
    assert!(good["attributes"].get("category").is_none());
    // The compiled component is kept, so a restart does not compile again.
    let cached = walk_files(&data.path().join("compiled"));
    assert!(cached > 0, "nothing in the compilation cache");
}

fn walk_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| if e.path().is_dir() { walk_files(&e.path()) } else { 1 })
        .sum()
}
