//! `reseal set IMAGE --computer-name NAME`: a clone renamed in place on a VHDX disk, a WIM and a
//! directory, with --dry-run and --json as generalize has them; a bad name is exit code 2.

mod common;

use std::fs;
use std::path::Path;

use common::{code, reseal, text};
use reseal_testutil::ntfs_image::{sample_disk, Container};
use reseal_testutil::{sample_dir_copy, sample_wim_copy};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn json(output: &std::process::Output) -> serde_json::Value {
    assert_eq!(code(output), 0, "{}", text(output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `inspect --json` of the image.
fn inspection(image: &Path) -> serde_json::Value {
    json(&reseal(&["inspect", s(image), "--json"]))
}

/// Renames the image, after a dry run that writes nothing, and checks the result.
fn rename_and_check(image: &Path) {
    let before = fs::read(image).ok();
    let dry = json(&reseal(&[
        "set",
        s(image),
        "--computer-name",
        "Clone-7",
        "--description",
        "clone seven",
        "--dry-run",
        "--json",
    ]));
    assert_eq!(dry["dry_run"], true);
    assert!(dry["applied"].is_null());
    let providers: Vec<&str> = dry["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["provider"].as_str().unwrap())
        .collect();
    assert!(providers.len() >= 5);
    // The rename, then the record of the run in the image.
    assert_eq!(providers.last(), Some(&"run-record"));
    assert!(providers[..providers.len() - 1]
        .iter()
        .all(|p| *p == "rename"));
    assert!(fs::read(image).ok() == before, "a dry run wrote");

    let state_before = inspection(image)["image_state"].clone();
    let done = json(&reseal(&[
        "set",
        s(image),
        "--computer-name",
        "Clone-7",
        "--description",
        "clone seven",
        "--json",
    ]));
    // The same plan; the record's time is the clock's when each was planned.
    assert_eq!(
        common::untimed(&done["plan"]),
        common::untimed(&dry["plan"])
    );
    assert!(!done["applied"].is_null());
    let after = inspection(image);
    assert_eq!(after["computer_name"], "CLONE-7");
    assert_eq!(after["image_state"], state_before);
}

#[test]
fn set_renames_a_disk_a_wim_and_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), Container::Vhdx);
    rename_and_check(&disk);
    let check = std::process::Command::new("qemu-img")
        .args(["check", s(&disk)])
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    let Some((_wim_dir, wim)) = sample_wim_copy() else {
        return;
    };
    rename_and_check(&wim);
    let Some(tree) = sample_dir_copy() else {
        return;
    };
    rename_and_check(tree.path());
}

#[test]
fn a_bad_name_is_a_usage_error_naming_the_rule_and_writes_nothing() {
    let Some((_dir, wim)) = sample_wim_copy() else {
        return;
    };
    let before = fs::read(&wim).unwrap();
    for (name, rule) in [
        ("--computer-name=1234", "all digits"),
        ("--computer-name=-lab", "start or end with '-'"),
        ("--computer-name=lab_1", "DNS host label"),
        ("--computer-name=ABCDEFGHIJKLMNOP", "longer than 15"),
        ("--computer-name=a.b", "period"),
    ] {
        let refused = reseal(&["set", s(&wim), name]);
        assert_eq!(code(&refused), 2, "{name}: {}", text(&refused));
        assert!(text(&refused).contains(rule), "{name}: {}", text(&refused));
    }
    // A name after a space that starts with '-' is still a name, told by the same rule.
    let refused = reseal(&["set", s(&wim), "--computer-name", "-lab"]);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(
        text(&refused).contains("start or end with '-'"),
        "{}",
        text(&refused)
    );
    let missing = reseal(&["set", s(&wim)]);
    assert_eq!(code(&missing), 2, "{}", text(&missing));
    assert!(fs::read(&wim).unwrap() == before, "a refused run wrote");
}

#[test]
fn reseal_with_a_computer_name_renames_too() {
    let Some(tree) = sample_dir_copy() else {
        return;
    };
    let done = json(&reseal(&[
        "reseal",
        s(tree.path()),
        "--oobe",
        "--computer-name",
        "Kiosk-3",
        "--json",
    ]));
    let changes = done["plan"]["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c["provider"] == "rename"));
    assert!(changes.iter().any(|c| c["provider"] == "setup-state"));
    assert_eq!(inspection(tree.path())["computer_name"], "KIOSK-3");

    // A description alone would be dropped: refused before anything is read.
    let alone = reseal(&["reseal", s(tree.path()), "--oobe", "--description", "Kiosk"]);
    assert_eq!(code(&alone), 2, "{}", text(&alone));
    assert!(text(&alone).contains("--computer-name"), "{}", text(&alone));
}
