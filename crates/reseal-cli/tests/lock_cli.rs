//! One writer per image through the binary: a second run exits 6 naming the holder's pid,
//! `--wait` waits, two real concurrent runs on one WIM leave it valid, a live run's journal is
//! not recovered, and output into a closed pipe is no panic.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{code, reseal, text};
use reseal::{ErrorKind, ImageLock, LockMode};

const IN_USE: i32 = 6;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_reseal"))
}

fn sample_wim() -> Option<(tempfile::TempDir, PathBuf)> {
    reseal_testutil::sample_wim_copy()
}

fn sample_dir() -> Option<tempfile::TempDir> {
    reseal_testutil::sample_dir_copy()
}

fn wimlib_verify(wim: &Path) {
    let verify = Command::new("wimlib-imagex")
        .args(["verify", s(wim)])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn a_second_generalize_exits_6_naming_the_first_runs_pid_and_the_wim_stays_valid() {
    let Some((_dir, wim)) = sample_wim() else {
        return;
    };
    // The first run's stdout is a pipe kept full, so it stops at its first line of output, after
    // its commit and with the image still held, until the pipe is read.
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    let (mut reader, writer) = (fs::File::from(reader), fs::File::from(writer));
    let filler = {
        let mut writer = writer.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = writer.write_all(&vec![b'.'; 1 << 20]);
        })
    };
    let mut first = bin()
        .args(["generalize", s(&wim)])
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        match ImageLock::acquire(&wim, LockMode::Shared, false) {
            Err(error) if error.kind == ErrorKind::InUse => break,
            Err(error) => panic!("{error}"),
            Ok(_) => {}
        }
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended before it was seen holding the WIM"
        );
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(5));
    }

    let second = reseal(&["generalize", s(&wim)]);
    assert_eq!(code(&second), IN_USE, "{}", text(&second));
    let expected = format!(
        "{} is in use by another reseal run (pid {})",
        wim.display(),
        first.id()
    );
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(message.contains(&expected), "{message}");
    assert!(message.contains("--wait"), "{message}");
    let recover = reseal(&["recover", s(&wim)]);
    assert_eq!(code(&recover), 0, "{}", text(&recover));

    let drain = std::thread::spawn(move || {
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        all
    });
    let first = first.wait_with_output().unwrap();
    filler.join().unwrap();
    assert_eq!(code(&first), 0, "{}", text(&first));
    let out = drain.join().unwrap();
    assert!(String::from_utf8_lossy(&out).contains("applied:"));
    wimlib_verify(&wim);
}

#[test]
fn of_two_concurrent_generalize_runs_on_one_wim_exactly_one_succeeds() {
    const REFUSED: i32 = 3;
    for _ in 0..5 {
        let Some((_dir, wim)) = sample_wim() else {
            return;
        };
        let runs: Vec<_> = (0..2)
            .map(|_| {
                bin()
                    .args(["generalize", s(&wim)])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut codes: Vec<i32> = Vec::new();
        for run in runs {
            let output = run.wait_with_output().unwrap();
            if code(&output) == IN_USE {
                assert!(text(&output).contains("is in use by another reseal run (pid "));
            }
            codes.push(code(&output));
        }
        codes.sort();
        // The loser either found the image held (6) or, when it started after the winner was
        // done, found it already generalized (3); never two successes, never a broken WIM.
        assert!(
            codes == [0, REFUSED] || codes == [0, IN_USE],
            "exit codes {codes:?}"
        );
        wimlib_verify(&wim);
    }
}

#[test]
fn recover_leaves_the_journal_of_a_live_run_alone_and_wait_waits_for_it() {
    let Some(dir) = sample_dir() else {
        return;
    };
    let root = dir.path();
    let journal = root.join("reseal-journal");
    let live = ImageLock::acquire(root, LockMode::Exclusive, false).unwrap();
    fs::create_dir(&journal).unwrap();
    fs::write(journal.join("manifest.json"), b"{ being written").unwrap();
    let expected = format!(
        "{} is in use by another reseal run (pid {})",
        root.display(),
        std::process::id()
    );
    for args in [
        vec!["recover", s(root)],
        vec!["inspect", s(root)],
        vec!["generalize", s(root)],
        vec!["verify", s(root)],
    ] {
        let run = reseal(&args);
        assert_eq!(code(&run), IN_USE, "{args:?}: {}", text(&run));
        assert!(text(&run).contains(&expected), "{}", text(&run));
    }
    assert_eq!(
        fs::read(journal.join("manifest.json")).unwrap(),
        b"{ being written"
    );

    // `--wait` waits for the holder; the journal is then an interrupted run's (here one that
    // had staged nothing) and is recovered.
    fs::remove_file(journal.join("manifest.json")).unwrap();
    let (released, was_released) = mpsc::channel();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(live);
        released.send(()).unwrap();
    });
    let run = reseal(&["recover", "--wait", s(root)]);
    was_released
        .try_recv()
        .expect("recover ran before the lock was released");
    holder.join().unwrap();
    assert_eq!(code(&run), 0, "{}", text(&run));
    assert!(!journal.exists());
    assert!(!root.join(reseal::lock::DIRECTORY_LOCK_FILE).exists());
}

#[test]
fn output_into_a_closed_pipe_is_no_panic() {
    let Some(dir) = sample_dir() else {
        return;
    };
    for json in [true, false] {
        let mut args = vec!["inspect", s(dir.path())];
        if json {
            args.push("--json");
        }
        let mut child = bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read a few bytes at most, then close the pipe, as `| head -c 10` does.
        let mut stdout = child.stdout.take().unwrap();
        drop(stdout.read(&mut [0u8; 10]));
        drop(stdout);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(code(&output), 0, "{stderr}");
    }
}

#[test]
fn a_closed_pipe_through_the_shell_is_no_panic() {
    let Some(dir) = sample_dir() else {
        return;
    };
    let script = format!(
        "'{}' inspect '{}' --json | head -c 10 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_reseal"),
        s(dir.path())
    );
    let run = Command::new("bash").args(["-c", &script]).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "0", "{stderr}");
}
