//! `reseal`: offline Sysprep for Windows images. A thin command line over the `reseal` library.
//! An image is a directory (a mounted or extracted Windows volume) or a WIM file (`--index`
//! chooses the image).
//!
//! Exit codes: 0 done; 2 usage; 3 refused by validation (nothing written); 4 corrupt or
//! unsupported input (nothing written); 1 any other failure (nothing half-written).

mod docs_cmd;
mod hive_cmd;
mod image_cmd;
mod progress_bar;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "reseal",
    version,
    about = "Offline Sysprep: generalize a Windows image without booting it",
    long_about = "Offline Sysprep: generalize a Windows image without booting it.\n\nIMAGE is a \
                  directory holding an offline Windows installation, or a WIM file \
                  (--index N|NAME|all chooses the image)."
)]
struct Cli {
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what makes the image one machine, and its setup state, without changing anything.
    Inspect(image_cmd::InspectArgs),
    /// Generalize the image as `sysprep /generalize /oobe` (or `/audit`) would.
    Generalize(image_cmd::GeneralizeArgs),
    /// Reseal without generalizing, as `sysprep /oobe` or `sysprep /audit` would.
    Reseal(image_cmd::ResealArgs),
    /// Finish or roll back a run that was interrupted in a directory image (every command also
    /// does this first). A WIM never needs it: its edits are committed by rewriting its header last.
    Recover(image_cmd::RecoverArgs),
    /// Look at or edit one registry hive file.
    Hive {
        /// The hive file (its .LOG1/.LOG2 beside it are replayed).
        file: PathBuf,
        #[command(subcommand)]
        command: hive_cmd::HiveCommand,
    },
    /// Print the shell completion script for SHELL.
    ///
    /// For example: `reseal completions bash > ~/.local/share/bash-completion/completions/reseal`
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the reseal(1) man page (`reseal man | man -l -` shows it).
    Man {
        /// Write reseal.1 and one page per subcommand (reseal-generalize.1, reseal-hive-ls.1, ...)
        /// into DIR instead, creating it if missing.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

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
        let code = if error.is_corrupt_input() {
            Self::CORRUPT
        } else if matches!(
            error,
            reseal_hive::Error::InvalidArgument(_) | reseal_hive::Error::KeyNotFound(_)
        ) {
            Self::USAGE
        } else {
            Self::OTHER
        };
        CliError {
            message: format!("{}: {error}", file.display()),
            code,
        }
    }
}

impl From<reseal::Error> for CliError {
    fn from(error: reseal::Error) -> Self {
        let code = u8::try_from(error.exit_code()).unwrap_or(Self::OTHER);
        CliError {
            message: error.to_string(),
            code,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => image_cmd::inspect(args, cli.json),
        Command::Generalize(args) => image_cmd::generalize(args, cli.json),
        Command::Reseal(args) => image_cmd::reseal(args, cli.json),
        Command::Recover(args) => image_cmd::recover(args, cli.json),
        Command::Hive { file, command } => hive_cmd::run(&file, command, cli.json),
        Command::Completions { shell } => docs_cmd::completions(shell, Cli::command()),
        Command::Man { out_dir } => docs_cmd::man(out_dir.as_deref(), Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("reseal: {error}");
            ExitCode::from(error.code)
        }
    }
}
