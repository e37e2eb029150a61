//! The `reseal` binary on WIM files: image selection, `--output`, `recover`, and exit codes.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use std::process::{Command, Output};

use common::{code, reseal, text};
use reseal_testutil::real_fixture;

fn sample_wim() -> Option<(tempfile::TempDir, PathBuf)> {
    reseal_testutil::sample_wim_copy()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn generalize_with_output_edits_a_copy_and_leaves_the_input_untouched() {
    let Some((dir, wim)) = sample_wim() else {
        return;
    };
    let input = fs::read(&wim).unwrap();
    let output = dir.path().join("generalized.wim");

    let run = reseal(&[
        "generalize",
        s(&wim),
        "--index",
        "1",
        "--output",
        s(&output),
    ]);
    assert_eq!(code(&run), 0, "{}", text(&run));
    assert_eq!(fs::read(&wim).unwrap(), input, "the input changed");

    let verify = Command::new("wimlib-imagex")
        .args(["verify", s(&output)])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));

    let before = reseal(&["inspect", s(&wim), "--json"]);
    let after = reseal(&["inspect", s(&output), "--json"]);
    assert_eq!(code(&before), 0, "{}", text(&before));
    assert_eq!(code(&after), 0, "{}", text(&after));
    let state = |o: &Output| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["image_state"].clone()
    };
    assert_ne!(state(&before), state(&after));
    assert_eq!(
        state(&after),
        serde_json::json!("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE")
    );

    // The output now exists: a second run refuses to overwrite it, and changes nothing.
    let generalized = fs::read(&output).unwrap();
    let again = reseal(&["generalize", s(&wim), "--output", s(&output)]);
    assert_eq!(code(&again), 2, "{}", text(&again));
    assert_eq!(fs::read(&output).unwrap(), generalized);

    // Generalizing the result again is refused by validation (exit 3) and writes nothing.
    let refused = reseal(&["generalize", s(&output)]);
    assert_eq!(code(&refused), 3, "{}", text(&refused));
    assert_eq!(fs::read(&output).unwrap(), generalized);
}

#[test]
fn a_refused_run_with_output_leaves_no_output_file() {
    let Some((dir, wim)) = sample_wim() else {
        return;
    };
    let generalized = dir.path().join("once.wim");
    let first = reseal(&["generalize", s(&wim), "--output", s(&generalized)]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let second = dir.path().join("twice.wim");
    let refused = reseal(&["generalize", s(&generalized), "--output", s(&second)]);
    assert_eq!(code(&refused), 3, "{}", text(&refused));
    assert!(!second.exists());
}

#[test]
fn generalize_in_place_and_recover() {
    let Some((_dir, wim)) = sample_wim() else {
        return;
    };
    let dry = reseal(&["generalize", s(&wim), "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", text(&dry));
    let run = reseal(&["reseal", s(&wim), "--audit", "--index", "all"]);
    assert_eq!(code(&run), 0, "{}", text(&run));
    let inspect = reseal(&["inspect", s(&wim), "--index", "Windows 10 Pro"]);
    assert_eq!(code(&inspect), 0, "{}", text(&inspect));
    assert!(
        text(&inspect).contains("IMAGE_STATE_SPECIALIZE_RESEAL_TO_AUDIT"),
        "{}",
        text(&inspect)
    );
    let recover = reseal(&["recover", s(&wim)]);
    assert_eq!(code(&recover), 0, "{}", text(&recover));
    assert!(text(&recover).contains("nothing to recover"));
}

#[test]
fn index_errors_are_usage_errors() {
    let Some((dir, wim)) = sample_wim() else {
        return;
    };
    let missing = reseal(&["inspect", s(&wim), "--index", "7"]);
    assert_eq!(code(&missing), 2, "{}", text(&missing));

    // --index and --output are for WIM files.
    let folder = dir.path().join("image");
    fs::create_dir_all(folder.join("Windows/System32/config")).unwrap();
    let on_directory = reseal(&["inspect", s(&folder), "--index", "1"]);
    assert_eq!(code(&on_directory), 2, "{}", text(&on_directory));
    // The library's error names the input; the command line names the flag.
    assert!(
        text(&on_directory).contains("--index 1: "),
        "{}",
        text(&on_directory)
    );
    let output = dir.path().join("out.wim");
    let output_on_directory = reseal(&["generalize", s(&folder), "--output", s(&output)]);
    assert_eq!(
        code(&output_on_directory),
        2,
        "{}",
        text(&output_on_directory)
    );
    assert!(
        text(&output_on_directory).contains("--output: "),
        "{}",
        text(&output_on_directory)
    );
    assert!(!output.exists());
}

#[test]
fn multi_image_wim_without_index_lists_the_images() {
    let Some(wim) = real_fixture("images/managedwimlib/MultiImage.wim") else {
        return;
    };
    let run = reseal(&["inspect", s(&wim)]);
    assert_eq!(code(&run), 2, "{}", text(&run));
    assert!(text(&run).contains("2: Changes"), "{}", text(&run));
    assert!(
        text(&run).contains("choose one with --index N or NAME (or all)"),
        "{}",
        text(&run)
    );
    // No image of it holds Windows: each is refused, by name.
    let all = reseal(&["inspect", s(&wim), "--index", "all"]);
    assert_eq!(code(&all), 2, "{}", text(&all));
    assert!(
        text(&all).contains(r"Windows\System32\config"),
        "{}",
        text(&all)
    );
}

#[test]
fn split_wim_is_unsupported_input() {
    let Some(swm) = real_fixture("images/managedwimlib/Split.swm") else {
        return;
    };
    for command in ["inspect", "generalize", "recover"] {
        let run = reseal(&[command, s(&swm)]);
        assert_eq!(code(&run), 4, "{command}: {}", text(&run));
        assert!(text(&run).contains("Split.swm"), "{}", text(&run));
    }
}
