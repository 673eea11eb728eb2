//! One budget for everything an instance holds: the sum of its linear
//! memories and its tables (each element counted as `TABLE_ELEMENT_BYTES`)
//! stays under the instance's memory limit. (wasmtime's `StoreLimits`
//! applies its size to each memory on its own and leaves tables unbounded,
//! so a guest with four memories, or a huge table, could hold several
//! times its limit.)

use wasmtime::ResourceLimiter;

/// What a table element is counted as: a reference (pointer and type).
pub const TABLE_ELEMENT_BYTES: usize = 16;
/// Instances, tables and memories a component may create.
const MAX_INSTANCES: usize = 16;
const MAX_TABLES: usize = 16;
const MAX_MEMORIES: usize = 4;

pub struct InstanceLimiter {
    budget: usize,
    used: usize,
    /// The last growth granted, taken back if wasmtime then fails it.
    last: usize,
}

impl InstanceLimiter {
    pub fn new(budget: usize) -> Self {
        InstanceLimiter {
            budget,
            used: 0,
            last: 0,
        }
    }

    /// Bytes of memories and tables the instance holds.
    pub fn used(&self) -> usize {
        self.used
    }

    fn grow(&mut self, extra: usize) -> bool {
        match self.used.checked_add(extra) {
            Some(total) if total <= self.budget => {
                self.used = total;
                self.last = extra;
                true
            }
            _ => false,
        }
    }

    fn undo_last(&mut self) {
        self.used -= self.last;
        self.last = 0;
    }
}

impl ResourceLimiter for InstanceLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grow(desired.saturating_sub(current)))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.undo_last();
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grow(desired.saturating_sub(current).saturating_mul(TABLE_ELEMENT_BYTES)))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.undo_last();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut l = InstanceLimiter::new(64 * MIB);
        // Two memories of 30 MiB fit; a third of 30 does not, though each
        // alone is under the budget.
        assert!(l.memory_growing(0, 30 * MIB, None).expect("ok"));
        assert!(l.memory_growing(0, 30 * MIB, None).expect("ok"));
        assert!(!l.memory_growing(0, 30 * MIB, None).expect("ok"));
        assert_eq!(l.used, 60 * MIB);
        // Tables count too: 4 MiB left is 262,144 elements.
        assert!(!l.table_growing(0, 300_000, None).expect("ok"));
        assert!(l.table_growing(0, 200_000, None).expect("ok"));
        assert_eq!(l.used, 60 * MIB + 200_000 * TABLE_ELEMENT_BYTES);
        // A growth wasmtime then fails is given back.
        let before = l.used;
        assert!(l.memory_growing(30 * MIB, 30 * MIB + 64 * 1024, None).expect("ok"));
        l.memory_grow_failed(wasmtime::Error::msg("over the memory's maximum"))
            .expect("ok");
        assert_eq!(l.used, before);
        // Growing in place counts only the growth.
        let mut l = InstanceLimiter::new(64 * MIB);
        assert!(l.memory_growing(0, 32 * MIB, None).expect("ok"));
        assert!(l.memory_growing(32 * MIB, 64 * MIB, None).expect("ok"));
        assert!(!l.memory_growing(64 * MIB, 64 * MIB + 65536, None).expect("ok"));
    }
}
