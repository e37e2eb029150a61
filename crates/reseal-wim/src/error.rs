//! Errors: each names the WIM file, the on-disk structure and the reason.

use std::fmt;
use std::path::PathBuf;

/// A structure of the file that cannot be used, before the file name is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub structure: &'static str,
    pub reason: String,
    /// `true` for valid WIMs using a feature this crate does not handle (split, pipable...).
    pub unsupported: bool,
}

impl Malformed {
    pub fn new(structure: &'static str, reason: impl Into<String>) -> Self {
        Self {
            structure,
            reason: reason.into(),
            unsupported: false,
        }
    }

    pub fn unsupported(structure: &'static str, reason: impl Into<String>) -> Self {
        Self {
            structure,
            reason: reason.into(),
            unsupported: true,
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.structure, self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {action}: {source}", file.display())]
    Io {
        file: PathBuf,
        action: String,
        source: std::io::Error,
    },
    #[error("{}: invalid {}: {}", file.display(), malformed.structure, malformed.reason)]
    Corrupt { file: PathBuf, malformed: Malformed },
    #[error("{}: unsupported {}: {}", file.display(), malformed.structure, malformed.reason)]
    Unsupported { file: PathBuf, malformed: Malformed },
    #[error("{}: {reason}", file.display())]
    Usage { file: PathBuf, reason: String },
}

impl Error {
    pub(crate) fn from_malformed(file: &std::path::Path, malformed: Malformed) -> Self {
        let file = file.to_path_buf();
        if malformed.unsupported {
            Error::Unsupported { file, malformed }
        } else {
            Error::Corrupt { file, malformed }
        }
    }

    pub(crate) fn io(
        file: &std::path::Path,
        action: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            file: file.to_path_buf(),
            action: action.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
