//! `cargo xtask`: the project's chores, so a fresh machine needs only Rust and these commands.
//!
//! - `setup`: installs the system packages the build and the tests use (apt-get) and the pinned
//!   libvhdi-python and libvmdk-python in a virtualenv under the target dir (pip); idempotent.
//! - `test`: setup, then formatting, clippy and the whole test suite, exactly as CI runs it.
//! - `demo`: setup, build, and generalize a copy of the bundled sample image, showing before/after.
//! - `fixtures`: regenerates `fixtures/sample/` and `fixtures/sample.wim` from `fixtures/spec/`.
//! - `bench`: benchmarks (see docs/PERFORMANCE.md).
//! - `bindgen`: rewrites the checked-in libntfs-3g bindings from the installed headers.
//! - `fresh`: the README's two commands inside a bare Debian 12 root (see `fresh.rs`).
//! - `dist`: the release bundle, checked in a bare Debian 12 root (see `dist.rs`).
//! - `fuzz`: builds the fuzz targets of `fuzz/` and runs each for a bounded time (see `fuzz.rs`).
//!
//! xtask itself builds with nothing but Rust (`tests/rust_alone.rs` holds it to that): it
//! links no C library and depends on none of the native crates; every system tool, and every
//! crate that needs what `setup` installs, is run as a process.

mod bare_root;
mod bench;
mod demo;
mod dist;
mod fixtures;
mod fresh;
mod fuzz;
mod fuzz_seeds;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str =
    "usage: cargo xtask <setup|test|demo|fixtures|bench|bindgen|fresh [--demo] [--keep]|dist|fuzz [TARGET...] [--seconds N] [--ci]>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(),
        Some("test") => test(),
        Some("demo") => demo::run(),
        Some("fixtures") => fixtures::generate(&workspace_root()),
        Some("bench") => bench::run(),
        Some("bindgen") => setup::run()
            .and_then(|()| cargo(&["run", "--quiet", "--package", "reseal-ntfs-sys-bindgen"])),
        Some("fresh") => fresh::run(&args[1..]),
        Some("dist") => dist::run(),
        Some("fuzz") => fuzz::run_command(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Debian's python: the one that has the `hivex` module and whose `venv` python3-venv serves
/// (a pyenv `python3` on PATH has neither).
pub const HIVEX_PYTHON: &str = "/usr/bin/python3";

/// Runs `cargo` with `args` in the workspace root, failing with the command line on error.
pub fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    run(Command::new(cargo).args(args).current_dir(workspace_root()))
}

/// Copies the directory tree `from` to `to` (files and directories only).
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Removes a file or a directory tree; one that is not there is fine.
pub fn remove_if_present(path: &Path) -> Result<(), String> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("{}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Paths a step creates for itself, removed when it ends however it ends (a failed step
/// leaves nothing behind, even under names no later run would reuse).
#[derive(Default)]
pub struct Scratch(Vec<PathBuf>);

impl Scratch {
    /// Puts `path` in the scratch set and gives it back.
    pub fn add(&mut self, path: PathBuf) -> PathBuf {
        self.0.push(path.clone());
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = remove_if_present(path);
        }
    }
}

/// Runs a command to completion, inheriting stdio; a non-zero exit is an error naming the command.
pub fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    eprintln!("+ {shown}");
    let status = command
        .status()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed with {status}"))
    }
}

/// Runs a command to completion with its output captured; a failure returns its stderr.
pub fn output_of(command: &mut Command) -> Result<Vec<u8>, String> {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

/// Checks that `inspect_json`, what `reseal inspect --json` printed for `image`, shows an image
/// generalized for OOBE.
pub fn expect_generalized(image: &str, inspect_json: &[u8]) -> Result<(), String> {
    let inspection: serde_json::Value = serde_json::from_slice(inspect_json)
        .map_err(|e| format!("reseal inspect {image} printed no JSON: {e}"))?;
    let state = inspection["image_state"].as_str().unwrap_or_default();
    if state == "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE" {
        Ok(())
    } else {
        Err(format!(
            "{image} is not generalized after reseal generalize: image state {state:?}"
        ))
    }
}

/// Everything CI checks, in the order that fails fastest.
fn test() -> Result<(), String> {
    setup::run()?;
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace", "--all-targets"])?;
    cargo(&["test", "--workspace", "--doc"])
}
