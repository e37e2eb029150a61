//! The library's run calls (`generalize_images`, `inspect_images`), its typed errors, and what
//! one run reads and touches: each hive once, and no journal outside a directory.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use common::{fixed_options, sample_tree, wimlib};
use reseal::run::ALL_IMAGES;
use reseal::targets::{canonical_path, FileStore, Folder};
use reseal::{
    DirEntry, DirectoryTarget, ErrorKind, GeneralizeOptions, Input, OpenOptions, Progress,
    RecoveryOutcome, Remedy, Result, RunEvent, RunOptions, Target,
};
use reseal_testutil::workspace_root;

/// A WIM holding the sample image twice (as two editions), in a temporary folder.
fn two_image_wim() -> Option<(tempfile::TempDir, PathBuf)> {
    let source = workspace_root().join("fixtures/sample.wim");
    if !source.exists() {
        eprintln!("skipping: {} is missing", source.display());
        return None;
    }
    let tree = sample_tree()?;
    let dir = tempfile::tempdir().unwrap();
    let wim = dir.path().join("install.wim");
    fs::copy(&source, &wim).unwrap();
    let root = tree.root().to_str().unwrap().to_string();
    wimlib(&["append", &root, wim.to_str().unwrap(), "Second edition"]);
    Some((dir, wim))
}

/// The sample WIM with the sample image exported into it again under each of `names`: images
/// sharing every blob, as the editions of an install.wim do.
fn sample_wim_with_editions(dir: &Path, names: &[&str]) -> PathBuf {
    let source = workspace_root().join("fixtures/sample.wim");
    let wim = dir.join("install.wim");
    fs::copy(&source, &wim).unwrap();
    for name in names {
        wimlib(&[
            "export",
            source.to_str().unwrap(),
            "1",
            wim.to_str().unwrap(),
            name,
        ]);
    }
    wim
}

/// Generalizes every image of `wim` in place; returns the run's events.
fn generalize_every_image(wim: &Path) -> (Result<()>, Vec<RunEvent>) {
    let run = RunOptions {
        open: OpenOptions {
            index: Some(ALL_IMAGES),
            ..OpenOptions::default()
        },
        output: None,
    };
    let mut events = Vec::new();
    let result = reseal::generalize_images(
        wim,
        &run,
        &fixed_options(),
        &[],
        &reseal::NoProgress,
        &mut |event| events.push(event),
    );
    (result, events)
}

#[test]
fn every_image_of_a_wim_is_generalized_in_place_by_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let wim = sample_wim_with_editions(dir.path(), &["Second", "Third"]);
    let (result, events) = generalize_every_image(&wim);
    result.unwrap();
    assert_eq!(summary(&events).len(), 3, "{:?}", summary(&events));
    wimlib(&["verify", wim.to_str().unwrap()]);
    for index in ["1", "2", "3"] {
        let mut target = reseal::open_target_with(
            &wim,
            &OpenOptions {
                index: Some(index),
                ..OpenOptions::default()
            },
        )
        .unwrap();
        let inspection = reseal::inspect(target.as_mut()).unwrap();
        assert_eq!(
            inspection.image_state.as_deref(),
            Some("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"),
            "image {index}"
        );
    }
}

#[test]
fn a_failure_on_a_later_image_leaves_every_image_of_the_wim_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let wim = sample_wim_with_editions(dir.path(), &[]);
    // The second image holds no Windows installation: the run fails on it, after the first
    // image's changes were made and staged; the third would be fine.
    let not_windows = dir.path().join("data");
    fs::create_dir_all(&not_windows).unwrap();
    fs::write(not_windows.join("readme.txt"), b"data").unwrap();
    let source = workspace_root().join("fixtures/sample.wim");
    wimlib(&[
        "append",
        not_windows.to_str().unwrap(),
        wim.to_str().unwrap(),
        "Data",
    ]);
    wimlib(&[
        "export",
        source.to_str().unwrap(),
        "1",
        wim.to_str().unwrap(),
        "Third",
    ]);
    let original = fs::read(&wim).unwrap();

    let (result, events) = generalize_every_image(&wim);
    let error = result.unwrap_err();
    assert!(error.to_string().contains("not a Windows image"), "{error}");
    assert!(events.is_empty(), "{:?}", summary(&events));
    assert!(fs::read(&wim).unwrap() == original, "the WIM changed");
}

/// The events of a run, as (kind, target) pairs.
fn summary(events: &[RunEvent]) -> Vec<(&'static str, String)> {
    events
        .iter()
        .map(|event| match event {
            RunEvent::Recovered { target, .. } => ("recovered", target.clone()),
            RunEvent::Inspected { target, .. } => ("inspected", target.clone()),
            RunEvent::Generalized { target, .. } => ("generalized", target.clone()),
        })
        .collect()
}

#[test]
fn every_image_of_a_wim_is_generalized_into_a_copy_by_one_library_call() {
    let Some((dir, wim)) = two_image_wim() else {
        return;
    };
    let original = fs::read(&wim).unwrap();
    let copy = dir.path().join("generalized.wim");
    let run = RunOptions {
        open: OpenOptions {
            index: Some(ALL_IMAGES),
            ..OpenOptions::default()
        },
        output: Some(&copy),
    };
    let mut events = Vec::new();
    reseal::generalize_images(
        &wim,
        &run,
        &fixed_options(),
        &[],
        &reseal::NoProgress,
        &mut |event| events.push(event),
    )
    .unwrap();
    let done = summary(&events);
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(
        done.iter().all(|(kind, _)| *kind == "generalized"),
        "{done:?}"
    );
    assert!(done[1].1.contains("Second edition"), "{done:?}");
    for event in &events {
        let RunEvent::Generalized { plan, applied, .. } = event else {
            unreachable!()
        };
        assert!(!plan.changes.is_empty());
        assert!(!applied.as_ref().unwrap().hives_written.is_empty());
    }
    // The input is untouched, and the copy verifies and says both images are generalized.
    assert_eq!(fs::read(&wim).unwrap(), original);
    wimlib(&["verify", copy.to_str().unwrap()]);
    let mut inspected = Vec::new();
    reseal::inspect_images(
        &copy,
        &OpenOptions {
            index: Some("ALL"),
            ..OpenOptions::default()
        },
        &mut |event| inspected.push(event),
    )
    .unwrap();
    assert_eq!(inspected.len(), 2);
    for event in inspected {
        let RunEvent::Inspected { inspection, .. } = event else {
            panic!("{event:?}")
        };
        assert_eq!(inspection.computer_name.as_deref(), Some("NEW-PC"));
        assert_eq!(
            inspection.image_state.as_deref(),
            Some("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE")
        );
    }
}

#[test]
fn a_failed_run_into_a_copy_removes_the_copy_and_errors_name_inputs_not_flags() {
    let Some((dir, wim)) = two_image_wim() else {
        return;
    };
    let copy = dir.path().join("generalized.wim");
    // The second image fails validation (an unknown check name is refused before any write).
    let options = GeneralizeOptions {
        ignore_checks: vec!["no-such-check".into()],
        ..fixed_options()
    };
    let run = RunOptions {
        open: OpenOptions {
            index: Some(ALL_IMAGES),
            ..OpenOptions::default()
        },
        output: Some(&copy),
    };
    let error =
        reseal::generalize_images(&wim, &run, &options, &[], &reseal::NoProgress, &mut |_| {})
            .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Usage);
    assert_eq!(error.input, Some(Input::IgnoreCheck));
    assert!(!copy.exists());
    assert!(!error.to_string().contains("--"), "{error}");

    // A WIM with two images needs one chosen: the remedy says so, in no front end's words.
    let error = reseal::open_target(&wim).err().unwrap();
    assert_eq!(error.remedy, Some(Remedy::ChooseWimImage), "{error}");
    assert!(error.message.contains("Second edition"), "{error}");
    assert!(!error.to_string().contains("--"), "{error}");
    // An index on a directory.
    let tree = sample_tree().unwrap();
    let error = reseal::open_target_with(
        tree.root(),
        &OpenOptions {
            index: Some("1"),
            ..OpenOptions::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(
        (error.kind, error.input),
        (ErrorKind::Usage, Some(Input::Index))
    );
    assert!(!error.to_string().contains("--"), "{error}");
}

#[test]
fn a_damaged_hive_error_keeps_the_hive_engines_error_as_its_source() {
    let Some(tree) = sample_tree() else { return };
    let system = tree.path("Windows/System32/config/SYSTEM");
    let mut bytes = fs::read(&system).unwrap();
    bytes[4096..4100].copy_from_slice(b"XXXX");
    fs::write(&system, bytes).unwrap();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let error = reseal::plan(&mut target, &fixed_options(), &[]).unwrap_err();
    assert_eq!(error.kind, ErrorKind::CorruptInput, "{error}");
    let source = std::error::Error::source(&error).expect("a source");
    assert!(
        source.downcast_ref::<reseal_hive::Error>().is_some(),
        "{source:?}"
    );
}

/// A folder that counts what is read and records every path asked about.
struct RecordingStore {
    inner: Folder,
    reads: Rc<RefCell<BTreeMap<String, usize>>>,
}

impl FileStore for RecordingStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        *self
            .reads
            .borrow_mut()
            .entry(canonical_path(path))
            .or_default() += 1;
        self.inner.read_file(path)
    }
    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        self.inner.list_dir(path)
    }
    fn exists(&mut self, path: &str) -> Result<bool> {
        self.inner.exists(path)
    }
    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        self.inner.replace_file(path, contents)
    }
    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        self.inner.create_file(path, contents)
    }
    fn delete_file(&mut self, path: &str) -> Result<()> {
        self.inner.delete_file(path)
    }
    fn delete_dir_all(&mut self, path: &str) -> Result<()> {
        self.inner.delete_dir_all(path)
    }
    fn discard_incomplete_write(&mut self, path: &str) -> Result<()> {
        self.inner.discard_incomplete_write(path)
    }
}

#[test]
fn a_generalize_run_reads_each_hive_and_its_logs_once() {
    let Some(tree) = sample_tree() else { return };
    let reads = Rc::new(RefCell::new(BTreeMap::new()));
    let mut target = DirectoryTarget::over(Box::new(RecordingStore {
        inner: Folder::open(tree.root()).unwrap(),
        reads: reads.clone(),
    }));
    let (plan, applied) = reseal::generalize(&mut target, &fixed_options(), &[]).unwrap();
    let applied = applied.unwrap();
    assert!(applied.hives_written.len() >= 3, "{applied:?}");
    let reads = reads.borrow();
    for hive in &applied.hives_written {
        assert_eq!(
            reads.get(&canonical_path(hive)),
            Some(&1),
            "{hive}: {reads:?}"
        );
    }
    let logs_read_twice: Vec<_> = reads
        .iter()
        .filter(|(path, count)| path.contains(".LOG") && **count > 1)
        .collect();
    assert!(logs_read_twice.is_empty(), "{logs_read_twice:?}");
    assert!(!plan.changes.is_empty());
}

/// A target that passes everything to another and records every path it is asked about.
struct PathRecorder {
    inner: Box<dyn Target>,
    paths: Vec<String>,
}

impl PathRecorder {
    fn seen(&mut self, path: &str) {
        self.paths.push(canonical_path(path));
    }
}

impl Target for PathRecorder {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        self.seen(path);
        self.inner.read_file(path)
    }
    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        self.seen(path);
        self.inner.list_dir(path)
    }
    fn exists(&mut self, path: &str) -> Result<bool> {
        self.seen(path);
        self.inner.exists(path)
    }
    fn prepare_for_writes(&mut self) -> Result<()> {
        self.inner.prepare_for_writes()
    }
    fn begin(&mut self) -> Result<()> {
        self.inner.begin()
    }
    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        self.seen(path);
        self.inner.replace_file(path, contents)
    }
    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        self.seen(path);
        self.inner.create_file(path, contents)
    }
    fn delete_file(&mut self, path: &str) -> Result<()> {
        self.seen(path);
        self.inner.delete_file(path)
    }
    fn delete_dir_all(&mut self, path: &str) -> Result<()> {
        self.seen(path);
        self.inner.delete_dir_all(path)
    }
    fn commit(&mut self, progress: &dyn Progress) -> Result<()> {
        self.inner.commit(progress)
    }
    fn abort(&mut self) {
        self.inner.abort()
    }
    fn has_interrupted_run(&mut self) -> Result<bool> {
        self.inner.has_interrupted_run()
    }
    fn recover(&mut self) -> Result<Option<RecoveryOutcome>> {
        self.inner.recover()
    }
}

#[test]
fn a_wim_run_never_looks_for_a_journal_and_a_directory_run_leaves_none() {
    let source = workspace_root().join("fixtures/sample.wim");
    let Some(tree) = sample_tree() else { return };
    if !source.exists() {
        eprintln!("skipping: {} is missing", source.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wim = dir.path().join("install.wim");
    fs::copy(&source, &wim).unwrap();
    let journal = canonical_path("reseal-journal");

    let mut recorder = PathRecorder {
        inner: reseal::open_target(&wim).unwrap(),
        paths: Vec::new(),
    };
    assert_eq!(reseal::recover(&mut recorder).unwrap(), None);
    reseal::generalize(&mut recorder, &fixed_options(), &[]).unwrap();
    assert!(recorder.paths.len() > 20);
    assert!(
        !recorder.paths.iter().any(|p| p.starts_with(&journal)),
        "{:?}",
        recorder.paths
    );
    wimlib(&["verify", wim.to_str().unwrap()]);

    // A directory run journals inside its own commit and removes the journal.
    let mut directory = DirectoryTarget::open(tree.root()).unwrap();
    reseal::generalize(&mut directory, &fixed_options(), &[]).unwrap();
    assert!(!Path::new(&tree.path("reseal-journal")).exists());
    assert!(!directory.has_interrupted_run().unwrap());
}

#[test]
fn writes_outside_a_transaction_are_refused_and_abort_drops_staged_writes() {
    let Some(tree) = sample_tree() else { return };
    let before = tree.snapshot();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let error = target.create_file(r"Windows\new.txt", b"x").unwrap_err();
    assert_eq!(error.kind, ErrorKind::Usage, "{error}");
    target.begin().unwrap();
    target.create_file(r"Windows\new.txt", b"x").unwrap();
    target.delete_dir_all(r"Windows\System32").unwrap();
    // Staged writes of the journal's own folder are refused.
    assert!(target
        .create_file(r"RESEAL-JOURNAL\manifest.json", b"{}")
        .is_err());
    target.abort();
    target.commit(&reseal::NoProgress).unwrap();
    assert_eq!(tree.snapshot(), before);
    // A committed transaction does what it staged, and nothing else.
    target.begin().unwrap();
    target.create_file(r"Windows\new.txt", b"x").unwrap();
    target.commit(&reseal::NoProgress).unwrap();
    let mut after = tree.snapshot();
    assert_eq!(after.remove("Windows/new.txt").as_deref(), Some(&b"x"[..]));
    assert_eq!(after, before);
}
