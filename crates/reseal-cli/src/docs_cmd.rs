//! `reseal completions SHELL` and `reseal man [--out-dir DIR]`: the shell completion scripts and
//! man pages a distribution package would install. `cargo install` only installs the binary, so
//! the binary prints them itself, generated from the same clap definition that parses the
//! arguments (they cannot drift from the real flags). Neither command opens an image.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use clap_complete::Shell;
use clap_mangen::Man;

use crate::CliError;

/// Prints the completion script for `shell` to stdout.
pub fn completions(shell: Shell, mut command: clap::Command) -> Result<(), CliError> {
    // Generated into memory first: clap_complete panics on a failed write, and a closed stdout
    // must not make reseal panic.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "reseal", &mut script);
    print_bytes(&script)
}

/// Prints the reseal(1) page to stdout, or, with `out_dir`, writes reseal.1 and one page per
/// subcommand (`reseal-generalize.1`, `reseal-hive-ls.1`, ...) into that folder.
pub fn man(out_dir: Option<&Path>, command: clap::Command) -> Result<(), CliError> {
    let command = built_for_man(command);
    match out_dir {
        None => print_bytes(&render(&command)?),
        Some(dir) => {
            fs::create_dir_all(dir)
                .map_err(|e| CliError::other(format!("{}: {e}", dir.display())))?;
            write_pages(&command, dir)
        }
    }
}

/// The command tree as the man pages show it. Building it gives every subcommand its full name
/// ("reseal-hive-ls" as the page name). The generated `help` subcommands are left out: `--help`
/// is documented on every page, and a page for `help` would only repeat the others.
fn built_for_man(command: clap::Command) -> clap::Command {
    let mut command = command.bin_name("reseal").disable_help_subcommand(true);
    command.build();
    add_parent_arguments_to_synopsis(&mut command);
    command
}

/// clap's synopsis names a nested subcommand by its parents' names only ("reseal hive ls"), but
/// `reseal hive` takes FILE before its subcommand: this puts each parent's required positional
/// arguments back ("reseal hive <FILE> ls"), as `--help` shows the usage.
fn add_parent_arguments_to_synopsis(command: &mut clap::Command) {
    let mut prefix = command
        .get_bin_name()
        .unwrap_or(command.get_name())
        .to_owned();
    for arg in command
        .get_positionals()
        .filter(|arg| arg.is_required_set())
    {
        let value_name = match arg.get_value_names() {
            Some([first, ..]) => first.to_string(),
            _ => arg.get_id().to_string().to_uppercase(),
        };
        prefix.push_str(&format!(" <{value_name}>"));
    }
    for subcommand in command.get_subcommands_mut() {
        subcommand.set_bin_name(format!("{prefix} {}", subcommand.get_name()));
        add_parent_arguments_to_synopsis(subcommand);
    }
}

/// Writes the page of `command`, then the pages of its subcommands, into `dir`.
fn write_pages(command: &clap::Command, dir: &Path) -> Result<(), CliError> {
    let path = dir.join(page(command).get_filename());
    fs::write(&path, render(command)?)
        .map_err(|e| CliError::other(format!("{}: {e}", path.display())))?;
    for subcommand in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(subcommand, dir)?;
    }
    Ok(())
}

/// The man page of one (built) command. Every page names the package and its version as its
/// source, the subcommand pages included (clap_mangen would use the subcommand's own name).
fn page(command: &clap::Command) -> Man {
    Man::new(command.clone()).source(format!("reseal {}", env!("CARGO_PKG_VERSION")))
}

/// The roff text of one (built) command's page.
fn render(command: &clap::Command) -> Result<Vec<u8>, CliError> {
    let mut roff = Vec::new();
    page(command)
        .render(&mut roff)
        .map_err(|e| CliError::other(format!("rendering the man page: {e}")))?;
    Ok(roff)
}

/// Writes `bytes` to stdout. A reader that went away early (`reseal man | head`) is not a
/// failure: the output simply ends there, as with other command-line tools.
fn print_bytes(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(CliError::other(format!("writing to stdout: {e}")))
        }
        _ => Ok(()),
    }
}
