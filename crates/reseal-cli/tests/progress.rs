//! The progress bar: drawn on stderr when it is a terminal (here a pseudo-terminal made by
//! util-linux `script`), absent otherwise; `--json` on stdout is the same either way.

mod common;

use std::path::Path;
use std::process::Command;

use common::{code, reseal, text};
use reseal_testutil::workspace_root;

/// A copy of the sample image folder.
fn sample_copy(dir: &Path, name: &str) -> std::path::PathBuf {
    let copy = dir.join(name);
    let status = Command::new("cp")
        .arg("-r")
        .arg(workspace_root().join("fixtures/sample"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    copy
}

/// Fixed values, so two runs plan the same changes.
const FIXED: [&str; 4] = [
    "--computer-name",
    "NEW-PC",
    "--sid",
    "S-1-5-21-1111111111-2222222222-3333333333",
];

#[test]
fn a_terminal_gets_a_progress_bar_and_a_pipe_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();

    // stderr is a pipe: nothing on it; stdout is the JSON document.
    let piped_image = sample_copy(dir.path(), "piped");
    let mut args = vec!["generalize", piped_image.to_str().unwrap(), "--json"];
    args.extend(FIXED);
    let piped = reseal(&args);
    assert_eq!(code(&piped), 0, "{}", text(&piped));
    assert!(
        piped.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let piped_json: serde_json::Value = serde_json::from_slice(&piped.stdout).unwrap();

    // stderr is a terminal (stdout still goes to a file): the bar is drawn there.
    let tty_image = sample_copy(dir.path(), "tty");
    let json_file = dir.path().join("out.json");
    let command = format!(
        "'{}' generalize '{}' --json {} > '{}'",
        env!("CARGO_BIN_EXE_reseal"),
        tty_image.display(),
        FIXED.join(" "),
        json_file.display()
    );
    let terminal = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("util-linux script runs");
    assert!(terminal.status.success(), "{}", text(&terminal));
    let drawn = String::from_utf8_lossy(&terminal.stdout);
    for phase in [
        "reading the image and planning",
        "writing and deleting files",
    ] {
        assert!(
            drawn.contains(phase),
            "no {phase:?} on the terminal: {drawn}"
        );
    }
    let tty_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    let comparable = |document: &serde_json::Value| serde_json::json!({ "plan": common::untimed(&document["plan"]), "applied": document["applied"] });
    assert_eq!(comparable(&tty_json), comparable(&piped_json));
}
