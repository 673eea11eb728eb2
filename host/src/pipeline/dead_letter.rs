//! Queue entries the pipeline could not process are kept here, whole, with
//! the reason, instead of blocking the queue or vanishing.

use std::path::PathBuf;

use serde::Serialize;

use crate::model::format_ts;
use crate::queue::QueueEntry;

pub struct DeadLetters {
    dir: PathBuf,
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    tenant: &'a str,
    batch_id: String,
    received_at: String,
    content_type: &'a str,
    service: Option<&'a str>,
    plugin: &'a str,
    kind: &'a str,
    reason: &'a str,
    body: String,
}

impl DeadLetters {
    pub fn new(dir: PathBuf) -> Self {
        DeadLetters { dir }
    }

    /// Writes `<dir>/<tenant>/<batch id>.json`.
    pub async fn put(&self, entry: &QueueEntry, plugin: &str, kind: &str, reason: &str) -> std::io::Result<()> {
        let letter = DeadLetter {
            tenant: &entry.tenant,
            batch_id: entry.batch_id.to_string(),
            received_at: format_ts(entry.received_at),
            content_type: &entry.content_type,
            service: entry.service.as_deref(),
            plugin,
            kind,
            reason,
            body: String::from_utf8_lossy(&entry.body).into_owned(),
        };
        let dir = self.dir.join(&entry.tenant);
        tokio::fs::create_dir_all(&dir).await?;
        let json = serde_json::to_vec_pretty(&letter).map_err(std::io::Error::other)?;
        tokio::fs::write(dir.join(format!("{}.json", entry.batch_id)), json).await
    }
}
