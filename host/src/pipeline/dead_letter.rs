//! Queue entries the pipeline could not process are kept here, whole, with
//! the reason, instead of blocking the queue or vanishing. Once the plugin
//! is fixed they can be replayed: the entry goes back to the queue with its
//! batch id, so its records get the same ids as before.

use std::path::PathBuf;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::format_ts;
use crate::queue::QueueEntry;
use loggerhub_codec::time::parse_rfc3339;

pub struct DeadLetters {
    dir: PathBuf,
}

/// A dead-lettered entry as stored in `<dir>/<tenant>/<batch id>.json`.
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
    /// The body as the client sent it (ingest checked it is UTF-8).
    pub body: String,
}

impl DeadLetter {
    /// The queue entry to replay.
    pub fn to_entry(&self) -> Option<QueueEntry> {
        Some(QueueEntry {
            tenant: self.tenant.clone(),
            batch_id: ulid::Ulid::from_string(&self.batch_id).ok()?,
            received_at: parse_rfc3339(&self.received_at)?,
            content_type: self.content_type.clone(),
            service: self.service.clone(),
            idempotent: self.idempotent,
            body: Bytes::from(self.body.clone()),
        })
    }
}

impl DeadLetters {
    pub fn new(dir: PathBuf) -> Self {
        DeadLetters { dir }
    }

    fn path(&self, tenant: &str, batch_id: &str) -> Option<PathBuf> {
        // Batch ids are ULIDs: nothing else may name a file here.
        ulid::Ulid::from_string(batch_id).ok()?;
        Some(self.dir.join(tenant).join(format!("{batch_id}.json")))
    }

    /// Writes `<dir>/<tenant>/<batch id>.json`.
    pub async fn put(&self, entry: &QueueEntry, plugin: &str, kind: &str, reason: &str) -> std::io::Result<()> {
        let letter = DeadLetter {
            tenant: entry.tenant.clone(),
            batch_id: entry.batch_id.to_string(),
            received_at: format_ts(entry.received_at),
            content_type: entry.content_type.clone(),
            service: entry.service.clone(),
            idempotent: entry.idempotent,
            plugin: plugin.to_string(),
            kind: kind.to_string(),
            reason: reason.to_string(),
            body: String::from_utf8_lossy(&entry.body).into_owned(),
        };
        let dir = self.dir.join(&entry.tenant);
        tokio::fs::create_dir_all(&dir).await?;
        let json = serde_json::to_vec_pretty(&letter).map_err(std::io::Error::other)?;
        tokio::fs::write(dir.join(format!("{}.json", entry.batch_id)), json).await
    }

    /// The tenant's dead letters, oldest first.
    pub fn list(&self, tenant: &str) -> Vec<DeadLetter> {
        let mut out: Vec<DeadLetter> = std::fs::read_dir(self.dir.join(tenant))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        out.sort_by(|a, b| a.batch_id.cmp(&b.batch_id));
        out
    }

    pub fn get(&self, tenant: &str, batch_id: &str) -> Option<DeadLetter> {
        let bytes = std::fs::read(self.path(tenant, batch_id)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn remove(&self, tenant: &str, batch_id: &str) -> std::io::Result<()> {
        match self.path(tenant, batch_id) {
            Some(p) => std::fs::remove_file(p),
            None => Ok(()),
        }
    }
}
