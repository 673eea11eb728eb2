//! What a raw object is named after: `<name>-<newest>.ndjson[.gz]`.

use sha2::{Digest, Sha256};
use ulid::Ulid;

/// The queue entries an object holds: one (its batch id) or a turn's run
/// of small ones. The object's name is the first one's id and a hash of
/// all of theirs and of the ids of the records in it, line by line
/// (`<first>_<hash>`, `BatchName::stem`): the same records from the same
/// entries always make the same name, so a replay overwrites its object
/// with the same lines; a replay that groups the entries otherwise, or
/// whose plugins now make other records (a redeployed router, a record
/// dead-lettered this time), writes another object and never shifts the
/// lines that rows of the first try point at. No `-` in a name: retention
/// reads `<newest>` after the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchName {
    batches: Vec<Ulid>,
}

impl BatchName {
    /// `batches` written together, in their order.
    pub fn of_group(batches: &[Ulid]) -> BatchName {
        BatchName {
            batches: batches.to_vec(),
        }
    }

    /// The object's name for records with these ids, in line order.
    pub(super) fn stem<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> String {
        let mut hash = Sha256::new();
        for b in &self.batches {
            hash.update(b.to_bytes());
        }
        for id in ids {
            // Length first: ids are free text, "ab"+"c" is not "a"+"bc".
            hash.update((id.len() as u64).to_be_bytes());
            hash.update(id.as_bytes());
        }
        let digest = hash.finalize();
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&digest[..8]);
        format!("{}_{:016x}", self.first(), u64::from_be_bytes(eight))
    }

    fn first(&self) -> Ulid {
        self.batches.first().copied().unwrap_or_default()
    }

    /// The time an empty object is dated by: its first batch's.
    pub(super) fn time_ms(&self) -> i64 {
        i64::try_from(self.first().timestamp_ms()).unwrap_or(0)
    }
}

impl From<Ulid> for BatchName {
    fn from(batch: Ulid) -> BatchName {
        BatchName { batches: vec![batch] }
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

    /// A name depends on every entry, their order, and the ids of the
    /// records in it line by line; retention reads the time back.
    #[test]
    fn names_are_stable_distinct_and_readable_by_retention() {
        let (a, b, c) = (Ulid::new(), Ulid::new(), Ulid::new());
        let abc = BatchName::of_group(&[a, b, c]);
        let name = abc.stem(["r1", "r2"]);
        assert_eq!(name, BatchName::of_group(&[a, b, c]).stem(["r1", "r2"]));
        assert!(name.starts_with(&format!("{a}_")), "{name}");
        for other in [
            BatchName::of_group(&[a, b]).stem(["r1", "r2"]),
            BatchName::of_group(&[a, c, b]).stem(["r1", "r2"]),
            abc.stem(["r2", "r1"]),
            abc.stem(["r1"]),
            abc.stem(["r", "1r2"]),
            BatchName::from(a).stem(["r1", "r2"]),
        ] {
            assert_ne!(name, other);
        }
        assert_eq!(BatchName::from(a), BatchName::of_group(&[a]));
        assert_eq!(
            newest_of(&format!("{name}-1700000000123.ndjson.gz")),
            Some(1_700_000_000_123)
        );
    }
}
