//! `reseal newsid` on the sample image as a directory, a WIM and a disk: `--dry-run` lists
//! every change and writes nothing, a run gives the image the new SID (a second one then plans
//! nothing), `--json` prints the plan, and mistakes and refusals get their exit codes.

mod common;

use std::fs;
use std::path::Path;

use common::{code, reseal, text};
use reseal_testutil::ntfs_image::{sample_disk, Container};

const NEW_SID: &str = "S-1-5-21-1111111111-2222222222-3333333333";
/// The sample image's machine SID (fixtures/spec).
const SAMPLE_SID: &str = "S-1-5-21-2718281828-3141592653-1618033988";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs newsid twice on `image` with `extra` arguments: the first run changes the SID in
/// SAM, SECURITY and the profile list, the second finds nothing to do.
fn new_sid_twice(image: &Path, extra: &[&str]) {
    let mut args = vec!["newsid", s(image), "--sid", NEW_SID];
    args.extend(extra);
    let first = reseal(&args);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let shown = text(&first);
    for place in [
        r"SAM\SAM\Domains\Account",
        r"SECURITY\Policy\PolAcDmS",
        &format!(r"ProfileList\{SAMPLE_SID}-500"),
    ] {
        assert!(shown.contains(place), "{place} missing in:\n{shown}");
    }
    let second = reseal(&args);
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert!(text(&second).contains("No changes"), "{}", text(&second));
}

#[test]
fn newsid_on_the_sample_directory() {
    let Some(dir) = reseal_testutil::sample_dir_copy() else {
        return;
    };
    let before = fs::read(dir.path().join("Windows/System32/config/SAM")).unwrap();
    let dry = reseal(&["newsid", s(dir.path()), "--sid", NEW_SID, "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", text(&dry));
    assert!(text(&dry).contains("dry run: nothing was written"));
    assert!(
        text(&dry).contains(&format!("-> {NEW_SID}-500")),
        "{}",
        text(&dry)
    );
    assert_eq!(
        fs::read(dir.path().join("Windows/System32/config/SAM")).unwrap(),
        before
    );

    let json = reseal(&[
        "--json",
        "newsid",
        s(dir.path()),
        "--sid",
        NEW_SID,
        "--dry-run",
    ]);
    assert_eq!(code(&json), 0, "{}", text(&json));
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let changes = document["plan"]["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    let (record, swaps) = changes.split_last().unwrap();
    assert!(swaps.iter().all(|c| c["provider"] == "newsid"));
    assert_eq!(record["provider"], "run-record");

    new_sid_twice(dir.path(), &[]);
}

#[test]
fn newsid_on_the_sample_wim() {
    let Some((_dir, wim)) = reseal_testutil::sample_wim_copy() else {
        return;
    };
    new_sid_twice(&wim, &["--index", "1"]);
}

#[test]
fn newsid_on_a_sample_disk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), Container::Vhdx);
    new_sid_twice(&disk, &[]);
}

#[test]
fn a_bad_sid_is_a_usage_error() {
    let Some(dir) = reseal_testutil::sample_dir_copy() else {
        return;
    };
    let run = reseal(&["newsid", s(dir.path()), "--sid", "S-1-5-21-1-2"]);
    assert_eq!(code(&run), 2, "{}", text(&run));
}
