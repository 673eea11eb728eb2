//! Dead letters from the pipeline's side: the letter a failed queue entry
//! or failed records become (kept by `stores::dead_letters`), and the
//! queue entry a letter replays as: an entry whose records get the same ids
//! as before (an entry keeps its batch id; records are written out with
//! their ids).

use bytes::Bytes;

use crate::model::format_ts;
use crate::model::ids::dead_letter_id;
use crate::queue::QueueEntry;
use crate::stores::dead_letters::DeadLetter;
use loggerhub_codec::Record;
use loggerhub_codec::payload::is_valid_id;
use loggerhub_codec::time::parse_rfc3339;

/// The letter of a whole entry, named by its batch id.
pub fn of_entry(entry: &QueueEntry, plugin: &str, kind: &str, reason: &str) -> DeadLetter {
    DeadLetter {
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
        records: None,
        origin_batches: Vec::new(),
    }
}

/// The letter of some records of `entry` (and maybe of the entries in
/// `origin_batches`), named by an id derived from the records.
pub fn of_records(
    entry: &QueueEntry,
    origin_batches: Vec<String>,
    records: &[Record],
    plugin: &str,
    kind: &str,
    reason: &str,
) -> DeadLetter {
    let id = dead_letter_id(entry.batch_id, records.iter().map(|r| r.id.as_str()));
    let mut body = String::new();
    for r in records {
        body.push_str(&payload_line(r));
        body.push('\n');
    }
    DeadLetter {
        tenant: entry.tenant.clone(),
        batch_id: id.to_string(),
        received_at: format_ts(entry.received_at),
        content_type: "application/x-ndjson".into(),
        service: None,
        // The records carry their ids, and some of their batches' other
        // records are stored: a replay must dedupe.
        idempotent: true,
        plugin: plugin.to_string(),
        kind: kind.to_string(),
        reason: reason.to_string(),
        body,
        records: Some(records.len()),
        origin_batches,
    }
}

/// The queue entry `letter` replays as: idempotent, whatever the entry was.
pub fn replay_entry(letter: &DeadLetter) -> Option<QueueEntry> {
    Some(QueueEntry {
        tenant: letter.tenant.clone(),
        batch_id: ulid::Ulid::from_string(&letter.batch_id).ok()?,
        received_at: parse_rfc3339(&letter.received_at)?,
        content_type: letter.content_type.clone(),
        service: letter.service.clone(),
        // A replay may run while another of the same letter is queued
        // (two clicks, two clients): its records' ids are the same
        // (made from the batch id), and the stores keep each once.
        idempotent: true,
        body: Bytes::from(letter.body.clone()),
    })
}

/// A record as one line of the ingest payload, so that a replay parses it
/// back into the same record, id included.
fn payload_line(r: &Record) -> String {
    let attributes = crate::model::attributes_to_json(&r.attributes);
    let mut line = serde_json::json!({
        "service": r.service,
        "level": r.level.as_str(),
        "timestamp": format_ts(r.timestamp),
        "message": r.message,
        "full_log": r.full_log,
        "attributes": attributes,
    });
    // A parser may make ids the payload format refuses: those records get
    // a new id when replayed.
    if is_valid_id(&r.id) {
        line["id"] = r.id.clone().into();
    }
    if let Some(language) = &r.language {
        line["language"] = language.clone().into();
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use loggerhub_codec::Level;

    #[tokio::test]
    async fn record_letters_replay_as_the_same_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let letters = crate::stores::dead_letters::DeadLetters::local(dir.path()).expect("open");
        let batch = ulid::Ulid::new();
        let entry = QueueEntry {
            tenant: "acme".into(),
            batch_id: batch,
            received_at: 1_700_000_000_000_000_000,
            content_type: "text/plain".into(),
            service: Some("web".into()),
            idempotent: false,
            body: Bytes::from_static(b"unused"),
        };
        let record = Record {
            id: crate::model::ids::record_id(batch, 3).to_string(),
            tenant: "acme".into(),
            service: "web".into(),
            level: Level::Warn,
            timestamp: 1_700_000_000_123_000_000,
            message: "poison \"quoted\"".into(),
            full_log: "line one\nline two".into(),
            language: Some("rust".into()),
            attributes: vec![("k".into(), "v".into()), ("n".into(), "\u{0}42".into())],
        };
        // The same records name the same letter: a retried batch rewrites it.
        for _ in 0..2 {
            letters
                .put(of_records(
                    &entry,
                    vec![batch.to_string()],
                    std::slice::from_ref(&record),
                    "p@v1",
                    "trap",
                    "boom",
                ))
                .await
                .expect("put");
        }
        let all = letters.list("acme").await.expect("list");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].records, Some(1));
        let replay = replay_entry(&all[0]).expect("entry");
        assert!(replay.idempotent);
        assert_ne!(
            replay.batch_id, batch,
            "a replay must not overwrite the batch's raw object"
        );
        let back = loggerhub_codec::payload::parse_json(&replay.body).expect("payload");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].id, record.id);
        assert_eq!(back[0].message, record.message);
        assert_eq!(back[0].full_log, record.full_log);
        assert_eq!(back[0].level, Level::Warn);
        assert_eq!(back[0].timestamp, record.timestamp);
        assert_eq!(back[0].language, record.language);
        assert_eq!(back[0].attributes, record.attributes);
    }
}
