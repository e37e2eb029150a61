//! `reseal`: offline Sysprep for Windows images. A thin command line over the `reseal` library.
//! An image is a directory (a mounted or extracted Windows volume), a WIM file (`--index`
//! chooses the image) or a disk image in one of `image_cmd::disk_formats` (`--partition`
//! chooses the volume).
//!
//! Exit codes: 0 done; 2 usage; 3 refused by validation (nothing written); 4 corrupt or
//! unsupported input (nothing written); 5 `verify`: the image is not armed as Sysprep leaves it;
//! 6 the image is in use by another reseal run (nothing read or written; generalize, reseal and
//! recover take `--wait` to wait for it instead); 1 any other failure (nothing half-written).
//!
//! Output to a closed pipe (`reseal inspect IMAGE --json | head -1`) is dropped: the command
//! finishes its work and exits as it would have (0 when it succeeded), without a message.

/// `print!` that survives a closed stdout: see [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that survives a closed stdout: see [`write_stdout`].
macro_rules! outln {
    () => {
        $crate::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod docs_cmd;
mod error;
mod hive_cmd;
mod image_cmd;
mod newsid_cmd;
mod operations_cmd;
mod progress_bar;
mod run_log;
mod verify_cmd;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{CommandFactory, Parser, Subcommand};

pub use error::CliError;

#[derive(Parser, Debug)]
#[command(
    name = "reseal",
    version,
    about = "Offline Sysprep: generalize a Windows image without booting it",
    long_about = format!(
        "Offline Sysprep: generalize a Windows image without booting it.\n\nIMAGE is a \
         directory holding an offline Windows installation, a WIM file (--index N|NAME|all \
         chooses the image), or a disk image: {} (--partition N chooses the Windows volume \
         when it has several).",
        image_cmd::disk_formats()
    )
)]
struct Cli {
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Write a timestamped log of the run to FILE, whatever its outcome: the arguments, the
    /// target, each check and change, the phase timings, the outcome and the exit code.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Print only errors: no text report, no notices, no progress bar (--json documents,
    /// completion scripts and man pages are still printed).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print on stderr what --log records.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what makes the image one machine, and its setup state, without changing anything
    /// (a run that was interrupted in the image is finished or rolled back first).
    Inspect(image_cmd::InspectArgs),
    /// Generalize the image as `sysprep /generalize /oobe` (or `/audit`) would.
    Generalize(image_cmd::GeneralizeArgs),
    /// Reseal without generalizing, as `sysprep /oobe` or `sysprep /audit` would.
    Reseal(image_cmd::ResealArgs),
    /// Rename the machine in place without generalizing (for a clone): the computer name in every
    /// registry value that holds it, and optionally its description; nothing else changes.
    Set(image_cmd::SetArgs),
    /// Give the image a new machine SID in place, without generalize, specialize or OOBE.
    Newsid(newsid_cmd::NewSidArgs),
    /// Check, without changing anything, that the image's next boot runs setup into OOBE (or
    /// audit mode) as Sysprep leaves it; exit code 5 and one line per failed check when not
    /// (exit code 1 while a run interrupted in the image waits for `reseal recover`).
    Verify(verify_cmd::VerifyArgs),
    /// Finish or roll back a run that was interrupted in a directory or a disk image (every
    /// command but verify also does this first). A WIM never needs it: its edits are committed
    /// by rewriting its header last.
    #[command(long_about = format!(
        "Finish or roll back a run that was interrupted in a directory or a disk image ({}; \
         every command but verify also does this first). A WIM never needs it: its edits are \
         committed by rewriting its header last.",
        image_cmd::disk_formats()
    ))]
    Recover(image_cmd::RecoverArgs),
    /// List every provider and validation check that generalize and reseal run, with what each
    /// does and whether it runs by default (the names --operations takes).
    ListOperations,
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

/// Set when writing to stdout failed for another reason than a closed pipe.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);
/// Set by `--quiet` for a command's text output: it is dropped, errors alone are printed.
static TEXT_SILENCED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout, unless `--quiet` silenced the text output. A reader that went away
/// (`| head -1`) is no failure of the command: the rest of the output is dropped and the
/// command goes on with its work. Any other write error is told once on stderr and makes the
/// exit code 1.
pub(crate) fn write_stdout(args: std::fmt::Arguments) {
    if TEXT_SILENCED.load(Ordering::Relaxed) {
        return;
    }
    let Err(error) = std::io::stdout().lock().write_fmt(args) else {
        return;
    };
    if error.kind() != std::io::ErrorKind::BrokenPipe
        && !STDOUT_FAILED.swap(true, Ordering::Relaxed)
    {
        eprintln!("reseal: cannot write to stdout: {error}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = if cli.quiet {
        run_log::Verbosity::Quiet
    } else if cli.verbose {
        run_log::Verbosity::Verbose
    } else {
        run_log::Verbosity::Normal
    };
    if let Err(message) = run_log::start(cli.log.clone(), verbosity) {
        eprintln!("reseal: {message}; nothing was done");
        return ExitCode::from(CliError::USAGE);
    }
    // --json documents were asked for, and completion scripts and man pages are files, not
    // reports: --quiet leaves them alone.
    let is_document = cli.json
        || matches!(
            cli.command,
            Command::Completions { .. } | Command::Man { .. }
        );
    TEXT_SILENCED.store(cli.quiet && !is_document, Ordering::Relaxed);
    run_log::record(format!("reseal {}", env!("CARGO_PKG_VERSION")));
    let arguments: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    run_log::record(format!("arguments: {}", arguments.join(" ")));
    let result = match cli.command {
        Command::Inspect(args) => image_cmd::inspect(args, cli.json),
        Command::Generalize(args) => image_cmd::generalize(args, cli.json),
        Command::Reseal(args) => image_cmd::reseal(args, cli.json),
        Command::Set(args) => image_cmd::set(args, cli.json),
        Command::Newsid(args) => newsid_cmd::newsid(args, cli.json),
        Command::Verify(args) => verify_cmd::verify(args, cli.json),
        Command::Recover(args) => image_cmd::recover(args, cli.json),
        Command::ListOperations => operations_cmd::list(cli.json),
        Command::Hive { file, command } => hive_cmd::run(&file, command, cli.json),
        Command::Completions { shell } => docs_cmd::completions(shell, Cli::command()),
        Command::Man { out_dir } => docs_cmd::man(out_dir.as_deref(), Cli::command()),
    };
    let code = match &result {
        Ok(()) if STDOUT_FAILED.load(Ordering::Relaxed) => CliError::OTHER,
        Ok(()) => 0,
        Err(error) => {
            eprintln!("reseal: {error}");
            error.code
        }
    };
    match &result {
        Ok(()) => run_log::record(format!("outcome: done, exit code {code}")),
        Err(error) => run_log::record(format!("outcome: failed with exit code {code}: {error}")),
    }
    match run_log::finish() {
        Ok(()) => ExitCode::from(code),
        Err(message) => {
            eprintln!("reseal: {message}");
            ExitCode::from(if code == 0 { CliError::OTHER } else { code })
        }
    }
}
