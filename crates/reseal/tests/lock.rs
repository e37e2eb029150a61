//! One writer per image: the lock `open_target_with` and the run calls take on a directory, a
//! WIM file and a disk image, what a second run gets while it is held, `wait`, and recovery that
//! never touches what a live run holds.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::{fixed_options, sample_tree, Tree};
use reseal::{
    ErrorKind, ImageLock, LockMode, NoProgress, OpenOptions, Remedy, RunEvent, RunOptions, Target,
};
use reseal_testutil::ntfs_image::{apply_wim, make_volume};
use reseal_testutil::workspace_root;

fn exclusive() -> OpenOptions<'static> {
    OpenOptions::default()
}

fn shared() -> OpenOptions<'static> {
    OpenOptions {
        lock: LockMode::Shared,
        ..OpenOptions::default()
    }
}

/// Opening `image` fails with the in-use error naming the image and this process's pid.
fn assert_in_use(image: &Path, result: reseal::Result<Box<dyn Target>>) {
    let Err(error) = result else {
        panic!("{} opened while another holder had it", image.display());
    };
    assert_in_use_error(image, &error);
}

fn assert_in_use_error(image: &Path, error: &reseal::Error) {
    assert_eq!(error.kind, ErrorKind::InUse, "{error}");
    assert_eq!(error.remedy, Some(Remedy::WaitForOtherRun));
    let expected = format!(
        "{} is in use by another reseal run (pid {})",
        image.display(),
        std::process::id()
    );
    assert!(error.to_string().contains(&expected), "{error}");
}

fn sample_wim() -> Option<(tempfile::TempDir, PathBuf)> {
    reseal_testutil::sample_wim_copy()
}

/// A directory that opens as a Windows image (it has a SYSTEM hive file, never read here).
fn windows_tree() -> Tree {
    let tree = Tree::empty();
    tree.write("Windows/System32/config/SYSTEM", b"");
    tree
}

/// The holder's file beside an image file.
fn pid_file(image: &Path) -> PathBuf {
    let mut name = image.file_name().unwrap().to_os_string();
    name.push(reseal::lock::PID_FILE_SUFFIX);
    image.with_file_name(name)
}

#[test]
fn a_directory_is_held_by_one_writer_until_its_target_is_dropped() {
    let tree = windows_tree();
    let root = tree.root();
    let lock_file = root.join(reseal::lock::DIRECTORY_LOCK_FILE);

    let mut first = reseal::open_target_with(root, &exclusive()).unwrap();
    assert_eq!(
        fs::read_to_string(&lock_file).unwrap().trim(),
        std::process::id().to_string()
    );
    // The lock file is no part of the image: not listed, not writable.
    let names: Vec<String> = first
        .list_dir("")
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    assert_eq!(names, ["Windows"]);
    first.begin().unwrap();
    let refused = first.delete_file("RESEAL.LOCK").unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Usage, "{refused}");
    first.abort();

    assert_in_use(root, reseal::open_target_with(root, &exclusive()));
    assert_in_use(root, reseal::open_target_with(root, &shared()));
    drop(first);
    assert!(!lock_file.exists(), "the lock file was left in the image");

    let second = reseal::open_target_with(root, &exclusive()).unwrap();
    drop(second);
    assert!(!lock_file.exists());
}

#[test]
fn readers_share_a_directory_and_keep_writers_out() {
    let tree = windows_tree();
    let root = tree.root();
    let first = reseal::open_target_with(root, &shared()).unwrap();
    let second = reseal::open_target_with(root, &shared()).unwrap();
    assert_in_use(root, reseal::open_target_with(root, &exclusive()));
    drop(first);
    assert_in_use(root, reseal::open_target_with(root, &exclusive()));
    drop(second);
    assert!(!root.join(reseal::lock::DIRECTORY_LOCK_FILE).exists());
    drop(reseal::open_target_with(root, &exclusive()).unwrap());
}

#[test]
fn a_target_held_shared_neither_writes_nor_recovers() {
    let tree = windows_tree();
    let root = tree.root();
    fs::create_dir(root.join("reseal-journal")).unwrap();
    let mut target = reseal::open_target_with(root, &shared()).unwrap();
    assert!(target.has_interrupted_run().unwrap());
    assert_eq!(target.recover().unwrap_err().kind, ErrorKind::Usage);
    assert_eq!(target.begin().unwrap_err().kind, ErrorKind::Usage);
    assert!(root.join("reseal-journal").exists());
}

#[test]
fn a_wim_file_is_held_by_one_writer_until_its_target_is_dropped() {
    let Some((_dir, wim)) = sample_wim() else {
        return;
    };
    let before = fs::read(&wim).unwrap();
    let first = reseal::open_target_with(&wim, &exclusive()).unwrap();
    assert!(pid_file(&wim).exists());
    assert_in_use(&wim, reseal::open_target_with(&wim, &exclusive()));
    assert_in_use(&wim, reseal::open_target_with(&wim, &shared()));
    // The run calls take the same lock.
    let mut events = Vec::new();
    let error = reseal::generalize_images(
        &wim,
        &RunOptions::default(),
        &fixed_options(),
        &[],
        &NoProgress,
        &mut |event| events.push(event),
    )
    .unwrap_err();
    assert_in_use_error(&wim, &error);
    let error =
        reseal::inspect_images(&wim, &OpenOptions::default(), &mut |e| events.push(e)).unwrap_err();
    assert_in_use_error(&wim, &error);
    assert!(events.is_empty());
    drop(first);
    assert!(
        !pid_file(&wim).exists(),
        "the pid file was left beside the WIM"
    );
    assert_eq!(fs::read(&wim).unwrap(), before, "the lock touched the WIM");

    drop(reseal::open_target_with(&wim, &exclusive()).unwrap());
}

#[test]
fn a_disk_image_is_held_by_one_writer_and_an_output_diff_run_locks_the_input() {
    let source = workspace_root().join("fixtures/sample.wim");
    if !source.exists() {
        eprintln!("skipping: {} is missing", source.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("windows.raw");
    make_volume(&disk, 64 << 20);
    apply_wim(&source, &disk);
    let child = dir.path().join("child.vhd");

    let first = reseal::open_target_with(&disk, &exclusive()).unwrap();
    assert_in_use(&disk, reseal::open_target_with(&disk, &exclusive()));
    let with_child = OpenOptions {
        output_diff: Some(&child),
        ..OpenOptions::default()
    };
    assert_in_use(&disk, reseal::open_target_with(&disk, &with_child));
    drop(first);
    assert!(!pid_file(&disk).exists());
    drop(reseal::open_target_with(&disk, &exclusive()).unwrap());
}

#[test]
fn wait_blocks_until_the_holder_lets_go() {
    let tree = windows_tree();
    let root = tree.root().to_path_buf();
    let (held, is_held) = mpsc::channel();
    let holder = {
        let root = root.clone();
        std::thread::spawn(move || {
            let lock = ImageLock::acquire(&root, LockMode::Exclusive, false).unwrap();
            held.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(lock);
        })
    };
    is_held.recv().unwrap();
    let waiting = OpenOptions {
        wait: true,
        ..OpenOptions::default()
    };
    let target = reseal::open_target_with(&root, &waiting).unwrap();
    holder.join().unwrap();
    drop(target);
    assert!(!root.join(reseal::lock::DIRECTORY_LOCK_FILE).exists());
}

#[test]
fn a_live_runs_journal_is_not_recovered_by_another_run() {
    let Some(tree) = sample_tree() else {
        return;
    };
    let root = tree.root();
    // A run in the middle of its commit: it holds the image and its journal is there.
    let live = ImageLock::acquire(root, LockMode::Exclusive, false).unwrap();
    let journal = root.join("reseal-journal");
    fs::create_dir(&journal).unwrap();
    fs::write(journal.join("manifest.json"), b"{ being written").unwrap();

    let mut events = Vec::new();
    let error = reseal::generalize_images(
        root,
        &RunOptions::default(),
        &fixed_options(),
        &[],
        &NoProgress,
        &mut |event| events.push(event),
    )
    .unwrap_err();
    assert_in_use_error(root, &error);
    let error =
        reseal::inspect_images(root, &OpenOptions::default(), &mut |e| events.push(e)).unwrap_err();
    assert_in_use_error(root, &error);
    let error = reseal::open_target_with(root, &exclusive()).err().unwrap();
    assert_in_use_error(root, &error);
    assert!(events.is_empty());
    assert_eq!(
        fs::read(journal.join("manifest.json")).unwrap(),
        b"{ being written"
    );

    // Once its holder is gone the journal is an interrupted run's: inspect (which reads under a
    // shared lock) takes the image to itself to recover it.
    drop(live);
    fs::remove_file(journal.join("manifest.json")).unwrap();
    reseal::inspect_images(root, &OpenOptions::default(), &mut |e| events.push(e)).unwrap();
    assert!(
        matches!(events[0], RunEvent::Recovered { .. }),
        "{events:?}"
    );
    assert!(
        matches!(events[1], RunEvent::Inspected { .. }),
        "{events:?}"
    );
    assert!(!journal.exists());
    assert!(!root.join(reseal::lock::DIRECTORY_LOCK_FILE).exists());
}

/// A lock file planted as a symbolic link, a hard link or anything but a regular file at a
/// directory image's root is refused; nothing is created where a link points, nothing written
/// into a linked file.
#[test]
fn a_directory_lock_file_that_is_a_link_or_a_fifo_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("created-by-the-lock");
    let hard_linked = outside.path().join("hard-linked");
    for planted in ["symlink", "fifo", "hard link"] {
        let image = tempfile::tempdir().unwrap();
        let lock_file = image.path().join(reseal::lock::DIRECTORY_LOCK_FILE);
        if planted == "symlink" {
            std::os::unix::fs::symlink(&target, &lock_file).unwrap();
        } else if planted == "hard link" {
            fs::write(&hard_linked, b"keep me").unwrap();
            fs::hard_link(&hard_linked, &lock_file).unwrap();
        } else {
            let made = std::process::Command::new("mkfifo")
                .arg(&lock_file)
                .status()
                .unwrap();
            assert!(made.success());
        }
        let error = ImageLock::acquire(image.path(), LockMode::Exclusive, false).unwrap_err();
        let text = error.to_string();
        assert!(text.contains(&lock_file.display().to_string()), "{text}");
        let what = match planted {
            "symlink" => "a symbolic link",
            "hard link" => "hard-linked to another file",
            _ => "not a regular file",
        };
        assert!(text.contains(what), "{planted}: {text}");
        assert!(
            !target.exists(),
            "{planted}: the lock created a file elsewhere"
        );
        if planted == "hard link" {
            assert_eq!(
                fs::read(&hard_linked).unwrap(),
                b"keep me",
                "the linked file"
            );
        }
        assert!(
            fs::symlink_metadata(&lock_file).is_ok(),
            "{planted} left alone"
        );
    }
}

/// The pid file beside an image file is written as a new file: a symbolic or hard link planted
/// there does not pass the write to the file it points at.
#[test]
fn the_pid_file_beside_an_image_never_writes_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    fs::write(&image, b"not really a disk").unwrap();
    for planted in ["symlink", "hard link"] {
        let precious = dir.path().join(format!("precious {planted}"));
        fs::write(&precious, b"keep me").unwrap();
        if planted == "symlink" {
            std::os::unix::fs::symlink(&precious, pid_file(&image)).unwrap();
        } else {
            fs::hard_link(&precious, pid_file(&image)).unwrap();
        }
        let lock = ImageLock::acquire(&image, LockMode::Exclusive, false).unwrap();
        assert!(lock.is_held());
        assert_eq!(fs::read(&precious).unwrap(), b"keep me", "{planted}");
        let pid = fs::read_to_string(pid_file(&image)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string(), "{planted}");
        assert!(fs::symlink_metadata(pid_file(&image)).unwrap().is_file());
        drop(lock);
        assert!(!pid_file(&image).exists());
        assert_eq!(fs::read(&precious).unwrap(), b"keep me", "{planted}");
    }
}
