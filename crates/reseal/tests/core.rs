//! Plans and their application: hand-made plans on trees built from real hives, checked with
//! hivex; dry runs; idempotence; and crashes at every step of apply, then recovery.

mod common;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use common::{
    hivex_key, hivex_shallow, hivex_shallow_of_bytes, hivex_value, hivex_value_at, win7_tree,
    HivexShallowKey, Tree,
};
use reseal::image::{SAM, SECURITY, SYSTEM};
use reseal::targets::{FileStore, Folder};
use reseal::{
    Action, DirEntry, DirectoryTarget, Error, ErrorKind, Image, Origin, Plan, RecoveryOutcome,
    Remedy, Result, ValueType,
};
use reseal_hive::data::{encode_dword, encode_sz};
use reseal_testutil::{hivex_tree, hivex_tree_of_bytes};

const P: &str = "test";
const S: &str = "hand-made plan";
const O: Origin = Origin {
    provider: P,
    source: S,
};

/// Adds the files the sample plan works on.
fn add_sample_files(tree: &Tree) {
    tree.write(
        "Windows/Setup/State/State.ini",
        b"[State]\r\nImageState=IMAGE_STATE_COMPLETE\r\n",
    );
    tree.write("Windows/Temp/old.log", b"old log");
    tree.write("Windows/Prefetch/CMD.EXE-1.pf", b"pf");
    tree.write("Windows/Prefetch/Sub/x.db", b"db");
    tree.write("Windows/Logs/a.etl", b"etl");
    tree.write("Windows/Logs/B.ETL", b"etl");
    tree.write("Windows/Logs/keep.txt", b"keep");
}

/// One of each change, through the plan helpers.
fn sample_plan(image: &mut Image) -> Result<Plan> {
    let mut plan = Plan::new();
    plan.set_value(
        image,
        O,
        SYSTEM,
        "Setup",
        "CmdLine",
        ValueType::SZ,
        &encode_sz(r"oobe\windeploy.exe"),
    )?;
    plan.set_value(
        image,
        O,
        SYSTEM,
        r"Setup\ResealTest\Sub",
        "Answer",
        ValueType::DWORD,
        &encode_dword(42),
    )?;
    plan.delete_value(image, O, SYSTEM, "RNG", "Seed")?;
    plan.create_key(image, O, SYSTEM, "ResealEmpty")?;
    plan.delete_key(image, O, SYSTEM, "MountedDevices")?;
    plan.rename_key(image, O, SYSTEM, "ControlSet002", "ControlSet009")?;
    plan.set_value(
        image,
        O,
        SAM,
        r"SAM\Domains\Account",
        "ResealTest",
        ValueType::BINARY,
        &[1, 2, 3],
    )?;
    plan.write_file(
        image,
        O,
        r"Windows\Panther\unattend.xml",
        b"<unattend/>",
        false,
    )?;
    plan.write_file(
        image,
        O,
        r"Windows\Setup\State\State.ini",
        b"[State]\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n",
        false,
    )?;
    plan.delete_file(image, O, r"Windows\Temp\old.log")?;
    plan.delete_directory(image, O, r"Windows\Prefetch")?;
    plan.delete_files_matching(image, O, r"Windows\Logs", "*.etl")?;
    Ok(plan)
}

#[test]
fn a_hand_made_plan_applies_exactly_as_hivex_sees_it() {
    let Some(tree) = win7_tree() else { return };
    add_sample_files(&tree);
    let before_sam = tree.snapshot()["Windows/System32/config/SAM"].clone();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let plan = sample_plan(&mut Image::new(&mut target)).unwrap();

    let verbs: Vec<&str> = plan.changes.iter().map(|c| c.action.verb()).collect();
    assert_eq!(
        verbs,
        vec![
            "set value",
            "create key",
            "add value",
            "delete value",
            "create key",
            "delete key",
            "rename key",
            "add value",
            "create file",
            "replace file",
            "delete file",
            "delete directory",
            "delete file",
            "delete file"
        ]
    );
    let report = reseal::apply(&mut target, &plan).unwrap();
    assert_eq!(report.hives_written.len(), 2);
    assert_eq!(report.files_deleted.len(), 3);

    let system = tree.path("Windows/System32/config/SYSTEM");
    assert_eq!(
        hivex_value_at(&system, "Setup", "CmdLine"),
        Some((1, encode_sz(r"oobe\windeploy.exe")))
    );
    assert_eq!(
        hivex_value_at(&system, r"Setup\ResealTest\Sub", "Answer"),
        Some((4, vec![42, 0, 0, 0]))
    );
    let rng = hivex_shallow(&system, "RNG").unwrap();
    assert_eq!(rng.values.len(), 1, "{rng:?}");
    assert_eq!(rng.values[0].0, "ExternalEntropyCount");
    let empty = hivex_shallow(&system, "ResealEmpty").unwrap();
    assert!(empty.values.is_empty() && empty.children.is_empty());
    let root = hivex_shallow(&system, "").unwrap();
    assert_eq!(
        root.children,
        // Sorted by upper-cased name, as the subkey list must be.
        vec![
            "ControlSet001",
            "ControlSet009",
            "ResealEmpty",
            "RNG",
            "Select",
            "Setup",
            "Software",
            "WPA"
        ]
    );
    assert!(hivex_shallow(&system, r"ControlSet009\Control\ComputerName\ComputerName").is_some());
    // Everything the plan did not touch is still there.
    assert_eq!(
        hivex_value_at(
            &system,
            r"ControlSet001\Control\ComputerName\ComputerName",
            "ComputerName"
        ),
        Some((1, encode_sz("WKS-WIN732BITA")))
    );

    let sam = hivex_tree(&tree.path("Windows/System32/config/SAM"));
    assert_eq!(
        hivex_value(&sam, r"SAM\Domains\Account", "ResealTest"),
        Some((3, vec![1, 2, 3]))
    );
    let old_sam = hivex_tree_of_bytes(&before_sam);
    assert_eq!(
        hivex_key(&sam, r"SAM\Domains\Builtin"),
        hivex_key(&old_sam, r"SAM\Domains\Builtin")
    );

    let files = tree.snapshot();
    assert_eq!(files["Windows/Panther/unattend.xml"], b"<unattend/>");
    assert!(files["Windows/Setup/State/State.ini"].ends_with(b"TO_OOBE\r\n"));
    assert!(!files.contains_key("Windows/Temp/old.log"));
    assert!(!tree.path("Windows/Prefetch").exists());
    assert!(!files.contains_key("Windows/Logs/a.etl") && !files.contains_key("Windows/Logs/B.ETL"));
    assert_eq!(files["Windows/Logs/keep.txt"], b"keep");
    assert!(!tree.path("reseal-journal").exists());
}

#[test]
fn planning_never_writes_and_a_second_plan_is_empty() {
    let Some(tree) = win7_tree() else { return };
    add_sample_files(&tree);
    let before = tree.snapshot();
    let dirs_before = tree.directories();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();

    let plan = sample_plan(&mut Image::new(&mut target)).unwrap();
    assert!(!plan.is_empty());
    // Planning again without applying gives the same plan, and nothing was written.
    assert_eq!(
        sample_plan(&mut Image::new(&mut target)).unwrap().changes,
        plan.changes
    );
    assert_eq!(tree.snapshot(), before);
    assert_eq!(tree.directories(), dirs_before);

    reseal::apply(&mut target, &plan).unwrap();
    let after = tree.snapshot();
    let second = sample_plan(&mut Image::new(&mut target)).unwrap();
    assert!(second.is_empty(), "second plan:\n{second}");
    // Applying an empty plan writes nothing.
    reseal::apply(&mut target, &second).unwrap();
    assert_eq!(tree.snapshot(), after);
}

#[test]
fn a_dry_run_leaves_every_byte_alone_even_when_it_fails() {
    let Some(tree) = win7_tree() else { return };
    add_sample_files(&tree);
    let before = tree.snapshot();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let options = reseal::GeneralizeOptions {
        dry_run: true,
        ignore_checks: reseal::validate::CHECKS
            .iter()
            .map(|c| c.to_string())
            .collect(),
        ..Default::default()
    };
    let result = reseal::generalize(&mut target, &options, &[]);
    if let Ok((_, report)) = &result {
        assert!(report.is_none(), "a dry run applies nothing");
    }
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn the_image_overlay_shows_planned_changes_to_later_providers() {
    let Some(tree) = win7_tree() else { return };
    add_sample_files(&tree);
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let mut image = Image::new(&mut target);
    let mut plan = Plan::new();
    plan.delete_directory(&mut image, O, r"Windows\Prefetch")
        .unwrap();
    assert!(!image.exists(r"Windows\Prefetch\CMD.EXE-1.pf").unwrap());
    assert!(image.list_dir(r"Windows\Prefetch").unwrap().is_none());
    // Deleting a file in a deleted directory is no change.
    plan.delete_file(&mut image, O, r"Windows\Prefetch\CMD.EXE-1.pf")
        .unwrap();
    plan.write_file(&mut image, O, r"Windows\Prefetch\new.txt", b"n", false)
        .unwrap();
    let listing = image.list_dir(r"windows\prefetch").unwrap().unwrap();
    assert_eq!(
        listing,
        vec![DirEntry {
            name: "new.txt".into(),
            is_dir: false,
            size: 1
        }]
    );
    plan.write_file(&mut image, O, r"Windows\Prefetch\new.txt", b"n", false)
        .unwrap();
    plan.delete_key(&mut image, O, SYSTEM, "WPA").unwrap();
    plan.delete_key(&mut image, O, SYSTEM, "WPA").unwrap();
    plan.set_value(
        &mut image,
        O,
        SYSTEM,
        r"WPA\X",
        "v",
        ValueType::DWORD,
        &encode_dword(1),
    )
    .unwrap();
    let verbs: Vec<&str> = plan.changes.iter().map(|c| c.action.verb()).collect();
    assert_eq!(
        verbs,
        vec![
            "delete directory",
            "create file",
            "delete key",
            "create key",
            "add value"
        ]
    );
    drop(image);

    reseal::apply(&mut target, &plan).unwrap();
    assert_eq!(
        tree.snapshot()
            .keys()
            .filter(|k| k.contains("Prefetch"))
            .collect::<Vec<_>>(),
        vec!["Windows/Prefetch/new.txt"]
    );
    let wpa = hivex_shallow(&tree.path("Windows/System32/config/SYSTEM"), "WPA").unwrap();
    assert_eq!(wpa.children, vec!["X"]);
}

#[test]
fn a_stale_plan_is_refused_before_anything_is_written() {
    let Some(tree) = win7_tree() else { return };
    add_sample_files(&tree);
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let plan = sample_plan(&mut Image::new(&mut target)).unwrap();
    // The image changes after planning.
    std::fs::remove_file(tree.path("Windows/Temp/old.log")).unwrap();
    let before = tree.snapshot();
    let err = reseal::apply(&mut target, &plan).unwrap_err();
    assert!(err.message.contains("changed since the plan"), "{err}");
    assert!(err.file.unwrap().contains("old.log"));
    assert_eq!(tree.snapshot(), before);

    let mut plan = Plan::new();
    plan.changes.push(reseal::Change {
        provider: P,
        source: S,
        action: Action::DeleteValue {
            hive: SYSTEM.into(),
            key: "Setup".into(),
            name: "CmdLine".into(),
            before: (ValueType::SZ, encode_sz("something else")),
        },
    });
    let err = reseal::apply(&mut target, &plan).unwrap_err();
    assert!(err.message.contains("CmdLine"), "{err}");
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn a_dirty_hive_is_recovered_from_its_logs_and_its_logs_emptied() {
    let tree = Tree::empty();
    for (fixture, name) in [
        ("hives/regipy/SYSTEM_B", "SYSTEM"),
        ("hives/regipy/SYSTEM_B.LOG1", "SYSTEM.LOG1"),
        ("hives/regipy/SYSTEM_B.LOG2", "SYSTEM.LOG2"),
    ] {
        if tree
            .copy_fixture(fixture, &format!("Windows/System32/config/{name}"))
            .is_none()
        {
            return;
        }
    }
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let status = Image::new(&mut target)
        .hive_status(SYSTEM)
        .unwrap()
        .unwrap();
    assert!(status.was_dirty, "{status:?}");
    assert!(status.recovered, "{status:?}");
    assert_eq!(status.logs.len(), 2);

    let mut image = Image::new(&mut target);
    let mut plan = Plan::new();
    plan.set_value(
        &mut image,
        O,
        SYSTEM,
        "Setup",
        "ResealMark",
        ValueType::DWORD,
        &encode_dword(7),
    )
    .unwrap();
    drop(image);
    reseal::apply(&mut target, &plan).unwrap();

    let files = tree.snapshot();
    assert!(files["Windows/System32/config/SYSTEM.LOG1"].is_empty());
    assert!(files["Windows/System32/config/SYSTEM.LOG2"].is_empty());
    let system = tree.path("Windows/System32/config/SYSTEM");
    assert_eq!(
        hivex_value_at(&system, "Setup", "ResealMark"),
        Some((4, vec![7, 0, 0, 0]))
    );
    let status = Image::new(&mut target)
        .hive_status(SYSTEM)
        .unwrap()
        .unwrap();
    assert!(!status.was_dirty, "{status:?}");
}

#[test]
fn the_plan_prints_as_a_table_and_serializes() {
    let Some(tree) = win7_tree() else { return };
    add_sample_files(&tree);
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let mut image = Image::new(&mut target);
    let mut plan = sample_plan(&mut image).unwrap();
    plan.write_file(
        &mut image,
        O,
        r"Windows\Panther\secret.xml",
        b"<Password>pw-123</Password>",
        true,
    )
    .unwrap();
    plan.note(P, "left the licensing store alone");
    let text = plan.to_string();
    assert!(
        text.starts_with('#') && text.contains("PROVIDER  CHANGE"),
        "{text}"
    );
    assert!(text.contains(r#"SYSTEM\Setup "CmdLine""#), "{text}");
    assert!(
        text.contains(r#"REG_SZ "" -> REG_SZ "oobe\\windeploy.exe""#),
        "{text}"
    );
    assert!(text.contains("left the licensing store alone"));
    assert!(!text.contains("pw-123"));
    let json: serde_json::Value = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["changes"].as_array().unwrap().len(),
        plan.changes.len()
    );
    assert_eq!(json["changes"][0]["action"], "set-value");
    assert_eq!(json["changes"][0]["provider"], P);
    assert_eq!(
        json["changes"][0]["value"]["display"],
        r#""oobe\\windeploy.exe""#
    );
    assert!(!json.to_string().contains("pw-123"));
}

// ---------------------------------------------------------------------------------------------
// Crashes during apply.

/// A folder that fails every write (like a crash) once `budget` writes have been made. With
/// `after_write`, the write the crash happens at still reaches the disk (a crash right after it).
struct FailingStore {
    inner: Folder,
    crash: Crash,
    after_write: bool,
}

/// The write count and the budget of a [`FailingStore`], shared with the test.
#[derive(Clone, Default)]
struct Crash {
    writes: Rc<Cell<usize>>,
    budget: Rc<Cell<usize>>,
}

/// A directory target over the folder at `root` that crashes after `budget` writes.
fn failing_target(
    root: &std::path::Path,
    budget: usize,
    after_write: bool,
) -> (DirectoryTarget, Crash) {
    let crash = Crash::default();
    crash.budget.set(budget);
    let store = FailingStore {
        inner: Folder::open(root).unwrap(),
        crash: crash.clone(),
        after_write,
    };
    (DirectoryTarget::over(Box::new(store)), crash)
}

impl FailingStore {
    fn write<T>(&mut self, op: impl FnOnce(&mut Folder) -> Result<T>) -> Result<T> {
        let n = self.crash.writes.get();
        self.crash.writes.set(n + 1);
        let budget = self.crash.budget.get();
        if n < budget {
            return op(&mut self.inner);
        }
        // Only the write the crash happens at can still reach the disk; nothing runs after it.
        if self.after_write && n == budget {
            let _ = op(&mut self.inner);
        }
        Err(Error::other(None, "simulated crash"))
    }
}

impl FileStore for FailingStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        self.inner.read_file(path)
    }
    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        self.inner.list_dir(path)
    }
    fn exists(&mut self, path: &str) -> Result<bool> {
        self.inner.exists(path)
    }
    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        self.write(|t| t.replace_file(path, contents))
    }
    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        self.write(|t| t.create_file(path, contents))
    }
    fn delete_file(&mut self, path: &str) -> Result<()> {
        self.write(|t| t.delete_file(path))
    }
    fn delete_dir_all(&mut self, path: &str) -> Result<()> {
        self.write(|t| t.delete_dir_all(path))
    }
    fn discard_incomplete_write(&mut self, path: &str) -> Result<()> {
        self.write(|t| t.discard_incomplete_write(path))
    }
}

/// A tree with small hives (SAM, SECURITY with logs) and files, and a plan over both.
fn crash_tree() -> Option<Tree> {
    let tree = Tree::empty();
    tree.copy_fixture("hives/regipy/SAM", "Windows/System32/config/SAM")?;
    tree.copy_fixture("hives/regipy/SECURITY", "Windows/System32/config/SECURITY")?;
    tree.write("Windows/System32/config/SAM.LOG1", b"");
    tree.write("Windows/System32/config/SECURITY.LOG1", b"");
    add_sample_files(&tree);
    Some(tree)
}

fn crash_plan(image: &mut Image) -> Plan {
    let mut plan = Plan::new();
    plan.set_value(
        image,
        O,
        SAM,
        r"SAM\Domains\Account",
        "ResealTest",
        ValueType::BINARY,
        &[9; 40],
    )
    .unwrap();
    plan.delete_key(image, O, SECURITY, "RXACT").unwrap();
    plan.write_file(
        image,
        O,
        r"Windows\Panther\unattend.xml",
        b"<unattend/>",
        false,
    )
    .unwrap();
    plan.write_file(
        image,
        O,
        r"Windows\Setup\State\State.ini",
        b"[State]\r\nImageState=X\r\n",
        false,
    )
    .unwrap();
    plan.delete_file(image, O, r"Windows\Temp\old.log").unwrap();
    plan.delete_directory(image, O, r"Windows\Prefetch")
        .unwrap();
    plan
}

/// Whether the file at `path` with bytes `now` is its old or its new version (hives compared as
/// hivex reads them, since a commit stamps the time).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Version {
    Old,
    New,
    Both,
}

fn version_of(
    path: &str,
    now: Option<&Vec<u8>>,
    old: &BTreeMap<String, Vec<u8>>,
    new: &BTreeMap<String, Vec<u8>>,
    new_hives: &BTreeMap<String, (&str, Option<HivexShallowKey>)>,
) -> Option<Version> {
    let is_old = now == old.get(path);
    let is_new = match (now, new_hives.get(path)) {
        // A hive that is not the old bytes must be a whole hive hivex reads, with the change.
        (Some(bytes), Some((key, view))) if !is_old => hivex_shallow_of_bytes(bytes, key) == *view,
        (Some(_), Some(_)) => false,
        _ => now == new.get(path),
    };
    match (is_old, is_new) {
        (true, true) => Some(Version::Both),
        (true, false) => Some(Version::Old),
        (false, true) => Some(Version::New),
        (false, false) => None,
    }
}

/// Checks that every file is old or new; returns whether all are old / all are new.
fn check_files(
    tree: &Tree,
    old: &BTreeMap<String, Vec<u8>>,
    new: &BTreeMap<String, Vec<u8>>,
    new_hives: &BTreeMap<String, (&str, Option<HivexShallowKey>)>,
    context: &str,
) -> (bool, bool) {
    let now: BTreeMap<String, Vec<u8>> = tree
        .snapshot()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("reseal-journal/"))
        .collect();
    let mut all_old = true;
    let mut all_new = true;
    for path in old.keys().chain(new.keys()).chain(now.keys()) {
        let version = version_of(path, now.get(path), old, new, new_hives)
            .unwrap_or_else(|| panic!("{context}: {path} is neither old nor new"));
        all_old &= version != Version::New;
        all_new &= version != Version::Old;
    }
    (all_old, all_new)
}

fn crash_at_every_step(after_write: bool) {
    // A clean run gives the new state and the number of writes.
    let Some(reference) = crash_tree() else {
        return;
    };
    let old = reference.snapshot();
    let (mut counting, crash) = failing_target(reference.root(), usize::MAX, after_write);
    let plan = crash_plan(&mut Image::new(&mut counting));
    reseal::apply(&mut counting, &plan).unwrap();
    let total = crash.writes.get();
    assert!(total >= 10, "only {total} writes");
    let new = reference.snapshot();
    // The keys the plan changes, as hivex sees them after a clean run.
    let new_hives: BTreeMap<String, (&str, Option<HivexShallowKey>)> = [
        ("Windows/System32/config/SAM", r"SAM\Domains\Account"),
        ("Windows/System32/config/SECURITY", ""),
    ]
    .iter()
    .map(|(p, key)| (p.to_string(), (*key, hivex_shallow_of_bytes(&new[*p], key))))
    .collect();
    assert!(new_hives.values().all(|(_, view)| view.is_some()));

    let mut outcomes = Vec::new();
    for budget in 0..total {
        let tree = crash_tree().unwrap();
        let context = format!("crash at write {budget} of {total} (after_write={after_write})");
        let (mut target, _) = failing_target(tree.root(), budget, after_write);
        let err = reseal::apply(&mut target, &plan).expect_err(&context);
        assert!(
            err.to_string().contains("simulated crash"),
            "{context}: {err}"
        );
        check_files(&tree, &old, &new, &new_hives, &context);

        // The next run finds the journal and finishes or undoes the run.
        let mut fresh = DirectoryTarget::open(tree.root()).unwrap();
        let outcome = reseal::recover(&mut fresh).unwrap();
        let (all_old, all_new) = check_files(&tree, &old, &new, &new_hives, &context);
        assert!(!tree.path("reseal-journal").exists(), "{context}");
        match &outcome {
            // No journal left: the crash came after the run finished, or before it began.
            None => assert!(all_old || all_new, "{context}: {outcome:?}"),
            Some(RecoveryOutcome::RolledBack) => assert!(all_old, "{context}: {outcome:?}"),
            Some(RecoveryOutcome::LeftoverRemoved) => {
                assert!(all_old || all_new, "{context}: {outcome:?}")
            }
            Some(RecoveryOutcome::RolledForward { .. }) => {
                assert!(all_new, "{context}: {outcome:?}")
            }
        }
        assert_eq!(reseal::recover(&mut fresh).unwrap(), None, "{context}");
        // No temporary file is left anywhere.
        assert!(
            tree.snapshot().keys().all(|k| !k.contains(".reseal-new.")),
            "{context}"
        );
        outcomes.push(outcome);
    }
    // Crashes happen both before and after the commit point.
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, Some(RecoveryOutcome::RolledBack))));
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, Some(RecoveryOutcome::RolledForward { .. }))));
}

#[test]
fn a_crash_before_any_write_completes_leaves_old_or_new_and_recovery_finishes_it() {
    crash_at_every_step(false);
}

#[test]
fn a_crash_right_after_each_write_leaves_old_or_new_and_recovery_finishes_it() {
    crash_at_every_step(true);
}

#[test]
fn plan_and_apply_refuse_to_run_over_an_interrupted_run() {
    let tree = Tree::empty();
    tree.write("reseal-journal/manifest.json", b"{}");
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let err = reseal::apply(&mut target, &Plan::new()).unwrap_err();
    assert_eq!(err.remedy, Some(Remedy::Recover), "{err}");
    let err = reseal::plan(&mut target, &Default::default(), &[]).unwrap_err();
    assert_eq!(err.remedy, Some(Remedy::Recover), "{err}");
    // Not committed: recovery removes it.
    assert_eq!(
        reseal::recover(&mut target).unwrap(),
        Some(RecoveryOutcome::RolledBack)
    );
    assert!(!tree.path("reseal-journal").exists());
}

/// The crash tree after a run whose journal committed and which crashed on its first write into
/// the image.
fn tree_with_a_committed_journal() -> Option<Tree> {
    let tree = crash_tree()?;
    let (mut target, crash) = failing_target(tree.root(), 0, false);
    let plan = crash_plan(&mut Image::new(&mut target));
    let staged = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::WriteFile { .. }))
        .count()
        + 2;
    crash.budget.set(staged + 2);
    reseal::apply(&mut target, &plan).unwrap_err();
    drop(target);
    assert!(tree.path("reseal-journal/COMMITTED").exists());
    Some(tree)
}

#[test]
fn a_damaged_committed_journal_is_reported_and_left_alone() {
    let Some(tree) = tree_with_a_committed_journal() else {
        return;
    };
    let staged_file = tree.path("reseal-journal/staged/0001");
    let mut bytes = std::fs::read(&staged_file).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&staged_file, bytes).unwrap();
    let before = tree.snapshot();
    let err = reseal::recover(&mut DirectoryTarget::open(tree.root()).unwrap()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::CorruptInput, "{err}");
    assert!(err.message.contains("damaged"), "{err}");
    assert_eq!(tree.snapshot(), before);
}

/// A committed journal naming a path outside the image (`..`) is damage found before anything
/// is done: no earlier entry is carried out either.
#[test]
fn a_committed_journal_naming_a_path_outside_the_image_is_damage() {
    let Some(tree) = tree_with_a_committed_journal() else {
        return;
    };
    let manifest_path = tree.path("reseal-journal/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let entries = manifest["entries"].as_array_mut().unwrap();
    assert!(
        entries.len() > 1,
        "earlier entries would be carried out first"
    );
    entries.last_mut().unwrap()["path"] = serde_json::json!(r"..\..\outside.txt");
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let before = tree.snapshot();
    let err = reseal::recover(&mut DirectoryTarget::open(tree.root()).unwrap()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::CorruptInput, "{err}");
    assert!(err.to_string().contains("must not contain \"..\""), "{err}");
    assert_eq!(tree.snapshot(), before);

    // A staged file named outside the staged folder is damage too.
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let entries = manifest["entries"].as_array_mut().unwrap();
    entries.last_mut().unwrap()["path"] = serde_json::json!(r"Windows\inside.txt");
    let write = entries.iter_mut().find(|e| e["op"] == "write").unwrap();
    write["staged"] = serde_json::json!(r"..\..\Windows\System32\config\SAM");
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let before = tree.snapshot();
    let err = reseal::recover(&mut DirectoryTarget::open(tree.root()).unwrap()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::CorruptInput, "{err}");
    assert!(err.to_string().contains("is not a name in"), "{err}");
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn a_committed_journal_larger_than_reseal_writes_is_refused_unread() {
    let Some(tree) = tree_with_a_committed_journal() else {
        return;
    };
    // Sparse: large to every reader, nothing on the host's disk.
    let manifest = std::fs::OpenOptions::new()
        .write(true)
        .open(tree.path("reseal-journal/manifest.json"))
        .unwrap();
    manifest.set_len(65 << 20).unwrap();
    drop(manifest);
    let before = tree.snapshot();
    let err = reseal::recover(&mut DirectoryTarget::open(tree.root()).unwrap()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::CorruptInput, "{err}");
    assert!(
        err.message.contains("journal manifest is 68157440 bytes"),
        "{err}"
    );
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn planned_names_whose_upper_case_changes_length_list_correctly() {
    let tree = Tree::empty();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let mut image = Image::new(&mut target);
    let mut plan = Plan::new();
    // 'ⱥ' (three bytes in UTF-8) upper-cases to the two-byte 'Ⱥ', 'ɐ' (two bytes) to the
    // three-byte 'Ɐ'.
    plan.write_file(&mut image, O, "Windows\\ⱥdir\\ɐfile.txt", b"x", false)
        .unwrap();
    let names = |image: &mut Image, dir: &str| -> Vec<String> {
        image
            .list_dir(dir)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    assert_eq!(names(&mut image, "Windows"), vec!["System32", "ⱥdir"]);
    assert_eq!(names(&mut image, "WINDOWS\\ȺDIR"), vec!["ɐfile.txt"]);
    drop(image);
    reseal::apply(&mut target, &plan).unwrap();
    assert_eq!(
        std::fs::read(tree.path("Windows/ⱥdir/ɐfile.txt")).unwrap(),
        b"x"
    );
}

#[test]
fn plans_that_fight_over_a_file_are_refused() {
    let Some(tree) = win7_tree() else { return };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let before = tree.snapshot();
    let change = |action| reseal::Change {
        provider: P,
        source: S,
        action,
    };
    let hive_edit = change(Action::CreateKey {
        hive: SYSTEM.into(),
        key: "X".into(),
    });
    for conflicting in [
        Action::DeleteFile {
            path: r"windows\system32\config\system".into(),
        },
        Action::DeleteFile {
            path: r"Windows\System32\config\SYSTEM.LOG1".into(),
        },
        Action::DeleteDirectory {
            path: r"Windows\System32".into(),
        },
        Action::WriteFile {
            path: r"reseal-journal\manifest.json".into(),
            contents: vec![],
            existed: false,
            sensitive: false,
        },
    ] {
        let plan = Plan {
            changes: vec![hive_edit.clone(), change(conflicting)],
            ..Plan::new()
        };
        let err = reseal::apply(&mut target, &plan).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Usage, "{err}");
    }
    assert_eq!(tree.snapshot(), before);
}
