//! Errors on their way to the user: the message in the command line's words, and the exit code.
//!
//! Exit codes: 0 done; 2 usage; 3 refused by validation (nothing written); 4 corrupt or
//! unsupported input (nothing written); 5 `verify`: the image is not armed as Sysprep leaves it;
//! 6 the image is in use by another reseal run (nothing read or written; `--wait` waits);
//! 1 any other failure (nothing half-written).

use std::fmt;
use std::path::Path;

use reseal::{ErrorKind, Input, Remedy};

/// An error on its way to the user: the message (naming the file and the reason) and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    pub const USAGE: u8 = 2;
    pub const REFUSED: u8 = 3;
    pub const CORRUPT: u8 = 4;
    pub const OTHER: u8 = 1;
    /// `reseal verify`: the image is not armed for the mode asked for.
    pub const NOT_ARMED: u8 = 5;
    /// Another reseal run holds the image.
    pub const IN_USE: u8 = 6;

    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: Self::USAGE,
        }
    }
    /// A failure that is neither the user's input nor the image's: exit code 1.
    pub fn other(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: Self::OTHER,
        }
    }
    /// `reseal verify` found the image not armed: exit code 5.
    pub fn not_armed(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: Self::NOT_ARMED,
        }
    }
    pub fn corrupt(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: Self::CORRUPT,
        }
    }
    /// A key or value that the user named does not exist: a usage error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::usage(message)
    }
    /// A hive engine error on `file`: corrupt input (4) or another failure (1).
    pub fn hive(file: &Path, error: reseal_hive::Error) -> Self {
        let code = match &error {
            error if error.is_corrupt_input() => Self::CORRUPT,
            reseal_hive::Error::InvalidArgument(_) | reseal_hive::Error::KeyNotFound(_) => {
                Self::USAGE
            }
            // As for an image path that does not exist.
            reseal_hive::Error::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Self::USAGE
            }
            _ => Self::OTHER,
        };
        // An I/O error names its file already.
        let message = match &error {
            reseal_hive::Error::Io { path, .. } if path == file => error.to_string(),
            _ => format!("{}: {error}", file.display()),
        };
        CliError { message, code }
    }
}

impl From<reseal::Error> for CliError {
    /// The library's error in the command line's words: its input as the flag that gave it, its
    /// remedy as the flag or command to use, and the exit code for its kind.
    fn from(error: reseal::Error) -> Self {
        let mut message = String::new();
        if let Some(file) = &error.file {
            message.push_str(&format!("{file}: "));
        }
        match (error.input, &error.value) {
            (Some(input), Some(value)) => message.push_str(&format!("{} {value}: ", flag(input))),
            (Some(input), None) => message.push_str(&format!("{}: ", flag(input))),
            _ => {}
        }
        message.push_str(&error.message);
        if let Some(remedy) = error.remedy {
            message.push_str(remedy_text(remedy));
        }
        CliError {
            message,
            code: exit_code(error.kind),
        }
    }
}

/// The exit code for an error of `kind`.
fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Usage => CliError::USAGE,
        ErrorKind::Refused => CliError::REFUSED,
        ErrorKind::CorruptInput => CliError::CORRUPT,
        ErrorKind::InUse => CliError::IN_USE,
        _ => CliError::OTHER,
    }
}

/// The flag that gives `input`.
fn flag(input: Input) -> &'static str {
    match input {
        Input::Index => "--index",
        Input::Partition => "--partition",
        Input::OutputDiff => "--output-diff",
        Input::Output => "--output",
        Input::Sid => "--sid",
        Input::IgnoreCheck => "--ignore-check",
        Input::Operations => "--operations",
        _ => "an option",
    }
}

/// What to do about an error, with the flags and commands that do it.
fn remedy_text(remedy: Remedy) -> &'static str {
    match remedy {
        Remedy::Recover => {
            "; run `reseal recover` on it first (it finishes or undoes that run)"
        }
        Remedy::FinishCommittedRun => {
            " (the run is committed: run `reseal recover` on the image to finish it)"
        }
        Remedy::RecoverAgain => "; fix the cause and run `reseal recover` again",
        Remedy::ChooseWimImage => "; choose one with --index N or NAME (or all)",
        Remedy::ChoosePartition => "; choose one with --partition N",
        Remedy::FixOrSkipChecks => {
            "\nFix the image, or skip a check with --ignore-check NAME if you know the result is safe."
        }
        Remedy::WaitForOtherRun => "; wait for it to finish, or run again with --wait",
        _ => "",
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::CliError;

    /// docs/exit-codes.md has a row for every exit code the binary gives, and no other.
    #[test]
    fn the_exit_code_table_lists_every_code() {
        let page = include_str!("../../../docs/exit-codes.md");
        let mut documented: Vec<u8> = page
            .lines()
            .filter_map(|line| line.strip_prefix("| ")?.split(' ').next()?.parse().ok())
            .collect();
        documented.sort_unstable();
        let mut given = vec![
            0,
            CliError::OTHER,
            CliError::USAGE,
            CliError::REFUSED,
            CliError::CORRUPT,
            CliError::NOT_ARMED,
            CliError::IN_USE,
        ];
        given.sort_unstable();
        assert_eq!(documented, given);
    }
}
