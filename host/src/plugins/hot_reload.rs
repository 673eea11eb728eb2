//! Hot reload from disk: a change under `<data>/plugins/<tenant>/` (a new
//! version file, `active`, `pipeline.json`) reloads that tenant's pipeline.
//! Reloading compiles and validates first; a failure keeps the running
//! pipeline.
//!
//! `notify` reports changes at once; a rescan every `RESCAN` catches what
//! it can miss (files written into a directory before its watch was added).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

use super::Registry;
use crate::model::Slug;

/// Changes are gathered this long before reloading, so that a file being
/// copied in pieces is reloaded once, complete.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// How often the plugin tree is rescanned for changes notify missed.
const RESCAN: Duration = Duration::from_secs(2);

/// The tenant whose folder holds `path`; files outside a tenant's folder
/// (or in a folder whose name is not a slug) belong to no one.
fn tenant_of(root: &Path, path: &Path) -> Option<Slug> {
    let rel = path.strip_prefix(root).ok()?;
    Slug::parse(rel.components().next()?.as_os_str().to_str()?).ok()
}

/// (files, newest mtime, total size) of a tenant's plugin tree.
type Fingerprint = (usize, SystemTime, u64);

fn fingerprint(dir: &Path) -> Fingerprint {
    let mut fp = (0, SystemTime::UNIX_EPOCH, 0);
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                fp.0 += 1;
                fp.1 = fp.1.max(meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
                fp.2 += meta.len();
            }
        }
    }
    fp
}

fn scan(root: &Path) -> HashMap<Slug, Fingerprint> {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let slug = Slug::parse(e.file_name().to_str()?).ok()?;
            Some((slug, fingerprint(&e.path())))
        })
        .collect()
}

/// A running watch of the plugin tree; dropping it stops it.
pub struct Watcher {
    _inner: RecommendedWatcher,
}

/// Watches the registry's directory.
pub fn watch(registry: Arc<Registry>) -> notify::Result<Watcher> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
        // Reads (our own reloads open these files) are not changes: reacting
        // to them would reload forever.
        if let Ok(ev) = res.as_ref()
            && !matches!(ev.kind, EventKind::Access(_))
        {
            for p in &ev.paths {
                let _ = tx.send(p.clone());
            }
        }
    })?;
    let root = registry.dir().to_path_buf();
    watcher.watch(&root, RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        let mut seen = scan(&root);
        let mut rescan = tokio::time::interval(RESCAN);
        loop {
            let mut tenants = HashSet::new();
            tokio::select! {
                first = rx.recv() => {
                    let Some(first) = first else { return };
                    tenants.extend(tenant_of(&root, &first));
                    tokio::time::sleep(DEBOUNCE).await;
                    while let Ok(p) = rx.try_recv() {
                        tenants.extend(tenant_of(&root, &p));
                    }
                }
                _ = rescan.tick() => {}
            }
            let now = scan(&root);
            for (t, fp) in &now {
                if seen.get(t) != Some(fp) {
                    tenants.insert(t.clone());
                }
            }
            seen = now;
            for t in tenants {
                if let Err(e) = registry.reload(t.as_str()).await {
                    tracing::warn!(tenant = t.as_str(), error = %e, "plugin change not applied");
                }
            }
        }
    });
    Ok(Watcher { _inner: watcher })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_change_with_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = dir.path().join("acme");
        std::fs::create_dir_all(t.join("enricher/x")).expect("mkdir");
        let a = scan(dir.path());
        std::fs::write(t.join("enricher/x/1.wasm"), b"abc").expect("write");
        let b = scan(dir.path());
        let acme = Slug::parse("acme").expect("slug");
        assert_ne!(a.get(&acme), b.get(&acme));
        assert_eq!(b.get(&acme).map(|f| (f.0, f.2)), Some((1, 3)));
        std::fs::create_dir_all(dir.path().join("Not-A-Tenant")).expect("mkdir");
        assert_eq!(scan(dir.path()).len(), 1);
        assert_eq!(tenant_of(dir.path(), &t.join("pipeline.json")), Some(acme));
        assert_eq!(tenant_of(dir.path(), &dir.path().join("..").join("x")), None);
        assert_eq!(
            tenant_of(dir.path(), &dir.path().join("Not-A-Tenant/pipeline.json")),
            None
        );
    }
}
