//! The one vocabulary of backend failures. Every backend (queue, metadata
//! store, raw store, search index, and the object folders for dead letters
//! and shared plugins) reports a [`BackendError`]: which backend, what
//! *kind* of failure, and the library's own error as the source. Callers
//! decide from the kind alone: the processor whether and when to retry a
//! batch (`pipeline::retry`), the API which status to answer
//! (`api::error`). Only the module that knows a library turns its errors
//! into a kind.

use std::fmt;

/// What kind of failure, as far as a caller needs to know to act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Down, unreachable, timed out, or failing for reasons of its own:
    /// the same request may work later.
    Unavailable,
    /// Refused this input for good (too large, invalid for the schema):
    /// sending the same input again will not help.
    Rejected,
    /// Over its capacity right now (a full queue, a 429): try again later,
    /// and slower.
    Full,
    /// What it holds cannot be read back.
    Corrupt,
    /// What was asked for is not there.
    NotFound,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Full => "full",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::NotFound => "not_found",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which backend failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Queue,
    Metadata,
    Raw,
    Index,
    /// Dead letters: a local directory, or a folder of the shared bucket.
    DeadLetters,
    /// Tenants' plugins shared between processors through the bucket.
    Plugins,
}

impl Backend {
    /// As users read it in messages: "the metadata store is unavailable".
    pub fn name(self) -> &'static str {
        match self {
            Backend::Queue => "queue",
            Backend::Metadata => "metadata store",
            Backend::Raw => "raw store",
            Backend::Index => "search index",
            Backend::DeadLetters => "dead-letter store",
            Backend::Plugins => "plugin store",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A backend failure: which backend, what kind, and why.
#[derive(Debug, thiserror::Error)]
#[error("{backend} ({kind}): {source}")]
pub struct BackendError {
    pub backend: Backend,
    pub kind: ErrorKind,
    #[source]
    source: Source,
}

impl BackendError {
    pub fn new(backend: Backend, kind: ErrorKind, source: impl Into<Source>) -> Self {
        BackendError {
            backend,
            kind,
            source: source.into(),
        }
    }

    pub fn unavailable(backend: Backend, source: impl Into<Source>) -> Self {
        Self::new(backend, ErrorKind::Unavailable, source)
    }

    pub fn corrupt(backend: Backend, source: impl Into<Source>) -> Self {
        Self::new(backend, ErrorKind::Corrupt, source)
    }

    pub fn rejected(backend: Backend, source: impl Into<Source>) -> Self {
        Self::new(backend, ErrorKind::Rejected, source)
    }

    /// A file or disk error of an embedded backend: a missing file is not
    /// found, anything else (disk full, permissions) is the backend being
    /// unusable until an operator acts.
    pub fn io(backend: Backend, e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => ErrorKind::Full,
            std::io::ErrorKind::InvalidData => ErrorKind::Corrupt,
            _ => ErrorKind::Unavailable,
        };
        Self::new(backend, kind, e)
    }

    /// The library's error, for logs.
    pub fn source_message(&self) -> String {
        self.source.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_backend_and_the_kind() {
        let e = BackendError::unavailable(Backend::Metadata, "connection refused");
        assert_eq!(e.to_string(), "metadata store (unavailable): connection refused");
        assert_eq!(e.kind, ErrorKind::Unavailable);
        let full = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        assert_eq!(BackendError::io(Backend::Queue, full).kind, ErrorKind::Full);
        let gone = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert_eq!(BackendError::io(Backend::Raw, gone).kind, ErrorKind::NotFound);
    }
}
