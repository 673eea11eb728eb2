//! The dead-letter store: what the pipeline could not process, kept with
//! the reason instead of blocking the queue or vanishing (a whole queue
//! entry when its parser failed, or the records an enricher, a router or a
//! store failed on), capped per tenant in count and bytes, listed newest
//! first, and removed once replayed (`pipeline::dead_letter` makes letters
//! from queue entries and replays them).
//!
//! Letters are JSON objects `<tenant>/<batch id>.json` in an object store:
//! `<data>/dead-letters` on one machine, `dead-letters/` in the bucket of
//! `OBJECT_STORE_URL` in a cluster, so that every processor lists and
//! replays every processor's letters.

use serde::{Deserialize, Serialize};

use crate::config::RawBackend;
use crate::error::{Backend, BackendError};
use crate::stores::blobs::Blobs;
use crate::stores::raw::RawStore;

/// The folder of the shared bucket that holds the letters.
const FOLDER: &str = "dead-letters";
/// Letters kept per tenant unless the operator says otherwise: a tenant's
/// failures cannot fill the disk or the bucket.
pub const DEFAULT_CAP: usize = 1000;
/// Bytes of letters kept per tenant unless the operator says otherwise: a
/// letter holds up to a whole request body, so the count alone would let
/// one tenant keep 1,000 of 10 MiB.
pub const DEFAULT_BYTES_CAP: u64 = 256 << 20;
/// Where the count of a tenant's dropped letters is kept:
/// `_dropped/<tenant>`, beside (never among) its letters.
const DROPPED: &str = "_dropped";

pub struct DeadLetters {
    store: Blobs,
    /// Letters kept per tenant; past it the oldest are dropped and counted.
    cap: usize,
    /// Bytes of letters kept per tenant, likewise.
    bytes_cap: u64,
    /// One cap enforcement at a time in this process, so that two workers
    /// do not count the same dropped letter, nor lose each other's count.
    capping: tokio::sync::Mutex<()>,
    /// Each tenant's plan's cap, where it is lower than `cap`.
    plan_caps: parking_lot::Mutex<std::collections::HashMap<String, usize>>,
}

/// One page of a tenant's letters, newest first.
#[derive(Debug, Default)]
pub struct LetterPage {
    pub letters: Vec<DeadLetter>,
    /// The batch id to pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
    /// Letters the tenant holds.
    pub total: usize,
    /// Letters dropped because the tenant was over its cap.
    pub dropped: u64,
}

/// A dead-lettered entry as stored in `<tenant>/<batch id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub tenant: String,
    pub batch_id: String,
    pub received_at: String,
    pub content_type: String,
    pub service: Option<String>,
    #[serde(default)]
    pub idempotent: bool,
    pub plugin: String,
    pub kind: String,
    pub reason: String,
    /// The body as the client sent it (ingest checked it is UTF-8), or the
    /// failed records as NDJSON in the ingest payload format.
    pub body: String,
    /// How many records the body holds when it holds records; absent for a
    /// whole entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<usize>,
    /// The batches the records came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origin_batches: Vec<String>,
}

impl DeadLetters {
    /// Letters in files under `dir`.
    pub fn local(dir: &std::path::Path) -> Result<Self, BackendError> {
        Ok(DeadLetters {
            store: Blobs::local(dir, Backend::DeadLetters)?,
            cap: DEFAULT_CAP,
            bytes_cap: DEFAULT_BYTES_CAP,
            capping: tokio::sync::Mutex::new(()),
            plan_caps: Default::default(),
        })
    }

    /// Where the settings put them: beside the raw logs when the bucket is
    /// shared, so that every processor lists and replays every processor's
    /// letters; else in `<data>/dead-letters`.
    pub fn open(raw_backend: &RawBackend, raw: &RawStore, data_dir: &std::path::Path) -> Result<Self, BackendError> {
        if raw_backend.is_shared() {
            Ok(Self::shared(raw))
        } else {
            Self::local(&data_dir.join("dead-letters"))
        }
    }

    /// Keeps at most `cap` letters per tenant (at least 1), of at most
    /// `bytes` together.
    pub fn with_caps(mut self, cap: usize, bytes: u64) -> Self {
        self.cap = cap.max(1);
        self.bytes_cap = bytes.max(1);
        self
    }

    /// Letters under `dead-letters/` of the bucket every processor shares.
    pub fn shared(raw: &RawStore) -> Self {
        DeadLetters {
            store: raw.blobs(FOLDER, Backend::DeadLetters),
            cap: DEFAULT_CAP,
            bytes_cap: DEFAULT_BYTES_CAP,
            capping: tokio::sync::Mutex::new(()),
            plan_caps: Default::default(),
        }
    }

    /// The key of a letter: batch ids are ULIDs and tenants are slugs, so
    /// nothing else may name an object here.
    fn key(tenant: &str, batch_id: &str) -> Option<String> {
        ulid::Ulid::from_string(batch_id).ok()?;
        crate::model::valid_slug(tenant).then(|| format!("{tenant}/{batch_id}.json"))
    }

    /// Keeps `letter` as `<tenant>/<batch id>.json` (a letter of the same
    /// name is replaced), then drops the tenant's oldest past its caps.
    pub async fn put(&self, letter: DeadLetter) -> Result<(), BackendError> {
        let key = Self::key(&letter.tenant, &letter.batch_id).ok_or_else(|| {
            BackendError::rejected(
                Backend::DeadLetters,
                format!("bad letter name {:?}/{:?}", letter.tenant, letter.batch_id),
            )
        })?;
        // A letter of strings always serialises.
        let json = serde_json::to_vec_pretty(&letter).unwrap_or_default();
        self.store.put(&key, json).await?;
        self.enforce_cap(&letter.tenant).await
    }

    /// The keys of a tenant's letters, oldest first (batch ids are ULIDs).
    async fn keys(&self, tenant: &str) -> Result<Vec<String>, BackendError> {
        Ok(self.letters(tenant).await?.into_iter().map(|(k, _)| k).collect())
    }

    /// The tenant's letters and their sizes, oldest first.
    async fn letters(&self, tenant: &str) -> Result<Vec<(String, u64)>, BackendError> {
        let mut letters: Vec<(String, u64)> = self
            .store
            .list(tenant)
            .await?
            .into_iter()
            .filter(|m| m.key.ends_with(".json"))
            .map(|m| (m.key, m.size))
            .collect();
        letters.sort();
        Ok(letters)
    }

    /// The tenant's plan keeps at most `cap` letters (the operator's cap
    /// still bounds it).
    pub fn set_plan_cap(&self, tenant: &str, cap: usize) {
        let mut caps = self.plan_caps.lock();
        if caps.len() > 100_000 {
            caps.clear();
        }
        caps.insert(tenant.to_string(), cap.max(1));
    }

    fn cap_of(&self, tenant: &str) -> usize {
        self.plan_caps
            .lock()
            .get(tenant)
            .map_or(self.cap, |c| (*c).min(self.cap))
    }

    /// Drops the tenant's oldest letters past the caps (count and bytes),
    /// and counts them. (Two processors dropping at once may count a letter
    /// twice; the count is for the tenant's information, not for billing.)
    async fn enforce_cap(&self, tenant: &str) -> Result<(), BackendError> {
        let _one_at_a_time = self.capping.lock().await;
        let letters = self.letters(tenant).await?;
        let cap = self.cap_of(tenant);
        // The newest letters that fit both caps stay.
        let (mut kept, mut bytes) = (0, 0u64);
        for (_, size) in letters.iter().rev() {
            if kept == cap || bytes.saturating_add(*size) > self.bytes_cap {
                break;
            }
            kept += 1;
            bytes += size;
        }
        if kept == letters.len() {
            return Ok(());
        }
        let over: Vec<String> = letters[..letters.len() - kept].iter().map(|(k, _)| k.clone()).collect();
        let over = &over[..];
        for key in over {
            self.store.delete(key).await?;
        }
        let dropped = self.dropped(tenant).await? + over.len() as u64;
        self.store
            .put(&format!("{DROPPED}/{tenant}"), dropped.to_string().into_bytes())
            .await?;
        tracing::warn!(
            tenant,
            dropped = over.len(),
            cap,
            "dead letters over the tenant's cap; the oldest were dropped"
        );
        Ok(())
    }

    async fn dropped(&self, tenant: &str) -> Result<u64, BackendError> {
        Ok(self
            .store
            .get(&format!("{DROPPED}/{tenant}"))
            .await?
            .and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse().ok())
            .unwrap_or(0))
    }

    /// A page of the tenant's letters, newest first: `limit` letters older
    /// than the letter `before` (a batch id), or the newest ones. Only the
    /// page's letters are read.
    pub async fn page(&self, tenant: &str, before: Option<&str>, limit: usize) -> Result<LetterPage, BackendError> {
        if !crate::model::valid_slug(tenant) {
            return Ok(LetterPage::default());
        }
        let keys = self.keys(tenant).await?;
        let end = match before {
            Some(b) => keys.partition_point(|k| k.as_str() < format!("{tenant}/{b}.json").as_str()),
            None => keys.len(),
        };
        let start = end.saturating_sub(limit);
        let mut letters = Vec::new();
        for key in keys[start..end].iter().rev() {
            if let Some(letter) = self.store.get(key).await?.and_then(|b| serde_json::from_slice(&b).ok()) {
                letters.push(letter);
            }
        }
        Ok(LetterPage {
            next_cursor: (start > 0)
                .then(|| letters.last().map(|l: &DeadLetter| l.batch_id.clone()))
                .flatten(),
            letters,
            total: keys.len(),
            dropped: self.dropped(tenant).await?,
        })
    }

    /// Every one of the tenant's letters, oldest first (at most the cap).
    pub async fn list(&self, tenant: &str) -> Result<Vec<DeadLetter>, BackendError> {
        let mut all = self.page(tenant, None, usize::MAX).await?.letters;
        all.reverse();
        Ok(all)
    }

    pub async fn get(&self, tenant: &str, batch_id: &str) -> Result<Option<DeadLetter>, BackendError> {
        let Some(key) = Self::key(tenant, batch_id) else {
            return Ok(None);
        };
        Ok(self
            .store
            .get(&key)
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Removes every letter of the tenant, and its count of dropped ones.
    pub async fn purge(&self, tenant: &str) -> Result<usize, BackendError> {
        if !crate::model::valid_slug(tenant) {
            return Ok(0);
        }
        let keys: Vec<String> = self.store.list(tenant).await?.into_iter().map(|m| m.key).collect();
        for key in &keys {
            self.store.delete(key).await?;
        }
        self.store.delete(&format!("{DROPPED}/{tenant}")).await?;
        Ok(keys.len())
    }

    pub async fn remove(&self, tenant: &str, batch_id: &str) -> Result<(), BackendError> {
        match Self::key(tenant, batch_id) {
            Some(key) => self.store.delete(&key).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod caps {
    use super::*;

    fn letter(tenant: &str, body: usize) -> DeadLetter {
        DeadLetter {
            tenant: tenant.into(),
            batch_id: ulid::Ulid::new().to_string(),
            received_at: "2023-11-14T22:13:20Z".into(),
            content_type: "text/plain".into(),
            service: None,
            idempotent: false,
            plugin: "p".into(),
            kind: "trap".into(),
            reason: "r".into(),
            body: "x".repeat(body),
            records: None,
            origin_batches: Vec::new(),
        }
    }

    /// The oldest letters go once a tenant's letters pass the byte cap, as
    /// they do past the count; another tenant's stay.
    #[tokio::test]
    async fn letters_are_capped_in_bytes_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let letters = DeadLetters::local(dir.path()).expect("open").with_caps(100, 100_000);
        letters.put(letter("other", 60_000)).await.expect("put");
        for _ in 0..10 {
            letters.put(letter("acme", 30_000)).await.expect("put");
            // ULIDs of one millisecond may sort either way: a tick apart.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let page = letters.page("acme", None, 100).await.expect("page");
        assert_eq!((page.total, page.dropped), (3, 7), "three letters of 30 KB fit 100 KB");
        let sizes: u64 = letters
            .letters("acme")
            .await
            .expect("list")
            .iter()
            .map(|(_, s)| s)
            .sum();
        assert!(sizes <= 100_000, "{sizes}");
        assert_eq!(letters.page("other", None, 100).await.expect("page").total, 1);
    }
}
