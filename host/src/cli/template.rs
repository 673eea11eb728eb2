//! `loggerhub plugin new`: starts a plugin project from the template in
//! `sdk-plugins/template/`, compiled into the binary so that it works
//! from any directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use loggerhub::runtime::Stage;

const CARGO_TOML: &str = include_str!("../../../sdk-plugins/template/Cargo.toml.tmpl");
const README: &str = include_str!("../../../sdk-plugins/template/README.md.tmpl");
const PARSER: &str = include_str!("../../../sdk-plugins/template/parser.rs.tmpl");
const ENRICHER: &str = include_str!("../../../sdk-plugins/template/enricher.rs.tmpl");
const ROUTER: &str = include_str!("../../../sdk-plugins/template/router.rs.tmpl");
const SAMPLE_NDJSON: &str = include_str!("../../../sdk-plugins/template/sample.ndjson");
const SAMPLE_LOG: &str = include_str!("../../../sdk-plugins/template/sample.log");
/// The plugin contract: the export macros generate bindings from `wit/`.
const WIT: &str = include_str!("../../../wit/plugin.wit");

/// Where the SDK is when this binary runs from a LoggerHub checkout.
fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-plugins")
}

/// The files of a new plugin named `name` for `stage`, as (relative path,
/// contents). `sdk` is the SDK crate's directory.
pub fn render(name: &str, stage: Stage, sdk: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!("plugin name {name:?}: use lowercase letters, digits and '-', starting with a letter");
    }
    let sdk = sdk
        .canonicalize()
        .with_context(|| format!("no SDK at {} (pass --sdk DIR)", sdk.display()))?;
    let (code, sample) = match stage {
        Stage::Parser => (PARSER, "sample.log"),
        Stage::Enricher => (ENRICHER, "sample.ndjson"),
        Stage::Router => (ROUTER, "sample.ndjson"),
    };
    // TOML basic strings take the path with backslashes and quotes escaped.
    let sdk_dep = format!("path = {:?}", sdk.display().to_string());
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{crate_name}}", &name.replace('-', "_"))
            .replace("{{stage}}", stage.as_str())
            .replace("{{sample}}", sample)
            .replace("{{sdk_dep}}", &sdk_dep)
    };
    Ok(vec![
        ("Cargo.toml".into(), fill(CARGO_TOML)),
        ("README.md".into(), fill(README)),
        ("src/lib.rs".into(), fill(code)),
        ("wit/plugin.wit".into(), WIT.to_string()),
        ("sample.ndjson".into(), SAMPLE_NDJSON.to_string()),
        ("sample.log".into(), SAMPLE_LOG.to_string()),
        (".gitignore".into(), "/target\n/src/bindings.rs\n".to_string()),
    ])
}

/// Writes a new plugin project into `dir` (which must not exist yet).
pub fn create(name: &str, stage: Stage, dir: &Path, sdk: Option<&Path>) -> anyhow::Result<()> {
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let files = render(name, stage, sdk.map_or_else(default_sdk, Path::to_path_buf).as_path())?;
    for (rel, contents) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_stage_with_no_placeholder_left() {
        for stage in Stage::ALL {
            let files = render("my-plugin", stage, &default_sdk()).expect("render");
            for (path, text) in &files {
                assert!(!text.contains("{{"), "{} keeps a placeholder", path.display());
            }
            let lib = &files.iter().find(|(p, _)| p.ends_with("src/lib.rs")).expect("lib").1;
            assert!(lib.contains(&format!("export_{}!(Plugin)", stage.as_str())), "{lib}");
            let manifest = &files.iter().find(|(p, _)| p.ends_with("Cargo.toml")).expect("toml").1;
            assert!(manifest.contains("name = \"my-plugin\"") && manifest.contains("path = \"/"));
        }
    }

    #[test]
    fn refuses_bad_names_and_existing_directories() {
        for bad in ["", "My", "1st", "a b", "a/b"] {
            assert!(render(bad, Stage::Enricher, &default_sdk()).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(create("ok", Stage::Router, dir.path(), None).is_err());
    }
}
