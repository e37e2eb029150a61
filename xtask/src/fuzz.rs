//! `cargo xtask fuzz [TARGET...] [--seconds N] [--ci]`: builds the fuzz workspace (`fuzz/`) with
//! the stable toolchain, seeds each target's corpus (`fuzz_seeds.rs`) and runs each target for
//! a bounded time; a crash fails the command and prints the input.
//!
//! cargo-fuzz is not needed: the build passes the flags it would, minus the sanitizer, which
//! needs a nightly compiler (the parsers have no unsafe code, so what AddressSanitizer would add
//! is mostly the allocation limit, which libFuzzer's `-malloc_limit_mb` gives here too). The
//! target triple is named so the flags reach only the fuzzed code, not build scripts.
//! Corpora, crash artifacts and logs live under `<target dir>/fuzz/`, out of git.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{fuzz_seeds, output_of, run, target_dir, workspace_root};

/// Every target of `fuzz/Cargo.toml`, in the order they run.
pub const TARGETS: [&str; 11] = [
    "hive_open_walk",
    "hive_edit_commit",
    "hive_replay",
    "reg_import",
    "wim",
    "wim_parts",
    "disk",
    "partition_table",
    "evtx",
    "answer_file",
    "state_ini",
];

/// What cargo-fuzz gives rustc for libFuzzer's coverage, without `-Zsanitizer`, and the checks
/// that turn an overflow or a broken internal assumption into a crash.
const COVERAGE_FLAGS: [&str; 8] = [
    "--cfg=fuzzing",
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

/// Seconds per target: `--ci` keeps all of them within a few minutes.
const DEFAULT_SECONDS: u32 = 60;
const CI_SECONDS: u32 = 15;

/// Crash inputs up to this size are printed in full, larger ones in part.
const PRINTED_INPUT: usize = 4096;

pub fn run_command(args: &[String]) -> Result<(), String> {
    let mut targets = Vec::new();
    let mut seconds = None;
    let mut ci = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ci" => ci = true,
            "--seconds" => {
                let value = args.next().ok_or("--seconds needs a number")?;
                seconds = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| format!("--seconds {value}: not a number of seconds"))?,
                );
            }
            name if TARGETS.contains(&name) => targets.push(name),
            other => {
                return Err(format!(
                    "unknown fuzz target or option {other:?}; targets: {}",
                    TARGETS.join(", ")
                ))
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    let seconds = seconds.unwrap_or(if ci { CI_SECONDS } else { DEFAULT_SECONDS });

    let root = workspace_root();
    let fuzz_dir = target_dir(&root).join("fuzz");
    let binaries = build(&root, &fuzz_dir)?;
    let mut summaries = Vec::new();
    for target in targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        let seeds = fuzz_seeds::write(target, &root, &corpus)?;
        eprintln!("fuzz: {target}: {seeds} seeds in {}", corpus.display());
        let summary = fuzz(target, &binaries.join(target), &fuzz_dir, &corpus, seconds)?;
        eprintln!("fuzz: {summary}");
        summaries.push(summary);
    }
    eprintln!("fuzz: every target ran {seconds} s without a crash:");
    for summary in summaries {
        eprintln!("  {summary}");
    }
    Ok(())
}

/// Builds every target; returns the directory holding the binaries.
fn build(root: &Path, fuzz_dir: &Path) -> Result<PathBuf, String> {
    let host = host_triple()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    run(Command::new(cargo)
        .args(["build", "--release", "--bins", "--target", &host])
        .arg("--manifest-path")
        .arg(root.join("fuzz/Cargo.toml"))
        .env("CARGO_TARGET_DIR", fuzz_dir)
        .env("RUSTFLAGS", COVERAGE_FLAGS.join(" "))
        .env_remove("CARGO_ENCODED_RUSTFLAGS"))?;
    Ok(fuzz_dir.join(host).join("release"))
}

/// The triple rustc builds for by default.
fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = output_of(Command::new(rustc).arg("-vV"))?;
    String::from_utf8_lossy(&version)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV names no host triple".to_string())
}

/// Runs one target for `seconds` over `corpus`; returns its one-line summary, or the crash.
fn fuzz(
    target: &str,
    binary: &Path,
    fuzz_dir: &Path,
    corpus: &Path,
    seconds: u32,
) -> Result<String, String> {
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let logs = fuzz_dir.join("logs");
    // Targets that need a file (the WIM reader) write it here, not into the system's /tmp.
    let scratch = fuzz_dir.join("tmp");
    for dir in [&artifacts, &logs, &scratch] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let log_path = logs.join(format!("{target}.log"));
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let before = crash_files(&artifacts)?;
    eprintln!("+ {} ... (log: {})", binary.display(), log_path.display());
    let status = Command::new(binary)
        .arg(corpus)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args([
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-malloc_limit_mb=1024",
            "-print_final_stats=1",
        ])
        .env("TMPDIR", &scratch)
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    if status.success() {
        return Ok(summary(target, &text));
    }
    let tail: Vec<&str> = text.lines().rev().take(60).collect();
    let mut report = format!(
        "{target} failed ({status}); the end of its log ({}):\n{}\n",
        log_path.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    for crash in crash_files(&artifacts)?.difference(&before) {
        report.push_str(&describe_input(crash));
    }
    Err(report)
}

fn crash_files(artifacts: &Path) -> Result<std::collections::BTreeSet<PathBuf>, String> {
    let entries =
        std::fs::read_dir(artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
    Ok(entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect())
}

/// The input at `path` as a hex dump (up to [`PRINTED_INPUT`] bytes).
fn describe_input(path: &Path) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return format!("the input {} cannot be read\n", path.display());
    };
    let mut text = format!(
        "the input, {} ({} bytes{}):\n",
        path.display(),
        bytes.len(),
        if bytes.len() > PRINTED_INPUT {
            ", the first 4096 shown"
        } else {
            ""
        }
    );
    for (row, line) in bytes.chunks(16).take(PRINTED_INPUT / 16).enumerate() {
        let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = line
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        text.push_str(&format!(
            "{:08x}  {:<47}  {ascii}\n",
            row * 16,
            hex.join(" ")
        ));
    }
    text
}

/// `TARGET: N executions, cov: C ft: F, corpus: K` from libFuzzer's last status line and its
/// final statistics.
fn summary(target: &str, log: &str) -> String {
    let field = |line: &str, name: &str| {
        line.split_whitespace()
            .skip_while(|word| *word != name)
            .nth(1)
            .unwrap_or("?")
            .to_string()
    };
    let status = log
        .lines()
        .rfind(|line| line.contains(" cov: "))
        .unwrap_or_default();
    let stat = |name: &str| {
        log.lines()
            .find_map(|line| line.strip_prefix(name))
            .map_or("?".to_string(), |value| value.trim().to_string())
    };
    format!(
        "{target}: {} executions ({} per second), cov: {} ft: {}, corpus: {}",
        stat("stat::number_of_executed_units:"),
        stat("stat::average_exec_per_sec:"),
        field(status, "cov:"),
        field(status, "ft:"),
        field(status, "corp:"),
    )
}
