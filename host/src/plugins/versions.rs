//! The plugin tree on disk, under `<data>/plugins/<tenant>/`:
//! - `<stage>/<name>/<version>.wasm` — every uploaded version, kept;
//! - `<stage>/<name>/active` — the version in use;
//! - `pipeline.json` — the tenant's pipeline (`PipelineSpec`).
//!
//! Every path is built from a checked tenant slug, a `Stage` and a
//! `PluginName`, so none leaves the tenant's folder. Files are replaced
//! atomically (write, then rename): hot reload and the shared store never
//! see half a file.

use std::path::{Path, PathBuf};

use super::names::PluginName;
use super::{PipelineSpec, RegistryError};
use crate::runtime::Stage;

pub struct Tree {
    root: PathBuf,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

impl Tree {
    pub fn new(root: PathBuf) -> std::io::Result<Tree> {
        std::fs::create_dir_all(&root)?;
        Ok(Tree { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn plugin_dir(&self, tenant: &str, stage: Stage, name: &PluginName) -> PathBuf {
        self.root.join(tenant).join(stage.as_str()).join(name.as_str())
    }

    pub fn version_path(&self, tenant: &str, stage: Stage, name: &PluginName, version: u32) -> PathBuf {
        self.plugin_dir(tenant, stage, name).join(format!("{version}.wasm"))
    }

    /// The stored versions, oldest first.
    pub fn versions(&self, tenant: &str, stage: Stage, name: &PluginName) -> Vec<u32> {
        let mut v: Vec<u32> = std::fs::read_dir(self.plugin_dir(tenant, stage, name))
            .into_iter()
            .flatten()
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .into_string()
                    .ok()?
                    .strip_suffix(".wasm")?
                    .parse()
                    .ok()
            })
            .collect();
        v.sort_unstable();
        v
    }

    pub fn active(&self, tenant: &str, stage: Stage, name: &PluginName) -> Option<u32> {
        std::fs::read_to_string(self.plugin_dir(tenant, stage, name).join("active"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stores `wasm` as the next version and makes it active.
    pub fn add_version(&self, tenant: &str, stage: Stage, name: &PluginName, wasm: &[u8]) -> std::io::Result<u32> {
        let dir = self.plugin_dir(tenant, stage, name);
        std::fs::create_dir_all(&dir)?;
        let version = self.versions(tenant, stage, name).last().map_or(1, |v| v + 1);
        write_atomic(&dir.join(format!("{version}.wasm")), wasm)?;
        self.set_active(tenant, stage, name, version)?;
        Ok(version)
    }

    pub fn set_active(&self, tenant: &str, stage: Stage, name: &PluginName, version: u32) -> std::io::Result<()> {
        write_atomic(
            &self.plugin_dir(tenant, stage, name).join("active"),
            version.to_string().as_bytes(),
        )
    }

    /// Removes a plugin with every version.
    pub fn remove(&self, tenant: &str, stage: Stage, name: &PluginName) -> std::io::Result<()> {
        std::fs::remove_dir_all(self.plugin_dir(tenant, stage, name))
    }

    /// The tenant's plugins of `stage`, by name; entries that are not
    /// plugin names (left by hand) are skipped.
    pub fn names(&self, tenant: &str, stage: Stage) -> Vec<PluginName> {
        let mut names: Vec<PluginName> = std::fs::read_dir(self.root.join(tenant).join(stage.as_str()))
            .into_iter()
            .flatten()
            .filter_map(|e| PluginName::parse(&e.ok()?.file_name().into_string().ok()?).ok())
            .collect();
        names.sort();
        names
    }

    /// The tenant's pipeline; the default one until it sets its own.
    pub fn pipeline(&self, tenant: &str) -> Result<PipelineSpec, RegistryError> {
        match std::fs::read(self.root.join(tenant).join("pipeline.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| RegistryError::BadPipeline(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PipelineSpec::default()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn set_pipeline(&self, tenant: &str, spec: &PipelineSpec) -> Result<(), RegistryError> {
        let dir = self.root.join(tenant);
        std::fs::create_dir_all(&dir)?;
        let json = serde_json::to_vec_pretty(spec).map_err(|e| RegistryError::BadPipeline(e.to_string()))?;
        write_atomic(&dir.join("pipeline.json"), &json)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_active_and_removal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = Tree::new(dir.path().join("plugins")).expect("tree");
        let pii = PluginName::parse("pii").expect("name");
        assert_eq!(tree.active("acme", Stage::Enricher, &pii), None);
        assert_eq!(tree.add_version("acme", Stage::Enricher, &pii, b"v1").expect("add"), 1);
        assert_eq!(tree.add_version("acme", Stage::Enricher, &pii, b"v2").expect("add"), 2);
        assert_eq!(tree.versions("acme", Stage::Enricher, &pii), vec![1, 2]);
        assert_eq!(tree.active("acme", Stage::Enricher, &pii), Some(2));
        tree.set_active("acme", Stage::Enricher, &pii, 1).expect("rollback");
        assert_eq!(tree.active("acme", Stage::Enricher, &pii), Some(1));
        assert_eq!(
            std::fs::read(tree.version_path("acme", Stage::Enricher, &pii, 2)).expect("read"),
            b"v2"
        );
        // Another tenant and another stage see nothing of it.
        assert_eq!(tree.active("beta", Stage::Enricher, &pii), None);
        assert!(tree.names("acme", Stage::Router).is_empty());
        std::fs::create_dir_all(dir.path().join("plugins/acme/enricher/Not A Name")).expect("mkdir");
        assert_eq!(tree.names("acme", Stage::Enricher), vec![pii.clone()]);
        tree.remove("acme", Stage::Enricher, &pii).expect("remove");
        assert!(tree.versions("acme", Stage::Enricher, &pii).is_empty());
    }

    #[test]
    fn pipeline_defaults_until_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = Tree::new(dir.path().to_path_buf()).expect("tree");
        assert_eq!(tree.pipeline("acme").expect("default"), PipelineSpec::default());
        let spec = PipelineSpec {
            enrichers: vec![],
            ..PipelineSpec::default()
        };
        tree.set_pipeline("acme", &spec).expect("set");
        assert_eq!(tree.pipeline("acme").expect("read"), spec);
        std::fs::write(dir.path().join("acme/pipeline.json"), b"{not json").expect("write");
        assert!(matches!(tree.pipeline("acme"), Err(RegistryError::BadPipeline(_))));
    }
}
