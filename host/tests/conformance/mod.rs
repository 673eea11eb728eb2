//! Conformance suites, one per backend trait.

pub mod index;
pub mod metadata;
pub mod queue;
pub mod raw;
