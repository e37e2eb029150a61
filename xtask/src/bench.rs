//! `cargo xtask bench [hive|wim|editions|disk]...`: benchmarks, each side by side with the tools
//! a user would use otherwise, measured in the same run on the same machine. With no name, all
//! four run. docs/PERFORMANCE.md records the figures and the aims they are held against.
//!
//! - `hive` ([`hive`]): the regf engine against python3-hivex on a SOFTWARE-shaped hive.
//! - `wim` ([`wim`]): `reseal generalize` on a WIM against `wimlib-imagex update` replacing the
//!   same files, against the apply + generalize + capture round trip, and `reseal newsid`.
//! - `editions` ([`editions`]): `reseal generalize --index all` on a WIM of six images sharing
//!   most blobs against one image of it.
//! - `disk` ([`disk`]): `reseal generalize` and `reseal newsid` on a dynamic VHDX and the same
//!   disk as qcow2, in place and into a differencing child, against `qemu-img convert` round
//!   trips through a raw disk.
//!
//! The WIM and disk benches share one generated Windows-shaped tree ([`windows_tree`]). Sizes
//! come from environment variables (each module lists its own), so a small quick run is
//! `BENCH_HIVE_KEYS=25000 BENCH_WIM_FILES=2000 BENCH_WIM_TREE_MIB=100 BENCH_WIM_HIVE_KEYS=25000
//! BENCH_DISK_GIB=1 cargo xtask bench`. Generated inputs are kept in `target/bench/` (or
//! `BENCH_DIR`) and made again only when missing; `cargo xtask bench inputs` only makes them.

mod disk;
mod editions;
mod hive;
mod measure;
mod wim;
mod windows_tree;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{output_of, remove_if_present};

use serde_json::Value;

/// The aim of issue #18 on every bench: `reseal newsid` within this many times the same
/// image's `reseal generalize`.
const MAX_NEWSID_RATIO: f64 = 2.0;

const BENCH_USAGE: &str =
    "usage: cargo xtask bench [hive|wim|editions|disk]... (default: all four) | cargo xtask bench inputs";

pub fn run() -> Result<(), String> {
    // main.rs hands over nothing; the words after `bench` choose the benches.
    let chosen: Vec<String> = std::env::args().skip(2).collect();
    if chosen == ["inputs"] {
        return make_inputs();
    }
    let known = ["hive", "wim", "editions", "disk"];
    if let Some(unknown) = chosen.iter().find(|name| !known.contains(&name.as_str())) {
        return Err(format!("unknown bench {unknown:?}; {BENCH_USAGE}"));
    }
    let wanted = |name: &str| chosen.is_empty() || chosen.iter().any(|c| c == name);

    crate::setup::run()?;
    let work = work_dir()?;
    eprintln!("bench: load average at start: {}", load_average());
    if wanted("hive") {
        hive::run(&work)?;
    }
    if wanted("wim") {
        wim::run(&work)?;
    }
    if wanted("editions") {
        editions::run(&work)?;
    }
    if wanted("disk") {
        disk::run(&work)?;
    }
    println!(
        "\nRecord these figures in docs/PERFORMANCE.md with the machine they were measured on."
    );
    Ok(())
}

/// `cargo xtask bench inputs`: generates the WIM and disk benches' inputs that are missing and
/// measures nothing (the full-size WIM takes close to an hour to capture).
fn make_inputs() -> Result<(), String> {
    crate::setup::run()?;
    let work = work_dir()?;
    let size = windows_tree::TreeSize::from_env()?;
    let wim = windows_tree::tree_wim(&work, size)?;
    let disk = disk::disk_image(&wim, env_number("BENCH_DISK_GIB", 20)?)?;
    println!("{}\n{}", wim.display(), disk.display());
    Ok(())
}

/// Where generated inputs and work copies go: `BENCH_DIR`, else `bench/` in cargo's target
/// directory. The WIM and disk benches need about 30 GB there.
fn work_dir() -> Result<PathBuf, String> {
    let work = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::target_dir(&crate::workspace_root()).join("bench"));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    Ok(work)
}

/// A size from the environment variable `name`, or `default` when it is unset.
fn env_number(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{name}={text:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}

/// The three load averages of /proc/loadavg ("1-min 5-min 15-min"), recorded beside each figure:
/// the machine is shared, and a busy machine stretches every time.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Builds the release `reseal` binary and returns its path.
fn release_reseal() -> Result<PathBuf, String> {
    crate::cargo(&["build", "--release", "--quiet", "--package", "reseal-cli"])?;
    Ok(crate::target_dir(&crate::workspace_root())
        .join("release")
        .join("reseal"))
}

/// Runs a preparation step like [`crate::run`], its progress output sent to stderr so that
/// stdout holds only the tables.
fn run_to_stderr(command: &mut Command) -> Result<(), String> {
    crate::run(command.stdout(std::io::stderr()))
}

/// Runs a benchmark step and parses the one JSON line it prints.
fn json_of(command: &mut Command) -> Result<Value, String> {
    let shown = format!("{command:?}");
    let stdout = output_of(command)?;
    let text = String::from_utf8_lossy(&stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("{shown} printed {line:?}, not JSON: {e}"))
}

/// Copies `from` to a fresh `to` (each side of a bench works on its own copy), keeping holes:
/// the disk images are sparse files, and a dense copy of one would take its whole size. The copy,
/// and whatever earlier steps left unwritten (a round trip's gigabytes), is flushed before it is
/// measured, so a side's own flushes do not also wait for them.
fn fresh_copy(from: &Path, to: &Path) -> Result<(), String> {
    remove_if_present(to)?;
    output_of(Command::new("cp").arg("--sparse=always").arg(from).arg(to))?;
    std::fs::File::open(to)
        .and_then(|copy| copy.sync_all())
        .map_err(|e| format!("{}: cannot flush the copy: {e}", to.display()))?;
    output_of(&mut Command::new("sync")).map(|_| ())
}

/// What `reseal inspect IMAGE [--index INDEX] --json` prints.
fn inspect_json(reseal: &Path, image: &Path, index: Option<&str>) -> Result<Vec<u8>, String> {
    let mut command = Command::new(reseal);
    command.arg("inspect").arg(image).arg("--json");
    if let Some(index) = index {
        command.args(["--index", index]);
    }
    output_of(&mut command)
}

/// Checks with `reseal inspect` that `image` has come out generalized (a run that exits 0 but
/// leaves the image as it was would otherwise look fast).
fn check_generalized(reseal: &Path, image: &Path) -> Result<(), String> {
    check_generalized_image(reseal, image, None)
}

/// [`check_generalized`] for image `index` of a WIM.
fn check_generalized_image(reseal: &Path, image: &Path, index: Option<&str>) -> Result<(), String> {
    let out = inspect_json(reseal, image, index)?;
    crate::expect_generalized(&image.display().to_string(), &out)
}

/// The machine SID `reseal inspect` reports for `image`.
fn machine_sid(reseal: &Path, image: &Path, index: Option<&str>) -> Result<String, String> {
    let out = inspect_json(reseal, image, index)?;
    let inspection: Value = serde_json::from_slice(&out)
        .map_err(|e| format!("reseal inspect {} printed no JSON: {e}", image.display()))?;
    inspection["machine_sid"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("reseal inspect {} reports no machine SID", image.display()))
}

/// Checks that `reseal newsid` gave `image` a machine SID other than `old`.
fn check_new_sid(
    reseal: &Path,
    image: &Path,
    index: Option<&str>,
    old: &str,
) -> Result<(), String> {
    let new = machine_sid(reseal, image, index)?;
    if new == old {
        return Err(format!(
            "{} still has the machine SID {old} after reseal newsid",
            image.display()
        ));
    }
    Ok(())
}

/// The uncompressed size of image 1's SOFTWARE hive in `wim`, the largest hive a run changes.
fn software_size(wim: &Path) -> Result<u64, String> {
    let path = "/Windows/System32/config/SOFTWARE";
    let text = String::from_utf8_lossy(&crate::output_of(
        Command::new("wimlib-imagex")
            .arg("dir")
            .arg(wim)
            .arg("1")
            .args(["--detailed", "--path", path]),
    )?)
    .into_owned();
    text.lines()
        .find_map(|line| {
            let (key, value) = line.split_once(" = ")?;
            (key.trim() == "Uncompressed size")
                .then(|| value.trim().trim_end_matches(" bytes").parse().ok())?
        })
        .ok_or_else(|| format!("{}: no size for {path}", wim.display()))
}

/// The peak-memory aim of issue #17 in KiB: 1.5 x the largest changed hive + 64 MiB.
fn memory_aim_kib(largest_changed_bytes: u64) -> u64 {
    (largest_changed_bytes * 3 / 2 + (64 << 20)) >> 10
}

/// The line judging `side`'s peak memory against [`memory_aim_kib`] of the largest changed
/// file, `largest` (what it is, and its size in bytes).
fn memory_aim_line(side: &str, peak_rss_kib: u64, largest: (&str, u64)) -> String {
    let (what, bytes) = largest;
    let limit = memory_aim_kib(bytes);
    format!(
        "- peak memory of {side} at most 1.5 x {what} ({}) + 64 MiB = {:.0} MiB: {:.0} MiB ({})",
        mib(bytes as f64),
        limit as f64 / 1024.0,
        peak_rss_kib as f64 / 1024.0,
        wim::verdict(peak_rss_kib <= limit)
    )
}

/// The bytes a file takes on disk (a sparse file takes less than its size).
fn allocated_size(path: &Path) -> Result<u64, String> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn file_size(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Bytes as MiB with one decimal, the unit the tables use.
fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1048576.0)
}
