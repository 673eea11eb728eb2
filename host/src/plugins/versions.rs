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
use crate::model::Slug;
use crate::runtime::Stage;

/// A plugin's folder, `<tenant>/<stage>/<name>`, relative to the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PluginDir {
    pub tenant: Slug,
    pub stage: Stage,
    pub name: PluginName,
}

/// A file of the tree, relative to its root. Paths that come from outside
/// the process (objects of the shared plugin store) are parsed into one, and
/// the path written is rendered back from the parts, so no name from a
/// bucket can point outside the tenant's folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TreeFile {
    /// `<tenant>/pipeline.json`
    Pipeline(Slug),
    /// `<tenant>/<stage>/<name>/<version>.wasm`
    Version(PluginDir, u32),
    /// `<tenant>/<stage>/<name>/active`
    Active(PluginDir),
}

impl PluginDir {
    pub fn parse(rel: &str) -> Option<PluginDir> {
        let mut parts = rel.split('/');
        let dir = PluginDir {
            tenant: Slug::parse(parts.next()?).ok()?,
            stage: Stage::parse(parts.next()?)?,
            name: PluginName::parse(parts.next()?).ok()?,
        };
        parts.next().is_none().then_some(dir)
    }

    pub fn rel(&self) -> String {
        format!("{}/{}/{}", self.tenant, self.stage.as_str(), self.name)
    }
}

impl TreeFile {
    pub fn parse(rel: &str) -> Option<TreeFile> {
        if let Some(tenant) = rel.strip_suffix("/pipeline.json") {
            return Some(TreeFile::Pipeline(Slug::parse(tenant).ok()?));
        }
        let (dir, file) = rel.rsplit_once('/')?;
        let dir = PluginDir::parse(dir)?;
        if file == "active" {
            return Some(TreeFile::Active(dir));
        }
        let version = file.strip_suffix(".wasm")?;
        // Digits only, without leading zeros: one spelling per version.
        if version.is_empty()
            || version.len() > 9
            || version.starts_with('0')
            || !version.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(TreeFile::Version(dir, version.parse().ok()?))
    }

    pub fn rel(&self) -> String {
        match self {
            TreeFile::Pipeline(t) => format!("{t}/pipeline.json"),
            TreeFile::Version(d, v) => format!("{}/{v}.wasm", d.rel()),
            TreeFile::Active(d) => format!("{}/active", d.rel()),
        }
    }

    pub fn plugin(&self) -> Option<&PluginDir> {
        match self {
            TreeFile::Pipeline(_) => None,
            TreeFile::Version(d, _) | TreeFile::Active(d) => Some(d),
        }
    }
}

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

    /// Deletes the oldest versions beyond the newest `keep`, never the
    /// active one nor `previous` (the one active before the last change, so
    /// a rollback always has somewhere to go). Returns what it deleted.
    pub fn prune(
        &self,
        tenant: &str,
        stage: Stage,
        name: &PluginName,
        keep: usize,
        previous: Option<u32>,
    ) -> std::io::Result<Vec<u32>> {
        let versions = self.versions(tenant, stage, name);
        let active = self.active(tenant, stage, name);
        let newest = versions.len().saturating_sub(keep);
        let mut pruned = Vec::new();
        for &v in &versions[..newest] {
            if Some(v) != active && Some(v) != previous {
                std::fs::remove_file(self.version_path(tenant, stage, name, v))?;
                pruned.push(v);
            }
        }
        Ok(pruned)
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
    use proptest::prelude::*;

    #[test]
    fn tree_paths_parse_only_inside_the_tree() {
        for ok in [
            "acme/enricher/pii/3.wasm",
            "acme/pipeline.json",
            "acme/parser/my-parser/active",
        ] {
            assert_eq!(TreeFile::parse(ok).map(|f| f.rel()).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "acme/../../etc/passwd",
            "../acme/x",
            "Acme/pipeline.json",
            "acme/enricher/pii/x/y/z",
            "acme/enricher/pii/03.wasm",
            "acme/enricher/pii/3.wasm.tmp",
            "acme/gatherer/pii/active",
            "acme/enricher/../active",
            "/acme/pipeline.json",
            "acme\\enricher\\pii\\1.wasm",
            "acme/enricher/pii\0/active",
            "acme/enricher/pii/99999999999.wasm",
        ] {
            assert_eq!(TreeFile::parse(bad), None, "{bad}");
        }
        assert_eq!(
            PluginDir::parse("acme/enricher/pii").map(|d| d.rel()).as_deref(),
            Some("acme/enricher/pii")
        );
        assert_eq!(PluginDir::parse("acme/enricher/pii/x"), None);
    }

    /// The tree's grammar, written apart from the parsers it checks:
    /// `<slug>/pipeline.json` or `<slug>/<stage>/<name>/(active|<n>.wasm)`.
    fn in_grammar(s: &str) -> bool {
        let slug = |t: &str| {
            (2..=40).contains(&t.len())
                && t.starts_with(|c: char| c.is_ascii_lowercase())
                && t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        let name = |n: &str| {
            (1..=63).contains(&n.len())
                && n.starts_with(|c: char| c.is_ascii_lowercase())
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        let version = |f: &str| {
            f.strip_suffix(".wasm").is_some_and(|v| {
                (1..=9).contains(&v.len()) && !v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit())
            })
        };
        match s.split('/').collect::<Vec<_>>().as_slice() {
            [t, "pipeline.json"] => slug(t),
            [t, stage, n, file] => {
                slug(t)
                    && ["parser", "enricher", "router"].contains(stage)
                    && name(n)
                    && (*file == "active" || version(file))
            }
            _ => false,
        }
    }

    /// Paths in the grammar, and each with one part broken the way a
    /// hostile name would be: a traversal, a separator, a capital, a
    /// leading zero, a NUL, a part too long.
    fn tree_paths() -> impl Strategy<Value = String> {
        let valid = (
            "[a-z][a-z0-9_]{1,12}",
            prop::sample::select(vec!["parser", "enricher", "router"]),
            "[a-z][a-z0-9_-]{0,12}",
            prop_oneof![
                Just("active".to_string()),
                "[1-9][0-9]{0,8}\\.wasm",
                Just("pipeline.json".to_string())
            ],
        )
            .prop_map(|(t, stage, n, file)| {
                if file == "pipeline.json" {
                    format!("{t}/{file}")
                } else {
                    format!("{t}/{stage}/{n}/{file}")
                }
            });
        let broken = (
            valid.clone(),
            any::<prop::sample::Index>(),
            prop::sample::select(vec![
                "..",
                "/",
                "A",
                "0",
                "\0",
                ".",
                "%2e",
                "\\",
                "x".repeat(64).leak() as &str,
                "",
            ]),
        )
            .prop_map(|(path, at, piece)| {
                let cut = at.index(path.len() + 1);
                let cut = (0..=cut).rev().find(|&i| path.is_char_boundary(i)).unwrap_or(0);
                format!("{}{piece}{}", &path[..cut], &path[cut..])
            });
        prop_oneof![valid, broken, "[a-z0-9./\\\\_-]{0,40}"]
    }

    proptest! {
        // Whatever a bucket or a directory holds, a path parses exactly
        // when it is in the grammar, renders back to itself, and stays a
        // relative path of plain components under the root.
        #[test]
        fn tree_paths_parse_exactly_the_grammar(s in tree_paths()) {
            let parsed = TreeFile::parse(&s);
            prop_assert_eq!(parsed.is_some(), in_grammar(&s), "{:?}", s);
            if let Some(f) = parsed {
                prop_assert_eq!(f.rel(), s.clone());
                let path = std::path::Path::new(&s);
                prop_assert!(path.components().all(|c| matches!(c, std::path::Component::Normal(_))));
            }
        }
    }

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
        // Pruning keeps the newest, the active and the previous one.
        for _ in 3..=8 {
            tree.add_version("acme", Stage::Enricher, &pii, b"vn").expect("add");
        }
        tree.set_active("acme", Stage::Enricher, &pii, 2).expect("rollback");
        let new = tree.add_version("acme", Stage::Enricher, &pii, b"v9").expect("add");
        assert_eq!(new, 9);
        assert_eq!(
            tree.prune("acme", Stage::Enricher, &pii, 3, Some(2)).expect("prune"),
            vec![1, 3, 4, 5, 6]
        );
        assert_eq!(tree.versions("acme", Stage::Enricher, &pii), vec![2, 7, 8, 9]);
        assert_eq!(tree.active("acme", Stage::Enricher, &pii), Some(9));
        assert!(
            tree.prune("acme", Stage::Enricher, &pii, 3, Some(2))
                .expect("prune")
                .is_empty()
        );
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
