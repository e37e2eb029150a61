//! `--seed N` with `SOURCE_DATE_EPOCH`: two copies of the sample WIM, of the sample directory
//! and of the sample disk as VHDX, VHD, raw and qcow2 (converted by qemu-img) generalized with
//! the same seed and time give the same bytes (SHA-256 of the whole file, of every file of the
//! directory, by coreutils' sha256sum); another seed or time gives others. The same for
//! `newsid` on the WIM and the VHDX, whose new SID comes from the seed, for `set` on the VHDX,
//! and for the differencing child `--output-diff` makes of a VHDX or a VHD.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{code, text};
use reseal_testutil::ntfs_image::{sample_disk, Container};
use reseal_testutil::{copy_dir, workspace_root};

const EPOCH: &str = "1700000000";

/// `reseal generalize IMAGE --new-machine-guid` (a random GUID the seed must fix).
const GENERALIZE: &[&str] = &["generalize", "--new-machine-guid"];
/// `reseal newsid IMAGE` (a random SID the seed must fix).
const NEWSID: &[&str] = &["newsid"];
/// `reseal set IMAGE --computer-name NAME` (nothing random in the hives; the times and a
/// container's identifiers are what the seed and time fix).
const SET: &[&str] = &["set", "--computer-name", "LAB-07"];

/// Runs `command` (its name, then its flags) on `image` with `--seed seed` and
/// `SOURCE_DATE_EPOCH=epoch`.
fn run_seeded(command: &[&str], image: &Path, seed: &str, epoch: &str) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .arg(command[0])
        .arg(image)
        .args(&command[1..])
        .args(["--seed", seed])
        .env("SOURCE_DATE_EPOCH", epoch)
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output));
    output
}

/// The SHA-256 of each file under `root` (or of `root` itself), by relative path.
fn sha256(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
        .iter()
        .map(|file| {
            let out = Command::new("sha256sum").arg(file).output().unwrap();
            assert!(out.status.success());
            let digest = String::from_utf8(out.stdout).unwrap();
            let relative = file
                .strip_prefix(root)
                .unwrap_or(file)
                .display()
                .to_string();
            (relative, digest.split(' ').next().unwrap().to_string())
        })
        .collect()
}

/// Four copies of `source` (a file or a folder) in `dir`.
fn copies(source: &Path, dir: &Path) -> Vec<PathBuf> {
    (0..4)
        .map(|n| {
            let copy = dir.join(format!("copy{n}"));
            if source.is_dir() {
                copy_dir(source, &copy);
            } else {
                std::fs::copy(source, &copy).unwrap();
            }
            copy
        })
        .collect()
}

fn assert_reproducible(command: &[&str], source: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let images = copies(source, dir.path());
    run_seeded(command, &images[0], "42", EPOCH);
    run_seeded(command, &images[1], "42", EPOCH);
    run_seeded(command, &images[2], "43", EPOCH);
    run_seeded(command, &images[3], "42", "1700000001");
    let original = sha256(source);
    let first = sha256(&images[0]);
    assert_ne!(first, original, "nothing was written");
    assert_eq!(first, sha256(&images[1]), "the same seed and time differ");
    assert_ne!(
        first,
        sha256(&images[2]),
        "another seed gives the same bytes"
    );
    assert_ne!(
        first,
        sha256(&images[3]),
        "another time gives the same bytes"
    );
}

#[test]
fn the_same_seed_and_time_give_the_same_wim() {
    let wim = workspace_root().join("fixtures/sample.wim");
    if !wim.exists() {
        eprintln!("skipping: {} is missing", wim.display());
        return;
    }
    assert_reproducible(GENERALIZE, &wim);
}

#[test]
fn the_same_seed_and_time_give_the_same_directory() {
    let tree = workspace_root().join("fixtures/sample");
    if !tree.join("Windows/System32/config/SYSTEM").exists() {
        eprintln!("skipping: {} is missing", tree.display());
        return;
    }
    assert_reproducible(GENERALIZE, &tree);
}

#[test]
fn newsid_with_the_same_seed_and_time_gives_the_same_wim() {
    let wim = workspace_root().join("fixtures/sample.wim");
    if !wim.exists() {
        eprintln!("skipping: {} is missing", wim.display());
        return;
    }
    assert_reproducible(NEWSID, &wim);
}

/// The sample disk in `container`, in a temporary directory kept with it; `None` (skipping)
/// without the sample WIM it is made from.
fn sample_disk_in(container: Container) -> Option<(tempfile::TempDir, PathBuf)> {
    if !workspace_root().join("fixtures/sample.wim").exists() {
        eprintln!("skipping: fixtures/sample.wim is missing");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), container);
    Some((dir, disk))
}

#[test]
fn the_same_seed_and_time_give_the_same_vhdx() {
    let Some((_dir, disk)) = sample_disk_in(Container::Vhdx) else {
        return;
    };
    assert_reproducible(GENERALIZE, &disk);
}

#[test]
fn the_same_seed_and_time_give_the_same_vhd() {
    let Some((_dir, disk)) = sample_disk_in(Container::Vhd) else {
        return;
    };
    assert_reproducible(GENERALIZE, &disk);
}

#[test]
fn the_same_seed_and_time_give_the_same_raw_disk() {
    let Some((_dir, disk)) = sample_disk_in(Container::Raw) else {
        return;
    };
    assert_reproducible(GENERALIZE, &disk);
}

#[test]
fn the_same_seed_and_time_give_the_same_qcow2_disk() {
    let Some((_dir, disk)) = sample_disk_in(Container::Qcow2) else {
        return;
    };
    assert_reproducible(GENERALIZE, &disk);
}

#[test]
fn the_same_seed_and_time_give_the_same_vmdk_disk() {
    let Some((_dir, disk)) = sample_disk_in(Container::Vmdk) else {
        return;
    };
    assert_reproducible(GENERALIZE, &disk);
}

#[test]
fn newsid_and_set_with_the_same_seed_and_time_give_the_same_vhdx() {
    let Some((_dir, disk)) = sample_disk_in(Container::Vhdx) else {
        return;
    };
    assert_reproducible(NEWSID, &disk);
    assert_reproducible(SET, &disk);
}

/// A differencing child records its parent's path, so each run makes it from the same parent
/// at the same path: generalized there, hashed, removed, generalized again.
fn assert_reproducible_child(container: Container, extension: &str) {
    let Some((dir, parent)) = sample_disk_in(container) else {
        return;
    };
    let child = dir.path().join(format!("child.{extension}"));
    let parent_sha256 = sha256(&parent);
    let child_sha256 = |seed: &str, epoch: &str| {
        let command = [
            "generalize",
            "--new-machine-guid",
            "--output-diff",
            child.to_str().unwrap(),
        ];
        run_seeded(&command, &parent, seed, epoch);
        assert_eq!(sha256(&parent), parent_sha256, "the parent changed");
        let digest = sha256(&child);
        std::fs::remove_file(&child).unwrap();
        digest
    };
    let first = child_sha256("42", EPOCH);
    assert_eq!(
        first,
        child_sha256("42", EPOCH),
        "the same seed and time differ"
    );
    assert_ne!(
        first,
        child_sha256("43", EPOCH),
        "another seed gives the same child"
    );
    assert_ne!(
        first,
        child_sha256("42", "1700000001"),
        "another time gives the same child"
    );
}

#[test]
fn the_same_seed_and_time_give_the_same_vhdx_child() {
    assert_reproducible_child(Container::Vhdx, "vhdx");
}

#[test]
fn the_same_seed_and_time_give_the_same_vhd_child() {
    assert_reproducible_child(Container::Vhd, "vhd");
}

#[test]
fn the_same_seed_and_time_give_the_same_vmdk_child() {
    assert_reproducible_child(Container::Vmdk, "vmdk");
}

#[test]
fn the_same_seed_and_time_give_the_same_qcow2_overlay() {
    assert_reproducible_child(Container::Raw, "qcow2");
}

#[test]
fn a_malformed_source_date_epoch_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("image");
    copy_dir(&workspace_root().join("fixtures/sample"), &tree);
    // The last one is after the year 9999 (253402300799 is its last second).
    for bad in ["yesterday", "-5", "1.5", "253402300800"] {
        let output = Command::new(env!("CARGO_BIN_EXE_reseal"))
            .arg("generalize")
            .arg(&tree)
            .env("SOURCE_DATE_EPOCH", bad)
            .output()
            .unwrap();
        assert_eq!(code(&output), 2, "{bad}: {}", text(&output));
        assert!(
            text(&output).contains("SOURCE_DATE_EPOCH"),
            "{}",
            text(&output)
        );
    }
}
