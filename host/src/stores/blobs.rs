//! Folders of small objects kept beside the raw logs: dead letters, and the
//! tenants' plugin trees a cluster's processors share. A folder is a local
//! directory on one machine, or `<prefix>/` of the `OBJECT_STORE_URL`
//! bucket, so that every processor sees what any of them wrote. Keys are
//! relative to the folder and made by the caller from checked names.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Backend, BackendError, ErrorKind};

/// An object_store failure with its kind.
pub(super) fn object_err(backend: Backend, e: object_store::Error) -> BackendError {
    let kind = match &e {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::InvalidPath { .. }
        | object_store::Error::AlreadyExists { .. }
        | object_store::Error::Precondition { .. }
        | object_store::Error::NotSupported { .. }
        | object_store::Error::NotImplemented { .. }
        | object_store::Error::UnknownConfigurationKey { .. } => ErrorKind::Rejected,
        _ => ErrorKind::Unavailable,
    };
    BackendError::new(backend, kind, e)
}

/// A directory of this machine as an object store.
pub(super) fn local(dir: &Path, backend: Backend) -> Result<LocalFileSystem, BackendError> {
    std::fs::create_dir_all(dir).map_err(|e| BackendError::io(backend, e))?;
    // fsync before a put returns: a raw batch or a dead letter is durable
    // before the queue entry it came from is acked.
    // Empty folders go with their last object: retention empties a day's
    // folder of raw logs, and listing must not keep finding it.
    LocalFileSystem::new_with_prefix(dir)
        .map(|fs| fs.with_fsync(true).with_automatic_cleanup(true))
        .map_err(|e| object_err(backend, e))
}

/// One object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// Relative to the folder.
    pub key: String,
    pub size: u64,
    pub e_tag: Option<String>,
}

#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// Empty, or the folder's path in the store.
    prefix: String,
    backend: Backend,
}

impl Blobs {
    pub(super) fn new(store: Arc<dyn ObjectStore>, prefix: &str, backend: Backend) -> Self {
        Blobs {
            store,
            prefix: prefix.trim_matches('/').to_string(),
            backend,
        }
    }

    /// The folder is the directory `dir`.
    pub fn local(dir: &Path, backend: Backend) -> Result<Self, BackendError> {
        Ok(Self::new(Arc::new(local(dir, backend)?), "", backend))
    }

    fn err(&self, e: object_store::Error) -> BackendError {
        object_err(self.backend, e)
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Writes `key`; returns the new e-tag when the store gives one.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<Option<String>, BackendError> {
        let put = self
            .store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .map_err(|e| self.err(e))?;
        Ok(put.e_tag)
    }

    /// The object's bytes, or None when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        match self.store.get(&self.path(key)).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(|e| self.err(e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Removes `key`; removing what is not there is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BackendError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Every object under `under` (a folder of keys, `""` for all).
    pub async fn list(&self, under: &str) -> Result<Vec<BlobMeta>, BackendError> {
        let under = under.trim_end_matches('/');
        let folder = match (self.prefix.is_empty(), under.is_empty()) {
            (true, true) => None,
            (true, false) => Some(ObjectPath::from(under)),
            (false, true) => Some(ObjectPath::from(self.prefix.as_str())),
            (false, false) => Some(ObjectPath::from(format!("{}/{under}", self.prefix))),
        };
        let metas: Vec<_> = match self.store.list(folder.as_ref()).try_collect().await {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(self.err(e)),
        };
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.as_ref().strip_prefix(strip.as_str())?.to_string();
                Some(BlobMeta {
                    key,
                    size: m.size,
                    e_tag: m.e_tag,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_folder_of_a_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ObjectStore> = Arc::new(local(dir.path(), Backend::Raw).expect("store"));
        let letters = Blobs::new(store.clone(), "dead-letters", Backend::DeadLetters);
        let other = Blobs::new(store, "plugins", Backend::Plugins);
        letters.put("acme/1.json", b"{}".to_vec()).await.expect("put");
        letters.put("beta/2.json", b"[]".to_vec()).await.expect("put");
        other.put("acme/pipeline.json", b"x".to_vec()).await.expect("put");
        let keys = |v: Vec<BlobMeta>| v.into_iter().map(|m| m.key).collect::<Vec<_>>();
        assert_eq!(keys(letters.list("acme").await.expect("list")), ["acme/1.json"]);
        let mut all = keys(letters.list("").await.expect("list"));
        all.sort();
        assert_eq!(all, ["acme/1.json", "beta/2.json"]);
        assert_eq!(keys(other.list("").await.expect("list")), ["acme/pipeline.json"]);
        assert_eq!(
            letters.get("acme/1.json").await.expect("get").as_deref(),
            Some(&b"{}"[..])
        );
        assert_eq!(letters.get("acme/none.json").await.expect("get"), None);
        letters.delete("acme/1.json").await.expect("delete");
        letters.delete("acme/1.json").await.expect("delete again");
        assert!(letters.list("acme").await.expect("list").is_empty());
        assert!(letters.list("nobody").await.expect("list").is_empty());
    }
}
