//! `--log FILE`, `--quiet` and `--verbose` through the binary: the log is written whatever the
//! exit code (success, a refusal, a usage error found after the arguments were parsed), with a
//! UTC time on every line, the checks, the changes with their providers, the phase timings and
//! the outcome; `-q` leaves stdout empty (on every command but for --json documents, completion
//! scripts and man pages) and `-v` shows the log's lines on stderr.

mod common;

use std::fs;
use std::path::Path;

use common::{code, reseal, text};

fn sample_in(dir: &Path) -> Option<String> {
    reseal_testutil::sample_copy_in(dir).map(|image| image.to_str().unwrap().to_string())
}

/// Every line starts with a UTC time as `YYYY-MM-DDTHH:MM:SS.fffffffZ `.
fn assert_timestamped(log: &str) {
    assert!(!log.is_empty());
    for line in log.lines() {
        let (time, _) = line.split_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert_eq!(time.len(), 28, "{line}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{line}");
        assert!(time.starts_with("20"), "{line}");
    }
}

#[test]
fn the_log_of_a_run_names_checks_changes_phases_and_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = sample_in(dir.path()) else {
        return;
    };
    let log = dir.path().join("run.log");
    let output = reseal(&[
        "generalize",
        &image,
        "--log",
        log.to_str().unwrap(),
        "--operations",
        "-event-logs",
    ]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let log = fs::read_to_string(&log).unwrap();
    assert_timestamped(&log);
    for words in [
        "reseal ",
        "arguments: generalize",
        "\"generalize\":true,",
        "check domain-joined: passed",
        "check dirty-hive: passed",
        "change by setup-state: ",
        "change by answer-file: ",
        "phase done: reading the image and planning (",
        "phase done: committing",
        "applied: ",
        "outcome: done, exit code 0",
    ] {
        assert!(log.contains(words), "the log lacks {words:?}:\n{log}");
    }
    assert!(!log.contains("change by event-logs"), "{log}");
    assert!(log.contains("operations run: domain-joined"), "{log}");
}

#[test]
fn a_refusal_and_a_usage_error_are_logged_with_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = sample_in(dir.path()) else {
        return;
    };
    fs::create_dir_all(Path::new(&image).join("Windows/WinSxS")).unwrap();
    fs::write(
        Path::new(&image).join("Windows/WinSxS/pending.xml"),
        b"<PendingTransaction/>",
    )
    .unwrap();
    let log = dir.path().join("refused.log");
    let output = reseal(&["generalize", &image, "--log", log.to_str().unwrap()]);
    assert_eq!(code(&output), 3, "{}", text(&output));
    let logged = fs::read_to_string(&log).unwrap();
    assert_timestamped(&logged);
    assert!(
        logged.contains("outcome: failed with exit code 3: "),
        "{logged}"
    );
    assert!(logged.contains("pending-servicing"), "{logged}");

    let log = dir.path().join("usage.log");
    let output = reseal(&[
        "reseal",
        "--oobe",
        &image,
        "--operations",
        "bogus",
        "--log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let logged = fs::read_to_string(&log).unwrap();
    assert!(logged.contains("arguments: reseal --oobe"), "{logged}");
    assert!(
        logged.contains("outcome: failed with exit code 2: --operations bogus"),
        "{logged}"
    );
}

#[test]
fn quiet_prints_only_errors_and_verbose_adds_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = sample_in(dir.path()) else {
        return;
    };
    let output = reseal(&["generalize", &image, "--dry-run", "-q"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(output.stdout.is_empty(), "{}", text(&output));
    assert!(output.stderr.is_empty(), "{}", text(&output));

    let output = reseal(&["generalize", &image, "--dry-run", "--verbose"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("check domain-joined: passed"), "{stderr}");
    assert!(stderr.contains("change by setup-state: "), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("Operations run: "));

    let output = reseal(&[
        "generalize",
        &image,
        "--dry-run",
        "--operations",
        "bogus",
        "-q",
    ]);
    assert_eq!(code(&output), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("--operations bogus"));

    let output = reseal(&["generalize", &image, "-q", "-v"]);
    assert_eq!(code(&output), 2, "-q and -v conflict: {}", text(&output));
}

#[test]
fn quiet_silences_verify_recover_hive_and_the_listing_too() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = sample_in(dir.path()) else {
        return;
    };
    let system = format!("{image}/Windows/System32/config/SYSTEM");
    // (arguments, exit code): each prints a report without -q.
    let commands: [(&[&str], i32); 5] = [
        (&["verify", &image], 5),
        (&["recover", &image], 0),
        (&["hive", &system, "ls", "Select"], 0),
        (&["hive", &system, "check"], 0),
        (&["list-operations"], 0),
    ];
    for (args, expected) in commands {
        let loud = reseal(args);
        assert_eq!(code(&loud), expected, "{args:?}: {}", text(&loud));
        assert!(!loud.stdout.is_empty(), "{args:?} prints nothing");
        let quiet = reseal(&[&["-q"], args].concat());
        assert_eq!(code(&quiet), expected, "{args:?} -q: {}", text(&quiet));
        assert!(quiet.stdout.is_empty(), "{args:?} -q: {}", text(&quiet));
        // Errors only: the verdict of an image that is not armed.
        let stderr = String::from_utf8_lossy(&quiet.stderr);
        assert_eq!(stderr.is_empty(), expected == 0, "{args:?} -q: {stderr}");
    }
    // A hive edit prints nothing under -q and still edits.
    let set = reseal(&[
        "-q", "hive", &system, "set", "Quiet", "Test", "-t", "dword", "7",
    ]);
    assert_eq!(code(&set), 0, "{}", text(&set));
    assert!(
        set.stdout.is_empty() && set.stderr.is_empty(),
        "{}",
        text(&set)
    );
    let get = reseal(&["hive", &system, "get", "Quiet", "Test"]);
    assert!(text(&get).contains('7'), "{}", text(&get));

    // What was asked for as a document is still printed.
    for args in [
        &["-q", "--json", "verify", &image][..],
        &["-q", "completions", "bash"],
    ] {
        let output = reseal(args);
        assert!(!output.stdout.is_empty(), "{args:?}: {}", text(&output));
    }

    // -v shows what the log records of verify and recover.
    let verbose = reseal(&["-v", "verify", &image]);
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(stderr.contains("reseal: FAIL "), "{stderr}");
    let verbose = reseal(&["-v", "recover", &image]);
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(stderr.contains("reseal: nothing to recover"), "{stderr}");
}

/// A log that cannot be written is found before the run changes anything: exit 2 and the image
/// as it was, not a finished run that a pipeline would take for a failed one.
#[test]
fn a_log_that_cannot_be_written_stops_the_run_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = sample_in(dir.path()) else {
        return;
    };
    let before = reseal_testutil::snapshot_tree(Path::new(&image));
    let log = dir.path().join("no such folder/run.log");
    let run = reseal(&["generalize", &image, "--log", log.to_str().unwrap()]);
    assert_eq!(code(&run), 2, "{}", text(&run));
    assert!(
        text(&run).contains("cannot write the log"),
        "{}",
        text(&run)
    );
    assert!(text(&run).contains("nothing was done"), "{}", text(&run));
    assert!(
        reseal_testutil::snapshot_tree(Path::new(&image)) == before,
        "the image changed"
    );
}
