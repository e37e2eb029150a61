//! Hostile layouts and oversized inputs through the binary: a symbolic link, FIFO or device where
//! the image should hold a file or folder is exit 4 naming its path, an answer file without end
//! is cut at its limit, and an oversized State.ini is refused before it is read; in each case
//! the image stays as it was.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{code, text};

const USAGE: i32 = 2;
const CORRUPT: i32 = 4;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `reseal` with `args`, failing the test instead of hanging when it does not finish
/// within a minute (opening a FIFO would block forever).
fn reseal_within_a_minute(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the reseal binary runs");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("reseal {args:?} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_fifo_where_a_hive_should_be_is_exit_4_naming_its_path() {
    let Some(image) = reseal_testutil::sample_dir_copy() else {
        return;
    };
    let hive = image.path().join("Windows/System32/config/SYSTEM");
    fs::remove_file(&hive).unwrap();
    mkfifo(&hive);
    let before = reseal_testutil::snapshot_tree(image.path());

    for command in ["generalize", "inspect"] {
        let output = reseal_within_a_minute(&[command, s(image.path())]);
        let all = text(&output);
        assert_eq!(code(&output), CORRUPT, "{command}: {all}");
        assert!(all.contains(s(&hive)), "{command} names the path: {all}");
        assert!(
            all.contains("a FIFO"),
            "{command} says what it found: {all}"
        );
    }
    assert_eq!(
        reseal_testutil::snapshot_tree(image.path()),
        before,
        "the image changed"
    );
}

#[test]
fn a_symbolic_link_where_a_folder_should_be_is_exit_4_and_is_not_followed() {
    let Some(image) = reseal_testutil::sample_dir_copy() else {
        return;
    };
    // The event log folder moved outside the image, a link left in its place.
    let outside = tempfile::tempdir().unwrap();
    let logs = image.path().join("Windows/System32/winevt/Logs");
    fs::create_dir_all(&logs).unwrap();
    fs::write(
        outside.path().join("Application.evtx"),
        b"outside the image",
    )
    .unwrap();
    fs::remove_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink(outside.path(), &logs).unwrap();
    let before = reseal_testutil::snapshot_tree(image.path());

    let output = reseal_within_a_minute(&["generalize", s(image.path())]);
    let all = text(&output);
    assert_eq!(code(&output), CORRUPT, "{all}");
    assert!(all.contains(s(&logs)), "names the path: {all}");
    assert!(all.contains("symbolic link"), "{all}");
    assert_eq!(
        reseal_testutil::snapshot_tree(image.path()),
        before,
        "the image changed"
    );
    assert_eq!(
        fs::read(outside.path().join("Application.evtx")).unwrap(),
        b"outside the image"
    );
}

#[test]
fn an_answer_file_without_end_is_refused_at_its_limit() {
    let Some(image) = reseal_testutil::sample_dir_copy() else {
        return;
    };
    let before = reseal_testutil::snapshot_tree(image.path());
    let output =
        reseal_within_a_minute(&["generalize", s(image.path()), "--unattend", "/dev/zero"]);
    let all = text(&output);
    assert_eq!(code(&output), USAGE, "{all}");
    assert!(
        all.contains("/dev/zero") && all.contains("more than 16777216 bytes"),
        "{all}"
    );
    assert_eq!(
        reseal_testutil::snapshot_tree(image.path()),
        before,
        "the image changed"
    );
}

#[test]
fn an_oversized_state_ini_is_refused_before_it_is_read() {
    let Some(image) = reseal_testutil::sample_dir_copy() else {
        return;
    };
    let state_ini = image.path().join("Windows/Setup/State/State.ini");
    // A sparse file: large to every reader, nothing on the host's disk.
    let file = fs::OpenOptions::new().write(true).open(&state_ini).unwrap();
    file.set_len(3 << 30).unwrap();
    drop(file);
    let before_len = fs::metadata(&state_ini).unwrap().len();

    let output = reseal_within_a_minute(&["generalize", s(image.path())]);
    let all = text(&output);
    assert_eq!(code(&output), CORRUPT, "{all}");
    assert!(
        all.contains("State.ini") && all.contains("3221225472 bytes") && all.contains("1048576"),
        "{all}"
    );
    assert_eq!(fs::metadata(&state_ini).unwrap().len(), before_len);
    assert!(!image.path().join("reseal-journal").exists());
}

#[test]
fn a_fifo_given_as_the_image_is_a_usage_error_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("image.vhdx");
    mkfifo(&fifo);
    for command in ["inspect", "generalize", "verify"] {
        let output = reseal_within_a_minute(&[command, s(&fifo)]);
        let all = text(&output);
        assert_eq!(code(&output), USAGE, "{command}: {all}");
        assert!(
            all.contains(s(&fifo)) && all.contains("FIFO"),
            "{command}: {all}"
        );
    }
}

/// An image without its SYSTEM hive (or with a file where the config folder should be) is no
/// Windows image: every command says so the same way, exit 2, and changes nothing.
#[test]
fn an_image_without_its_system_hive_is_no_windows_image_to_every_command() {
    for damage in ["no SYSTEM", "config is a file"] {
        let image =
            reseal_testutil::sample_dir_copy().expect("fixtures/sample is in the repository");
        let config = image.path().join("Windows/System32/config");
        if damage == "no SYSTEM" {
            fs::remove_file(config.join("SYSTEM")).unwrap();
        } else {
            fs::remove_dir_all(&config).unwrap();
            fs::write(&config, b"not a folder").unwrap();
        }
        let before = reseal_testutil::snapshot_tree(image.path());
        let dir = s(image.path());
        for args in [
            &["inspect", dir][..],
            &["verify", dir],
            &["generalize", dir],
            &["reseal", dir, "--oobe"],
            &["set", dir, "--computer-name", "LAB-1"],
            &["newsid", dir, "--dry-run"],
        ] {
            let run = reseal_within_a_minute(args);
            assert_eq!(code(&run), USAGE, "{damage}: {args:?}: {}", text(&run));
            assert!(
                text(&run).contains("is not a Windows image"),
                "{damage}: {args:?}: {}",
                text(&run)
            );
        }
        assert_eq!(
            reseal_testutil::snapshot_tree(image.path()),
            before,
            "{damage}"
        );
    }
}
