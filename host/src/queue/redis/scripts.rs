//! The Lua scripts, each one step that reads and counts, so the counts
//! never drift from the streams; the Lua is in the `.lua` files beside.

use redis::Script;

pub(super) struct Scripts {
    pub(super) take: Script,
    pub(super) ack: Script,
    pub(super) migrate: Script,
}

// Each script is its file after a newline: the bytes the scripts had as
// raw strings in Rust, so their SHA1 (`EVALSHA`) is the same.

/// Adds entries, each to its tenant's lane, in order, unless the queue
/// already holds `max` bytes (an entry bigger than `max` still gets into an
/// empty queue, as in the local queue): one call for the pushes that
/// arrived together. A new lane gets its consumer group here. Answers the
/// bytes held after it, then 1 (added), 0 (full) or Redis's refusal of its
/// `XADD` for each entry: an entry Redis refuses fails alone, and only
/// what was added is counted.
/// KEYS: bytes, ready, lanes, signal, then each entry's lane. ARGV: max,
/// group, then tenant, size and payload of each entry.
pub(super) const PUSH: &str = concat!("\n", include_str!("push.lua"));

/// Reads up to `count` new entries of one lane, stopping once `max_bytes`
/// of payload are read, and moves them from `ready` to `taken`. A lane
/// that has fewer than its count says gets its count dropped; a lane that
/// does not exist has none.
/// KEYS: lane, ready, taken. ARGV: group, consumer, count, max_bytes,
/// tenant.
pub(super) const TAKE: &str = concat!("\n", include_str!("take.lua"));

/// Acks and deletes entries of one lane; only what XDEL removed leaves the
/// byte count, so an entry acked twice (claimed meanwhile by another
/// consumer) is not subtracted twice.
/// KEYS: lane, taken, bytes. ARGV: group, tenant, then id and size pairs.
pub(super) const ACK: &str = concat!("\n", include_str!("ack.lua"));

/// Moves one entry of an older version's single stream into its lane
/// (the bytes are counted already). KEYS: old stream, lane, ready, lanes,
/// signal. ARGV: id, payload, tenant, group.
pub(super) const MIGRATE: &str = concat!("\n", include_str!("migrate.lua"));
