//! Errors of the container and partition layer. Every error names the file it concerns.

use std::io;
use std::path::PathBuf;

/// A failure to open, read or write a disk image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused an operation on the file.
    #[error("{}: {action}: {source}", .path.display())]
    Io {
        path: PathBuf,
        action: String,
        #[source]
        source: io::Error,
    },
    /// An on-disk structure is damaged: bad signature, checksum, size or offset.
    #[error("{}: corrupt {structure}: {reason}", .path.display())]
    Corrupt {
        path: PathBuf,
        structure: &'static str,
        reason: String,
    },
    /// A valid structure uses a feature this crate does not implement.
    #[error("{}: unsupported {structure}: {reason}", .path.display())]
    Unsupported {
        path: PathBuf,
        structure: &'static str,
        reason: String,
    },
    /// The parent of a differencing disk cannot be found.
    #[error("{}: missing differencing parent {parent_name:?} (looked for {tried})", .path.display())]
    MissingParent {
        path: PathBuf,
        parent_name: String,
        tried: String,
    },
    /// A parent was found but it is not the disk the child was made from.
    #[error("{}: differencing parent {} does not match: {reason}", .path.display(), .parent.display())]
    ParentMismatch {
        path: PathBuf,
        parent: PathBuf,
        reason: String,
    },
    /// The file a differencing disk's parent locator leads to cannot be opened as its parent.
    #[error("{}: its parent locator {locator:?} leads to {}, which cannot be its parent: {source}", .path.display(), .parent.display())]
    UnusableParent {
        path: PathBuf,
        parent: PathBuf,
        /// The path as the child records it.
        locator: String,
        #[source]
        source: Box<Error>,
    },
    /// A read or write reaches past the end of the device.
    #[error("{}: {len} bytes at offset {offset} reach past the end of the device ({size} bytes)", .path.display())]
    OutOfRange {
        path: PathBuf,
        offset: u64,
        len: u64,
        size: u64,
    },
    /// A write on a device opened read-only.
    #[error("{}: opened read-only", .path.display())]
    ReadOnly { path: PathBuf },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        structure: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            path: path.into(),
            structure,
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(
        path: impl Into<PathBuf>,
        structure: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Error::Unsupported {
            path: path.into(),
            structure,
            reason: reason.into(),
        }
    }

    /// `source`, the failure to open `parent` (found through `locator`) as the parent of
    /// `path`. A missing or mismatched grandparent already names the disk it belongs to.
    pub(crate) fn unusable_parent(
        path: &std::path::Path,
        parent: &std::path::Path,
        locator: String,
        source: Error,
    ) -> Self {
        match source {
            Error::MissingParent { .. } | Error::ParentMismatch { .. } => source,
            source => Error::UnusableParent {
                path: path.to_path_buf(),
                parent: parent.to_path_buf(),
                locator,
                source: Box::new(source),
            },
        }
    }

    /// The operating system gave no random bytes for a new GUID of `path`.
    pub(crate) fn no_random(path: impl Into<PathBuf>, error: reseal_nt::GuidError) -> Self {
        Error::io(
            path,
            "making a new GUID",
            io::Error::other(error.to_string()),
        )
    }

    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: impl Into<String>,
        source: io::Error,
    ) -> Self {
        Error::Io {
            path: path.into(),
            action: action.into(),
            source,
        }
    }
}
