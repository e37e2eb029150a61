//! Errors: what went wrong, in which file, about which of the caller's inputs, what the caller
//! can do next, and the lower-level error it comes from.
//!
//! The library speaks of inputs and remedies as values ([`Input`], [`Remedy`]), not in any
//! front end's words: a command line maps them to its flags and commands, and its exit codes to
//! [`ErrorKind`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// The class of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller asked for something impossible (bad option, bad path, bad SID).
    Usage,
    /// A check refused the image (domain-joined, pending servicing...). Nothing was written.
    Refused,
    /// A file of the image is damaged or uses a structure reseal cannot edit safely (hive, event
    /// log, journal, container, file system).
    CorruptInput,
    /// Another reseal run holds the image (see [`crate::lock`]); nothing was read or written.
    InUse,
    /// Anything else: I/O errors, an image that changed under us.
    Other,
}

/// The caller's input an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Input {
    /// The image of a WIM file ([`crate::OpenOptions::index`]).
    Index,
    /// The partition of a disk image ([`crate::OpenOptions::partition`]).
    Partition,
    /// The differencing disk to write into ([`crate::OpenOptions::output_diff`]).
    OutputDiff,
    /// The new WIM file to copy the image to and edit ([`crate::run::RunOptions::output`]).
    Output,
    /// The new machine SID ([`crate::GeneralizeOptions::sid`]).
    Sid,
    /// A check to skip ([`crate::GeneralizeOptions::ignore_checks`]).
    IgnoreCheck,
    /// The providers and checks to run ([`crate::GeneralizeOptions::operations`]).
    Operations,
}

impl Input {
    /// How the library names the input in its own messages.
    pub fn description(self) -> &'static str {
        match self {
            Input::Index => "image index",
            Input::Partition => "partition",
            Input::OutputDiff => "output differencing disk",
            Input::Output => "output WIM",
            Input::Sid => "machine SID",
            Input::IgnoreCheck => "check to skip",
            Input::Operations => "operation",
        }
    }
}

/// What the caller can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Remedy {
    /// An interrupted run must be finished or undone first ([`crate::recover`]).
    Recover,
    /// The run passed its commit point; [`crate::recover`] (or the next run) finishes it.
    FinishCommittedRun,
    /// Finishing an interrupted run failed; fix the cause and recover again.
    RecoverAgain,
    /// The WIM holds several images: choose one by index or name, or all of them.
    ChooseWimImage,
    /// The disk holds several Windows installations: choose the partition.
    ChoosePartition,
    /// Fix the image, or skip the failed checks when the result is known to be safe.
    FixOrSkipChecks,
    /// Another run holds the image: wait for it to finish (or ask to wait for the lock).
    WaitForOtherRun,
}

impl Remedy {
    /// How the library words the remedy in its own messages.
    pub fn description(self) -> &'static str {
        match self {
            Remedy::Recover => "recover the image first (it finishes or undoes that run)",
            Remedy::FinishCommittedRun => "the run is committed: recover the image to finish it",
            Remedy::RecoverAgain => "fix the cause and recover the image again",
            Remedy::ChooseWimImage => "choose one by index or name, or all",
            Remedy::ChoosePartition => "choose the partition",
            Remedy::FixOrSkipChecks => {
                "fix the image, or skip a check by name if you know the result is safe"
            }
            Remedy::WaitForOtherRun => "wait for it to finish, or ask to wait for the image",
        }
    }
}

/// A reseal error: its kind, the image file it concerns (if any), the caller's input it is about
/// (if any), a message that says why, what to do about it (if anything), and the lower-level
/// error it comes from.
///
/// `Display` gives the whole message (a wrapped error's text is its message); the
/// [`std::error::Error::source`] is there to be matched by a program (a
/// [`reseal_hive::Error`], [`reseal_wim::Error`], [`reseal_disk::Error`],
/// [`reseal_ntfs::Error`] or [`std::io::Error`]).
#[derive(Debug, Clone)]
pub struct Error {
    /// The class of the error.
    pub kind: ErrorKind,
    /// The file the error is about: a path inside the image, or a host path.
    pub file: Option<String>,
    /// The caller's input the error is about.
    pub input: Option<Input>,
    /// The value the caller gave that input, when the error is about that value.
    pub value: Option<String>,
    /// What went wrong.
    pub message: String,
    /// What the caller can do about it.
    pub remedy: Option<Remedy>,
    /// The lower-level error this one comes from.
    pub source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

/// A `Result` whose error is [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` with `message` and nothing else.
    fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            file: None,
            input: None,
            value: None,
            message: message.into(),
            remedy: None,
            source: None,
        }
    }

    /// A caller mistake.
    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage, message)
    }

    /// A caller mistake in `input`.
    pub fn bad_input(input: Input, message: impl Into<String>) -> Error {
        Error {
            input: Some(input),
            ..Error::usage(message)
        }
    }

    /// A caller mistake: `value`, given as `input`.
    pub fn bad_value(input: Input, value: impl fmt::Display, message: impl Into<String>) -> Error {
        Error {
            value: Some(value.to_string()),
            ..Error::bad_input(input, message)
        }
    }

    /// A refusal by a check.
    pub fn refused(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Refused, message)
    }

    /// A damaged file.
    pub fn corrupt(file: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            file: Some(file.into()),
            ..Error::new(ErrorKind::CorruptInput, message)
        }
    }

    /// Any other failure, about `file` when one is known.
    pub fn other(file: Option<&str>, message: impl Into<String>) -> Error {
        Error {
            file: file.map(str::to_string),
            ..Error::new(ErrorKind::Other, message)
        }
    }

    /// An I/O error on `file`, with what was being done (`"cannot read"`, `"cannot rename"`...).
    pub fn io(file: impl Into<String>, doing: &str, err: &std::io::Error) -> Error {
        Error {
            file: Some(file.into()),
            source: Some(Arc::new(std::io::Error::new(err.kind(), err.to_string()))),
            ..Error::new(ErrorKind::Other, format!("{doing}: {err}"))
        }
    }

    /// An error of `kind` whose message is `source`'s text, keeping `source`.
    pub fn wrap(
        kind: ErrorKind,
        file: Option<&str>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error {
            file: file.map(str::to_string),
            ..Error::new(kind, source.to_string())
        }
        .with_source(source)
    }

    /// This error, keeping `source` as the lower-level error it comes from.
    pub fn with_source(self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error {
            source: Some(Arc::new(source)),
            ..self
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
        Error::wrap(kind, Some(file), err)
    }

    /// The error for something this kind of target cannot do (`what`, e.g. "replacing a SID in
    /// file security descriptors"); [`Error::is_unsupported`] tells it apart.
    pub fn unsupported(target: &str, what: &str) -> Error {
        Error::other(
            None,
            format!("{target}: {what} is not supported for this kind of image"),
        )
        .with_source(Unsupported)
    }

    /// `true` for an [`Error::unsupported`] error.
    pub fn is_unsupported(&self) -> bool {
        self.source
            .as_deref()
            .is_some_and(|source| source.downcast_ref::<Unsupported>().is_some())
    }

    /// The error for an image in which an interrupted run waits to be finished or undone.
    pub fn interrupted_run(image: &str) -> Error {
        Error {
            remedy: Some(Remedy::Recover),
            ..Error::other(
                None,
                format!("{image}: an earlier reseal run on this image was interrupted"),
            )
        }
    }

    /// The error for an image another reseal run holds (`pid`, when it is known).
    pub fn in_use(image: &str, pid: Option<u32>) -> Error {
        let holder = pid.map_or_else(|| "pid unknown".to_string(), |pid| format!("pid {pid}"));
        Error {
            remedy: Some(Remedy::WaitForOtherRun),
            ..Error::new(
                ErrorKind::InUse,
                format!("{image} is in use by another reseal run ({holder})"),
            )
        }
    }

    /// This error with its file named inside `image`, a target's description
    /// (`directory /mnt/win: Windows\System32\config\SAM`); an error about no file names the
    /// image. Left as it is when it names the image already: its file is the image's own
    /// description or a host path at or below `host` (the image file or folder, when known),
    /// or, without a file, its message names `host`.
    pub(crate) fn naming_image(self, image: &str, host: Option<&Path>) -> Error {
        let host = host.map(|host| host.display().to_string());
        let at_host = |text: &str| {
            host.as_deref().is_some_and(|host| {
                text == host
                    || text
                        .strip_prefix(host)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        };
        let file = match self.file.as_deref() {
            Some(file) if file.starts_with(image) || at_host(file) => return self,
            Some(file) => format!("{image}: {file}"),
            None if host
                .as_deref()
                .is_some_and(|host| self.message.contains(host)) =>
            {
                return self
            }
            None => image.to_string(),
        };
        Error {
            file: Some(file),
            ..self
        }
    }

    /// This error, saying that the run got past its commit point, so recovering the image (or
    /// the next run) finishes it.
    pub(crate) fn after_commit_point(self) -> Error {
        Error {
            remedy: Some(Remedy::FinishCommittedRun),
            ..self
        }
    }

    /// `true` when the run that failed got past its commit point: the image must be recovered
    /// (see [`crate::recover`]) to be entirely new.
    pub fn needs_recovery(&self) -> bool {
        self.remedy == Some(Remedy::FinishCommittedRun)
    }
}

/// The source of an [`Error::unsupported`] error.
#[derive(Debug, Clone, Copy)]
pub struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not supported for this kind of image")
    }
}

impl std::error::Error for Unsupported {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        match (self.input, &self.value) {
            (Some(input), Some(value)) => write!(f, "{} {value}: ", input.description())?,
            (Some(input), None) => write!(f, "{}: ", input.description())?,
            _ => {}
        }
        f.write_str(&self.message)?;
        if let Some(remedy) = self.remedy {
            write!(f, "; {}", remedy.description())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error names its image once: a file inside the image gets the image before it, an
    /// error that names the image (its description, or its host path in the file or the
    /// message) is left as it is.
    #[test]
    fn naming_image_names_the_image_once() {
        let image = "partition 2 of disks/d.vhdx";
        let host = Some(Path::new("disks/d.vhdx"));
        let shown = |error: Error| error.naming_image(image, host).to_string();
        assert_eq!(
            shown(Error::corrupt(r"Windows\System32\config\SAM", "bad cell")),
            r"partition 2 of disks/d.vhdx: Windows\System32\config\SAM: bad cell"
        );
        assert_eq!(
            shown(Error::refused("the image cannot be generalized safely")),
            "partition 2 of disks/d.vhdx: the image cannot be generalized safely"
        );
        for named in [
            Error::refused("disks/d.vhdx: Windows is hibernated (partition 2)"),
            Error::other(Some("disks/d.vhdx"), "cannot write"),
            Error::other(Some("disks/d.vhdx/redo"), "cannot write"),
            Error::other(Some(image), "cannot write"),
        ] {
            let before = named.to_string();
            assert_eq!(shown(named), before);
        }
        // Without a host path, only the description counts.
        let error = Error::corrupt(r"Windows\System32\config\SAM", "bad cell");
        assert_eq!(
            error.naming_image("directory /x", None).to_string(),
            r"directory /x: Windows\System32\config\SAM: bad cell"
        );
    }
}
