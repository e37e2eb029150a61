//! Errors: every variant that concerns the file's bytes carries the file offset it was found at.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading, replaying, editing or committing a hive.
///
/// Offsets are **file offsets** (from the start of the hive file, base block included), so a user
/// can look at the bytes with a hex editor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data ends before a structure that must be there.
    #[error(
        "truncated at file offset {offset:#x}: {what} needs {needed} bytes, {available} available"
    )]
    Truncated {
        offset: u64,
        what: &'static str,
        needed: u64,
        available: u64,
    },
    /// A signature (`regf`, `hbin`, `nk`, ...) is not what the structure needs.
    #[error("bad signature at file offset {offset:#x}: expected {expected:?}, found {found:?}")]
    BadSignature {
        offset: u64,
        expected: &'static str,
        found: String,
    },
    /// The base block's XOR checksum does not match and no log can repair it.
    #[error("base block checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadChecksum { stored: u32, computed: u32 },
    /// A format version, file type or layout this engine does not handle.
    #[error("unsupported hive: {0}")]
    Unsupported(String),
    /// A structure is present but its contents are impossible (bad offset, overlap, cycle, absurd count...).
    #[error("corrupt hive at file offset {offset:#x}: {reason}")]
    Corrupt { offset: u64, reason: String },
    /// A transaction log is corrupt in a way that stops replay before it could make the hive consistent.
    #[error("transaction log {log}: {reason}")]
    BadLog { log: String, reason: String },
    /// A key path does not exist.
    #[error("key not found: {0}")]
    KeyNotFound(String),
    /// A name or value that cannot be stored (too long, empty, contains a backslash...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An I/O error while reading or writing a file, with the path.
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            offset,
            reason: reason.into(),
        }
    }

    /// `true` when the error says the hive's bytes are bad (as opposed to a caller mistake or I/O).
    pub fn is_corrupt_input(&self) -> bool {
        matches!(
            self,
            Error::Truncated { .. }
                | Error::BadSignature { .. }
                | Error::BadChecksum { .. }
                | Error::Unsupported(_)
                | Error::Corrupt { .. }
                | Error::BadLog { .. }
        )
    }
}
