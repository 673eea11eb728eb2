//! What a raw object is named after: `<name>-<newest>.ndjson[.gz]`.

use std::fmt;

use sha2::{Digest, Sha256};
use ulid::Ulid;

/// One queue entry (its batch id), or several small entries of one turn
/// written as one object: the first one's id and a hash of all of theirs
/// (`<first>_<hash>`). The same entries always make the same name, so a
/// replay of them overwrites their object; a replay that groups them
/// otherwise (a crash between the write and the ack, then a turn of
/// another size) writes another object and never overwrites one whose
/// records the metadata store points at. No `-` in a name: retention reads
/// `<newest>` after the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchName {
    first: Ulid,
    group: Option<u64>,
}

impl BatchName {
    /// `batches` written together, in their order; one is named after itself.
    pub fn of_group(batches: &[Ulid]) -> BatchName {
        let first = batches.first().copied().unwrap_or_default();
        if batches.len() <= 1 {
            return BatchName { first, group: None };
        }
        let mut hash = Sha256::new();
        for b in batches {
            hash.update(b.to_bytes());
        }
        let digest = hash.finalize();
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&digest[..8]);
        BatchName {
            first,
            group: Some(u64::from_be_bytes(eight)),
        }
    }

    /// The time an empty object is dated by: its first batch's.
    pub(super) fn time_ms(&self) -> i64 {
        i64::try_from(self.first.timestamp_ms()).unwrap_or(0)
    }
}

impl From<Ulid> for BatchName {
    fn from(batch: Ulid) -> BatchName {
        BatchName {
            first: batch,
            group: None,
        }
    }
}

impl fmt::Display for BatchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.group {
            None => write!(f, "{}", self.first),
            Some(hash) => write!(f, "{}_{hash:016x}", self.first),
        }
    }
}

/// The newest record's time (unix ms) an object's name carries:
/// `<name>-<ms>.ndjson[.gz]`.
pub(super) fn newest_of(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".gz").unwrap_or(name).strip_suffix(".ndjson")?;
    stem.split_once('-')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group's name depends on every member and their order, a single
    /// entry's is its id, and retention reads the time back from either.
    #[test]
    fn names_are_stable_distinct_and_readable_by_retention() {
        let (a, b, c) = (Ulid::new(), Ulid::new(), Ulid::new());
        assert_eq!(BatchName::of_group(&[a]).to_string(), a.to_string());
        assert_eq!(BatchName::from(a), BatchName::of_group(&[a]));
        let abc = BatchName::of_group(&[a, b, c]);
        assert_eq!(abc, BatchName::of_group(&[a, b, c]));
        for other in [
            BatchName::of_group(&[a, b]),
            BatchName::of_group(&[a, c, b]),
            BatchName::of_group(&[a]),
        ] {
            assert_ne!(abc.to_string(), other.to_string());
        }
        assert!(abc.to_string().starts_with(&format!("{a}_")));
        for name in [abc, BatchName::from(a)] {
            assert_eq!(
                newest_of(&format!("{name}-1700000000123.ndjson.gz")),
                Some(1_700_000_000_123)
            );
        }
    }
}
