//! `cargo xtask bench disk`: `reseal generalize` on a dynamic VHDX holding the generated Windows
//! tree, side by side with a `qemu-img convert` round trip through a raw disk, each on its own
//! fresh copy:
//!
//! 1. `reseal generalize disk.vhdx` in place, and with `--output-diff child.vhdx` (the parent
//!    left as it is);
//! 2. `qemu-img convert -O raw`, `reseal generalize` on the raw disk, `qemu-img convert -O vhdx
//!    -o subformat=dynamic` back.
//!
//! Each reseal step is first tried with `--dry-run`; when reseal cannot open that kind of disk,
//! the step is reported as not measured and the round trip runs without its edit.
//!
//! The disk is built without root and cached: a sparse raw disk of `BENCH_DISK_GIB` GiB (default
//! 20) with a GPT and one basic-data partition from sector 2048, an NTFS volume made by mkntfs in
//! a sparse file of its own, the tree WIM applied into it by wimlib's NTFS-3G mode, the volume
//! copied into the disk at 1 MiB (holes kept), and the whole converted to a dynamic VHDX.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::measure::{measure, Cost};
use super::windows_tree::{self, TreeSize};
use super::{allocated_size, check_generalized, fresh_copy, load_average, mib};
use crate::{remove_if_present, Scratch};

/// One measured side, or why it was not measured.
struct Side {
    label: String,
    outcome: Result<Measured, String>,
}

struct Measured {
    cost: Cost,
    /// How many more bytes the resulting image files take on disk than the input VHDX (files
    /// are sparse: their size says little).
    grown: i64,
    load: String,
}

pub fn run(work: &Path) -> Result<(), String> {
    let size = TreeSize::from_env()?;
    let disk_gib = super::env_number("BENCH_DISK_GIB", 20)?;
    let reseal = super::release_reseal()?;
    let wim = windows_tree::tree_wim(work, size)?;
    let vhdx = disk_image(&wim, disk_gib)?;
    let vhdx_size = allocated_size(&vhdx)?;
    let scratch = work.join("disk-run");
    remove_if_present(&scratch)?;
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;

    let mut sides = Vec::new();
    let copy = scratch.join("disk.vhdx");
    let child = scratch.join("child.vhdx");
    let in_place_probe = dry_run(&reseal, &vhdx, &[]);
    sides.push(Side {
        label: "reseal generalize disk.vhdx (in place)".to_string(),
        outcome: in_place_probe.clone().and_then(|()| {
            fresh_copy(&vhdx, &copy)?;
            // A copy is not as sparse as qemu-img's file: compare with the copy itself.
            let before = allocated_size(&copy)?;
            let cost = measure(&reseal, &[&"generalize", &copy], None, &scratch)?;
            check_generalized(&reseal, &copy)?;
            let grown = allocated_size(&copy)? as i64 - before as i64;
            remove_if_present(&copy)?;
            Ok(Measured {
                cost,
                grown,
                load: load_average(),
            })
        }),
    });
    sides.push(Side {
        label: "reseal generalize disk.vhdx --output-diff child.vhdx".to_string(),
        outcome: dry_run(&reseal, &vhdx, &[&"--output-diff", &child]).and_then(|()| {
            fresh_copy(&vhdx, &copy)?;
            let before = allocated_size(&copy)?;
            remove_if_present(&child)?;
            let cost = measure(
                &reseal,
                &[&"generalize", &copy, &"--output-diff", &child],
                None,
                &scratch,
            )?;
            check_generalized(&reseal, &child)?;
            // The child is the new file; the parent must not change.
            let grown =
                allocated_size(&child)? as i64 + allocated_size(&copy)? as i64 - before as i64;
            remove_if_present(&copy)?;
            remove_if_present(&child)?;
            Ok(Measured {
                cost,
                grown,
                load: load_average(),
            })
        }),
    });
    let (round_trip, edit_note) = round_trip(&reseal, &vhdx, &scratch, vhdx_size)?;
    sides.push(Side {
        label: format!("qemu-img convert round trip through raw ({edit_note})"),
        outcome: Ok(round_trip),
    });

    println!("\n== Disk (load average {})", load_average());
    println!(
        "\n{disk_gib} GiB dynamic VHDX taking {} holding the generated tree ({})\n",
        mib(vhdx_size as f64),
        vhdx.display()
    );
    println!(
        "| side | wall time | bytes written | image files grew by (allocated) | peak memory | load (1/5/15 min) |"
    );
    println!("|---|---|---|---|---|---|");
    for side in &sides {
        match &side.outcome {
            Ok(m) => println!(
                "| {} | {:.2} s | {} | {} | {:.0} MiB | {} |",
                side.label,
                m.cost.seconds,
                mib(m.cost.written_bytes as f64),
                mib(m.grown as f64),
                m.cost.peak_rss_kib as f64 / 1024.0,
                m.load
            ),
            Err(why) => println!("| {} | not measured: {} | | | | |", side.label, why),
        }
    }
    remove_if_present(&scratch)?;
    Ok(())
}

/// `reseal generalize --dry-run` on the image: Ok when reseal can open and plan it, else the
/// first line reseal printed on stderr.
fn dry_run(
    reseal: &Path,
    image: &Path,
    extra: &[&dyn AsRef<std::ffi::OsStr>],
) -> Result<(), String> {
    let mut command = Command::new(reseal);
    command.arg("generalize").arg(image).arg("--dry-run");
    for arg in extra {
        command.arg(arg);
    }
    let out = command
        .output()
        .map_err(|e| format!("cannot run {}: {e}", reseal.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default();
    Err(format!(
        "`reseal generalize --dry-run` refuses it: {}",
        first.trim()
    ))
}

/// qemu-img to raw, reseal on the raw disk (when it can), qemu-img back to a dynamic VHDX.
fn round_trip(
    reseal: &Path,
    vhdx: &Path,
    scratch: &Path,
    vhdx_size: u64,
) -> Result<(Measured, String), String> {
    let raw = scratch.join("round-trip.raw");
    let back = scratch.join("round-trip.vhdx");
    remove_if_present(&raw)?;
    remove_if_present(&back)?;
    let to_raw = measure(
        Path::new("qemu-img"),
        &[&"convert", &"-O", &"raw", &vhdx, &raw],
        None,
        scratch,
    )?;
    let (edit, note) = match dry_run(reseal, &raw, &[]) {
        Ok(()) => (
            measure(reseal, &[&"generalize", &raw], None, scratch)?,
            "with reseal generalize on the raw disk".to_string(),
        ),
        Err(why) => {
            eprintln!("bench: round trip without the edit: {why}");
            (
                Cost::default(),
                "without the edit: reseal cannot open the raw disk".to_string(),
            )
        }
    };
    let to_vhdx = measure(
        Path::new("qemu-img"),
        &[
            &"convert",
            &"-f",
            &"raw",
            &"-O",
            &"vhdx",
            &"-o",
            &"subformat=dynamic",
            &raw,
            &back,
        ],
        None,
        scratch,
    )?;
    eprintln!(
        "bench: round trip: to raw {:.1} s, edit {:.1} s, back to VHDX {:.1} s",
        to_raw.seconds, edit.seconds, to_vhdx.seconds
    );
    if edit.seconds > 0.0 {
        check_generalized(reseal, &back)?;
    }
    let grown = allocated_size(&back)? as i64 - vhdx_size as i64;
    remove_if_present(&raw)?;
    remove_if_present(&back)?;
    Ok((
        Measured {
            cost: to_raw + edit + to_vhdx,
            grown,
            load: load_average(),
        },
        note,
    ))
}

/// The cached dynamic VHDX holding the tree of `wim`, built when missing.
fn disk_image(wim: &Path, disk_gib: u64) -> Result<PathBuf, String> {
    let dir = wim
        .parent()
        .ok_or("the tree WIM has no folder")?
        .to_path_buf();
    let vhdx = dir.join(format!("disk-{disk_gib}gib.vhdx"));
    if vhdx.exists() {
        return Ok(vhdx);
    }
    eprintln!(
        "bench: building a {disk_gib} GiB disk (once; kept as {})",
        vhdx.display()
    );
    let disk_bytes = disk_gib << 30;
    // 1 MiB before the partition (GPT, alignment) and 1 MiB after it (the backup GPT).
    let partition_mib = (disk_bytes >> 20)
        .checked_sub(2)
        .filter(|&mib| mib >= 64)
        .ok_or("BENCH_DISK_GIB must be at least 1")?;
    // Named after this process, so that two benches started together cannot clobber each other.
    let pid = std::process::id();
    let mut scratch = Scratch::default();
    let volume = scratch.add(dir.join(format!("volume-{pid}.img")));
    sparse_file(&volume, partition_mib << 20)?;
    super::run_to_stderr(
        Command::new("mkntfs")
            .args([
                "-F", "-Q", "-q", "-s", "512", "-p", "2048", "-H", "255", "-S", "63",
            ])
            .args(["-L", "Windows"])
            .arg(&volume),
    )?;
    // wimlib's NTFS-3G mode: the target is an unmounted NTFS volume, not a directory.
    super::run_to_stderr(
        Command::new("wimlib-imagex")
            .arg("apply")
            .arg(wim)
            .arg("1")
            .arg(&volume),
    )?;
    let raw = scratch.add(dir.join(format!("disk-{pid}.raw")));
    sparse_file(&raw, disk_bytes)?;
    super::run_to_stderr(
        Command::new("sgdisk")
            .arg("-o")
            .arg("-n")
            .arg(format!("1:2048:+{partition_mib}M"))
            .args(["-t", "1:0700"])
            .arg(&raw),
    )?;
    super::run_to_stderr(
        Command::new("dd")
            .arg(format!("if={}", volume.display()))
            .arg(format!("of={}", raw.display()))
            .args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]),
    )?;
    remove_if_present(&volume)?;
    let partial = scratch.add(dir.join(format!("disk.vhdx.partial-{pid}")));
    super::run_to_stderr(
        Command::new("qemu-img")
            .args([
                "convert",
                "-f",
                "raw",
                "-O",
                "vhdx",
                "-o",
                "subformat=dynamic",
            ])
            .arg(&raw)
            .arg(&partial),
    )?;
    remove_if_present(&raw)?;
    std::fs::rename(&partial, &vhdx).map_err(|e| format!("{}: {e}", vhdx.display()))?;
    Ok(vhdx)
}

fn sparse_file(path: &Path, len: u64) -> Result<(), String> {
    remove_if_present(path)?;
    std::fs::File::create(path)
        .and_then(|file| file.set_len(len))
        .map_err(|e| format!("{}: {e}", path.display()))
}
