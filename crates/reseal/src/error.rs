//! Errors: what went wrong, in which file, and the exit code a command line should use.

use std::fmt;

/// The class of an [`Error`]; it decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The caller asked for something impossible (bad option, bad path, bad SID). Exit code 2.
    Usage,
    /// A check refused the image (domain-joined, pending servicing...). Exit code 3.
    Refused,
    /// A file of the image is damaged (hive, event log, journal). Exit code 4.
    CorruptInput,
    /// Anything else: I/O errors, an image that changed under us. Exit code 1.
    Other,
}

/// A reseal error: its kind, the image file it concerns (if any) and a message that says why and
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The class of the error.
    pub kind: ErrorKind,
    /// The file the error is about: a path inside the image, or a host path.
    pub file: Option<String>,
    /// What went wrong and, where it helps, what to do about it.
    pub message: String,
}

/// A `Result` whose error is [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A caller mistake (exit code 2).
    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Usage,
            file: None,
            message: message.into(),
        }
    }

    /// A refusal by a check (exit code 3).
    pub fn refused(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Refused,
            file: None,
            message: message.into(),
        }
    }

    /// A damaged file (exit code 4).
    pub fn corrupt(file: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::CorruptInput,
            file: Some(file.into()),
            message: message.into(),
        }
    }

    /// Any other failure (exit code 1), about `file` when one is known.
    pub fn other(file: Option<&str>, message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Other,
            file: file.map(str::to_string),
            message: message.into(),
        }
    }

    /// An I/O error on `file`, with what was being done (`"cannot read"`, `"cannot rename"`...).
    pub fn io(file: impl Into<String>, doing: &str, err: &std::io::Error) -> Error {
        Error {
            kind: ErrorKind::Other,
            file: Some(file.into()),
            message: format!("{doing}: {err}"),
        }
    }

    /// Wraps a hive engine error about the hive `file`: damaged bytes become
    /// [`ErrorKind::CorruptInput`], the rest [`ErrorKind::Other`].
    pub fn from_hive(file: &str, err: reseal_hive::Error) -> Error {
        let kind = if err.is_corrupt_input() {
            ErrorKind::CorruptInput
        } else {
            ErrorKind::Other
        };
        Error {
            kind,
            file: Some(file.to_string()),
            message: err.to_string(),
        }
    }

    /// This error, saying that the run got past its commit point, so `reseal recover` (or the
    /// next run) finishes it.
    pub(crate) fn after_commit_point(self) -> Error {
        Error {
            message: format!(
                "{} (the run is committed: run `reseal recover` on the image to finish it)",
                self.message
            ),
            ..self
        }
    }

    /// The process exit code for this error: usage 2, refused 3, corrupt input 4, other 1.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Usage => 2,
            ErrorKind::Refused => 3,
            ErrorKind::CorruptInput => 4,
            ErrorKind::Other => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}
