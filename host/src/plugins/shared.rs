//! Tenants' plugins shared by every processor of a cluster through the
//! object store (`OBJECT_STORE_URL`, folder `plugins/`), so that an upload to one processor
//! runs on all of them (DESIGN §5).
//!
//! The object store holds a mirror of each tenant's plugin tree under
//! `plugins/<tenant>/` (the same relative paths as `<data>/plugins/<tenant>/`:
//! `<stage>/<name>/<version>.wasm`, `<stage>/<name>/active`,
//! `pipeline.json`), plus a tombstone `plugins/<tenant>/<stage>/<name>.deleted`
//! for a deleted plugin. The processor that takes a change writes it
//! locally (the registry validates it first) and then publishes it; every
//! processor pulls what changed every `PULL_EVERY` into its own directory,
//! where the hot-reload watcher compiles, validates and swaps it in as for
//! any change on disk. A publish that fails (the store is down) is retried
//! by the pull loop; the change already runs on the processor that took it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::versions::{PluginDir, TreeFile};
use crate::error::BackendError;
use crate::stores::blobs::{BlobMeta, Blobs};

/// The folder of the bucket that holds the plugin trees.
pub const PREFIX: &str = "plugins";
const TOMBSTONE: &str = ".deleted";
/// How often a processor looks for plugin changes made elsewhere.
pub const PULL_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum PluginStoreError {
    #[error(transparent)]
    Store(#[from] BackendError),
    #[error("plugin directory: {0}")]
    Io(#[from] std::io::Error),
}

pub struct PluginStore {
    /// `plugins/` of the bucket.
    store: Blobs,
    dir: PathBuf,
    /// Held across a local change and its publish, and across a pull, so
    /// that a pull never sees a change half made.
    lock: tokio::sync::Mutex<()>,
    /// E-tag of each object (by path under `plugins/`) as last copied
    /// either way: unchanged objects are not fetched again.
    known: Mutex<HashMap<String, String>>,
    /// Tenants whose publish failed, retried by the pull loop.
    dirty: Mutex<HashSet<String>>,
}

/// Order of writes on the pulling side: versions before the `active` that
/// names them, plugins before the pipeline that uses them.
fn write_order(rel: &str) -> u8 {
    if rel.ends_with(".wasm") {
        0
    } else if rel.ends_with("/active") {
        1
    } else {
        2
    }
}

fn local_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_none_or(|x| x != "tmp") {
                out.push(p);
            }
        }
    }
    out
}

impl PluginStore {
    /// Mirrors the local tree `dir` through `store` (the bucket's
    /// `plugins/` folder).
    pub fn new(store: Blobs, dir: PathBuf) -> Self {
        PluginStore {
            store,
            dir,
            lock: tokio::sync::Mutex::new(()),
            known: Mutex::new(HashMap::new()),
            dirty: Mutex::new(HashSet::new()),
        }
    }

    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    async fn remote(&self, under: &str) -> Result<BTreeMap<String, BlobMeta>, PluginStoreError> {
        let metas = self.store.list(under).await?;
        Ok(metas.into_iter().map(|m| (m.key.clone(), m)).collect())
    }

    /// Publishes a tenant's tree after a change the caller made under
    /// [`Self::lock`]; on failure it is retried later, and the change
    /// already applies here.
    pub async fn publish_or_defer(&self, tenant: &str) {
        if let Err(e) = self.publish(tenant).await {
            tracing::warn!(tenant, error = %e, "plugin change not yet shared with other processors; will retry");
            self.dirty.lock().insert(tenant.to_string());
        }
    }

    async fn publish(&self, tenant: &str) -> Result<(), PluginStoreError> {
        let remote = self.remote(tenant).await?;
        let root = self.dir.join(tenant);
        let mut local_plugins = HashSet::new();
        let mut local_rels = HashSet::new();
        for path in local_files(&root) {
            let Some(rel) = path
                .strip_prefix(&self.dir)
                .ok()
                .and_then(|r| r.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            let Some(file) = TreeFile::parse(&rel) else {
                continue;
            };
            if let Some(plugin) = file.plugin() {
                local_plugins.insert(plugin.rel());
            }
            local_rels.insert(rel.clone());
            let bytes = tokio::fs::read(&path).await?;
            let same = match remote.get(&rel) {
                // Versions never change once written.
                Some(m) if rel.ends_with(".wasm") => m.size == bytes.len() as u64,
                Some(m) if m.size == bytes.len() as u64 => {
                    let there = self.store.get(&m.key).await?;
                    there.as_deref() == Some(bytes.as_slice())
                }
                _ => false,
            };
            if !same && let Some(tag) = self.store.put(&rel, bytes).await? {
                self.known.lock().insert(rel.clone(), tag);
            }
        }
        // Plugins deleted here: their objects go, a tombstone tells the
        // other processors; a plugin uploaded again loses its tombstone.
        let mut gone = HashSet::new();
        for (rel, m) in &remote {
            if let Some(plugin) = rel.strip_suffix(TOMBSTONE) {
                if local_plugins.contains(plugin) {
                    self.store.delete(&m.key).await?;
                }
                continue;
            }
            let Some((plugin, _)) = rel.rsplit_once('/') else {
                continue;
            };
            if plugin != tenant && !local_plugins.contains(plugin) {
                self.store.delete(&m.key).await?;
                gone.insert(plugin.to_string());
            } else if rel.ends_with(".wasm") && !local_rels.contains(rel) {
                // A version pruned here: pruned everywhere.
                self.store.delete(&m.key).await?;
                self.known.lock().remove(rel);
            }
        }
        for plugin in gone {
            self.store.put(&format!("{plugin}{TOMBSTONE}"), Vec::new()).await?;
        }
        Ok(())
    }

    /// Copies what changed in the store into the local tree; returns how
    /// many files changed.
    pub async fn pull(&self) -> Result<usize, PluginStoreError> {
        let _guard = self.lock().await;
        let dirty: Vec<String> = self.dirty.lock().iter().cloned().collect();
        for tenant in dirty {
            self.publish(&tenant).await?;
            self.dirty.lock().remove(&tenant);
        }
        let remote = self.remote("").await?;
        let mut changed = 0;
        let mut files: Vec<(&String, &BlobMeta)> = remote.iter().filter(|(rel, _)| !rel.ends_with(TOMBSTONE)).collect();
        files.sort_by_key(|(rel, _)| write_order(rel));
        for (rel, meta) in files {
            let Some(file) = TreeFile::parse(rel) else {
                tracing::warn!(path = rel, "ignoring an unexpected object in the plugin store");
                continue;
            };
            let tag = meta.e_tag.clone().unwrap_or_default();
            if self.known.lock().get(rel.as_str()) == Some(&tag) {
                continue;
            }
            let local = self.dir.join(file.rel());
            // Gone since the listing: the next pull sees what replaced it.
            let Some(there) = self.store.get(&meta.key).await? else {
                continue;
            };
            if tokio::fs::read(&local).await.ok().as_deref() != Some(there.as_ref()) {
                if let Some(parent) = local.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                let tmp = local.with_extension("tmp");
                tokio::fs::write(&tmp, &there).await?;
                tokio::fs::rename(&tmp, &local).await?;
                changed += 1;
            }
            self.known.lock().insert(rel.clone(), tag);
        }
        // Versions pruned elsewhere: a version this process had in common
        // with the store, gone from it while its plugin stays.
        let pruned: Vec<String> = self
            .known
            .lock()
            .keys()
            .filter(|rel| rel.ends_with(".wasm") && !remote.contains_key(*rel))
            .cloned()
            .collect();
        for rel in pruned {
            let Some(TreeFile::Version(plugin, _)) = TreeFile::parse(&rel) else {
                continue;
            };
            let prefix = format!("{}/", plugin.rel());
            if remote.keys().any(|r| r.starts_with(&prefix)) {
                let local = self.dir.join(&rel);
                if local.is_file() {
                    tokio::fs::remove_file(&local).await?;
                    changed += 1;
                }
            }
            self.known.lock().remove(&rel);
        }
        for rel in remote.keys() {
            let Some(plugin) = rel.strip_suffix(TOMBSTONE) else {
                continue;
            };
            let Some(plugin) = PluginDir::parse(plugin) else {
                continue;
            };
            let still_there = remote.keys().any(|r| r.starts_with(&format!("{}/", plugin.rel())));
            let local = self.dir.join(plugin.rel());
            if !still_there && local.is_dir() {
                tokio::fs::remove_dir_all(&local).await?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Pulls once before the processor starts (retrying while the store is
    /// down: running tenants' batches without their plugins would be
    /// wrong), then every [`PULL_EVERY`] until `shutdown`.
    pub async fn first_pull(&self, shutdown: &watch::Receiver<bool>) {
        loop {
            match self.pull().await {
                Ok(n) => {
                    tracing::info!(files = n, "tenant plugins pulled from the plugin store");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "plugin store unavailable; processing waits for it"),
            }
            if *shutdown.borrow() {
                return;
            }
            tokio::time::sleep(PULL_EVERY).await;
        }
    }

    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(PULL_EVERY) => {}
                _ = shutdown.changed() => return,
            }
            match self.pull().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(files = n, "plugin changes pulled from the plugin store"),
                Err(e) => tracing::warn!(error = %e, "plugin store pull failed; retrying"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Backend;
    use crate::stores::raw::RawStore;

    fn store(dir: &Path) -> Blobs {
        RawStore::local(dir).expect("store").blobs(PREFIX, Backend::Plugins)
    }

    /// Two processors' directories over one store: an upload, a change of
    /// `active` and a delete made in one reach the other.
    #[tokio::test]
    async fn changes_travel_between_processors() {
        let bucket = tempfile::tempdir().expect("tempdir");
        let (a_dir, b_dir) = (tempfile::tempdir().expect("a"), tempfile::tempdir().expect("b"));
        let a = PluginStore::new(store(bucket.path()), a_dir.path().to_path_buf());
        let b = PluginStore::new(store(bucket.path()), b_dir.path().to_path_buf());
        let plugin = a_dir.path().join("acme/enricher/pii");
        std::fs::create_dir_all(&plugin).expect("mkdir");
        std::fs::write(plugin.join("1.wasm"), b"\0asm v1").expect("write");
        std::fs::write(plugin.join("active"), b"1").expect("write");
        std::fs::write(a_dir.path().join("acme/pipeline.json"), b"{}").expect("write");
        a.publish_or_defer("acme").await;
        assert_eq!(b.pull().await.expect("pull"), 3);
        let got = b_dir.path().join("acme/enricher/pii");
        assert_eq!(std::fs::read(got.join("1.wasm")).expect("wasm"), b"\0asm v1");
        assert_eq!(b.pull().await.expect("pull again"), 0, "nothing changed");

        std::fs::write(plugin.join("2.wasm"), b"\0asm v2").expect("write");
        std::fs::write(plugin.join("active"), b"2").expect("write");
        a.publish_or_defer("acme").await;
        assert_eq!(b.pull().await.expect("pull"), 2);
        assert_eq!(std::fs::read_to_string(got.join("active")).expect("active"), "2");
        // The publisher's own pull finds its own change: nothing to do.
        assert_eq!(a.pull().await.expect("pull"), 0);

        // A version pruned in one is pruned in the other.
        std::fs::remove_file(plugin.join("1.wasm")).expect("prune");
        a.publish_or_defer("acme").await;
        assert_eq!(b.pull().await.expect("pull"), 1);
        assert!(!got.join("1.wasm").exists());
        assert!(got.join("2.wasm").exists());
        assert_eq!(a.pull().await.expect("pull"), 0);

        std::fs::remove_dir_all(&plugin).expect("delete");
        a.publish_or_defer("acme").await;
        assert_eq!(b.pull().await.expect("pull"), 1);
        assert!(!got.exists());
        assert!(b_dir.path().join("acme/pipeline.json").exists());

        // Uploaded again under the same name: the tombstone goes.
        std::fs::create_dir_all(&plugin).expect("mkdir");
        std::fs::write(plugin.join("1.wasm"), b"\0asm v3").expect("write");
        std::fs::write(plugin.join("active"), b"1").expect("write");
        a.publish_or_defer("acme").await;
        b.pull().await.expect("pull");
        assert_eq!(std::fs::read(got.join("1.wasm")).expect("wasm"), b"\0asm v3");
    }
}
