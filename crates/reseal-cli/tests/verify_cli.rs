//! `reseal verify` on the sample image, as a directory and as a WIM: exit 0 once reseal has
//! generalized it, 5 with one line per failed check when it is not armed for the mode asked.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{code, reseal, text};
use reseal_testutil::{copy_dir, workspace_root};

/// Exit code of `reseal verify` when the image is not armed (main.rs).
const NOT_ARMED: i32 = 5;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A copy of `fixtures/<name>` in a temporary folder.
fn sample_copy(name: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let source = workspace_root().join("fixtures").join(name);
    if !source.exists() {
        eprintln!("skipping: {} is missing", source.display());
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(name);
    if source.is_dir() {
        copy_dir(&source, &copy);
    } else {
        fs::copy(&source, &copy).unwrap();
    }
    Some((dir, copy))
}

fn failed_lines(output: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with("FAIL"))
        .map(str::to_string)
        .collect()
}

#[test]
fn an_untouched_image_is_not_armed() {
    let Some((_dir, image)) = sample_copy("sample") else {
        return;
    };
    let run = reseal(&["verify", s(&image)]);
    assert_eq!(code(&run), NOT_ARMED, "{}", text(&run));
    assert!(text(&run).contains("not armed"), "{}", text(&run));
    let failed = failed_lines(&run);
    for check in ["image-state", "setup-type", "cmd-line", "sid-request"] {
        assert!(
            failed
                .iter()
                .any(|line| line.starts_with(&format!("FAIL {check}:"))),
            "{check}: {failed:?}"
        );
    }

    let json = reseal(&["verify", s(&image), "--json"]);
    assert_eq!(code(&json), NOT_ARMED, "{}", text(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["verdict"], "not-armed");
}

#[test]
fn a_generalized_directory_is_armed_for_its_mode_only() {
    let Some((_dir, image)) = sample_copy("sample") else {
        return;
    };
    let run = reseal(&["generalize", s(&image)]);
    assert_eq!(code(&run), 0, "{}", text(&run));

    let armed = reseal(&["verify", s(&image), "--oobe"]);
    assert_eq!(code(&armed), 0, "{}", text(&armed));
    assert!(failed_lines(&armed).is_empty(), "{}", text(&armed));

    let audit = reseal(&["verify", s(&image), "--audit"]);
    assert_eq!(code(&audit), NOT_ARMED, "{}", text(&audit));
    assert_eq!(failed_lines(&audit).len(), 1, "{}", text(&audit));
    assert!(
        text(&audit).contains("armed for OOBE, not audit mode"),
        "{}",
        text(&audit)
    );
}

#[test]
fn a_generalized_wim_is_armed() {
    let Some((_dir, wim)) = sample_copy("sample.wim") else {
        return;
    };
    let run = reseal(&["generalize", s(&wim), "--audit"]);
    assert_eq!(code(&run), 0, "{}", text(&run));
    let armed = reseal(&["verify", s(&wim), "--audit", "--json"]);
    assert_eq!(code(&armed), 0, "{}", text(&armed));
    let report: serde_json::Value = serde_json::from_slice(&armed.stdout).unwrap();
    assert_eq!(report["verdict"], "armed");
    assert_eq!(report["generalized"], true);
}

/// An interrupted run's journal in a directory image is neither the image before that run nor
/// after it: verify (which changes nothing) says so and how to finish it, as it does for a disk
/// image's redo log, instead of judging the half-written state; the journal stays.
#[test]
fn an_image_with_an_interrupted_run_is_sent_to_recover() {
    let Some((_dir, image)) = sample_copy("sample") else {
        return;
    };
    let journal = image.join("reseal-journal");
    fs::create_dir(&journal).unwrap();
    fs::write(journal.join("manifest.json"), b"{}").unwrap();
    let run = reseal(&["verify", s(&image)]);
    assert_eq!(code(&run), 1, "{}", text(&run));
    let message = text(&run);
    assert!(
        message.contains(&format!("directory {}", image.display())),
        "{message}"
    );
    assert!(message.contains("run `reseal recover`"), "{message}");
    assert!(failed_lines(&run).is_empty(), "{message}");
    assert_eq!(fs::read(journal.join("manifest.json")).unwrap(), b"{}");
}

/// A refusal names the image it is about, not only the check: with several images or several
/// runs in a log, the message alone must say which one.
#[test]
fn a_refusal_names_the_image() {
    let Some((_dir, image)) = sample_copy("sample") else {
        return;
    };
    let first = reseal(&["generalize", s(&image)]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let again = reseal(&["generalize", s(&image)]);
    assert_eq!(code(&again), 3, "{}", text(&again));
    let message = text(&again);
    assert!(
        message.contains(&format!(
            "directory {}: the image cannot be generalized safely",
            image.display()
        )),
        "{message}"
    );
    // The read-only commands take --wait like the others (the lock message suggests it).
    let inspect = reseal(&["inspect", s(&image), "--wait"]);
    assert_eq!(code(&inspect), 0, "{}", text(&inspect));
    let verify = reseal(&["verify", s(&image), "--wait"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify));
}
