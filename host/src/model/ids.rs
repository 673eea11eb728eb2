//! Deterministic ids: a record that came without one gets an id derived
//! from its queue entry, so a replay of the entry rebuilds the same ids and
//! the idempotent stores drop the copies.

use ulid::Ulid;

const RANDOM_MASK: u128 = (1 << 80) - 1;

/// The id of record `index` of the batch `batch_id`: the batch's ULID with
/// `index` added to its random part, so ids stay time-ordered and unique.
pub fn record_id(batch_id: Ulid, index: usize) -> Ulid {
    let random = (batch_id.0 & RANDOM_MASK).wrapping_add(index as u128) & RANDOM_MASK;
    Ulid((batch_id.0 & !RANDOM_MASK) | random)
}

/// The batch id of a request sent with an `Idempotency-Key`: the same key
/// (for the same tenant) always names the same batch, so a retried request
/// rebuilds the same record ids. `time_ms` places it in time: the first
/// record's timestamp, which a retry repeats.
pub fn idempotent_batch_id(tenant: &str, key: &str, time_ms: u64) -> Ulid {
    hashed(time_ms, [tenant, key])
}

/// The id a shipper's own key (an Elasticsearch `_id`) names within
/// `scope` (the index): stable, so a retried request stores nothing twice,
/// and placed at `time_ms` (the record's time).
pub fn keyed_record_id(tenant: &str, scope: &str, key: &str, time_ms: u64) -> Ulid {
    hashed(time_ms, [tenant, scope, key])
}

/// The id of a dead letter holding some records of the batch `batch_id`:
/// the same records always name the same letter, so a batch retried after
/// a store failure rewrites its letters instead of adding copies.
pub fn dead_letter_id<'a>(batch_id: Ulid, record_ids: impl IntoIterator<Item = &'a str>) -> Ulid {
    hashed(batch_id.timestamp_ms(), record_ids)
}

/// A ULID at `time_ms` whose random part is a hash of `parts`.
fn hashed<'a>(time_ms: u64, parts: impl IntoIterator<Item = &'a str>) -> Ulid {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            h.update([0]);
        }
        h.update(part.as_bytes());
    }
    let d = h.finalize();
    let mut r = [0u8; 16];
    r[6..].copy_from_slice(&d[..10]);
    let random = u128::from_be_bytes(r) & RANDOM_MASK;
    Ulid::from_parts(time_ms, random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_ordered_and_distinct() {
        let b = Ulid::new();
        assert_eq!(record_id(b, 0), b);
        assert_eq!(record_id(b, 7), record_id(b, 7));
        assert!(record_id(b, 1) > record_id(b, 0) || (b.0 & RANDOM_MASK) == RANDOM_MASK);
        assert_eq!(record_id(b, 3).timestamp_ms(), b.timestamp_ms());
        let ids: std::collections::HashSet<_> = (0..1000).map(|i| record_id(b, i)).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn idempotency_keys() {
        let a = idempotent_batch_id("acme", "k1", 1000);
        assert_eq!(a, idempotent_batch_id("acme", "k1", 1000));
        assert_ne!(a, idempotent_batch_id("acme", "k2", 1000));
        assert_ne!(a, idempotent_batch_id("other", "k1", 1000));
        assert_eq!(a.timestamp_ms(), 1000);
    }

    #[test]
    fn dead_letter_ids_follow_their_records() {
        let b = Ulid::new();
        let a = dead_letter_id(b, ["r1", "r2"]);
        assert_eq!(a, dead_letter_id(b, ["r1", "r2"]));
        assert_ne!(a, dead_letter_id(b, ["r1"]));
        assert_eq!(a.timestamp_ms(), b.timestamp_ms());
    }
}
