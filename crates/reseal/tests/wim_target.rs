//! The WIM target: the repository's sample.wim generalized in place (checked with wimlib-imagex
//! and hivex, and against the directory target's result on fixtures/sample), and the real
//! managed-wimlib WIMs for image selection, refusals and untouched images.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use common::{fixed_options, hivex_key, hivex_value, sample_tree, wimlib};
use reseal::{ApplyReport, DirectoryTarget, ErrorKind, GeneralizeOptions, Target, WimTarget};
use reseal_testutil::{hivex_tree, hivex_tree_of_bytes, real_fixture};

const SYSTEM: &str = r"Windows\System32\config\SYSTEM";
const SOFTWARE: &str = r"Windows\System32\config\SOFTWARE";

fn sample_wim() -> Option<(tempfile::TempDir, PathBuf)> {
    reseal_testutil::sample_wim_copy()
}

/// A writable copy of a real fixture WIM.
fn real_wim(relative: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let source = real_fixture(relative)?;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(source.file_name().unwrap());
    fs::copy(&source, &copy).unwrap();
    Some((dir, copy))
}

/// `wimlib-imagex dir --detailed` as one record per path: the record's lines, keyed by the
/// upper-cased `\`-separated path (as reseal names files).
fn detailed(wim: &Path, image: u32) -> BTreeMap<String, Vec<String>> {
    let text = wimlib(&[
        "dir",
        wim.to_str().unwrap(),
        &image.to_string(),
        "--detailed",
    ]);
    let mut records = BTreeMap::new();
    for record in
        text.split("----------------------------------------------------------------------------")
    {
        let lines: Vec<String> = record
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let Some(path) = lines
            .iter()
            .find_map(|l| l.strip_prefix("Full Path           = \""))
        else {
            continue;
        };
        let path = path.trim_end_matches('"').trim_start_matches('/');
        records.insert(path.replace('/', "\\").to_uppercase(), lines.clone());
    }
    records
}

/// The field names whose lines differ between two records.
fn differing_fields(before: &[String], after: &[String]) -> BTreeSet<String> {
    let field = |line: &String| line.split('=').next().unwrap_or("").trim().to_string();
    let before: BTreeSet<&String> = before.iter().collect();
    let after: BTreeSet<&String> = after.iter().collect();
    before
        .symmetric_difference(&after)
        .map(|line| field(line))
        .collect()
}

fn generalize_wim(wim: &Path, options: &GeneralizeOptions) -> (reseal::Plan, ApplyReport) {
    let mut target = reseal::open_target_with_index(wim, None).unwrap();
    let (plan, report) = reseal::generalize(target.as_mut(), options, &[]).unwrap();
    (plan, report.unwrap())
}

fn extract(wim: &Path, path: &str, into: &Path) -> PathBuf {
    wimlib(&[
        "extract",
        wim.to_str().unwrap(),
        "1",
        &format!("/{}", path.replace('\\', "/")),
        &format!("--dest-dir={}", into.display()),
        "--no-acls",
    ]);
    into.join(path.rsplit('\\').next().unwrap())
}

#[test]
fn generalizing_sample_wim_changes_exactly_the_planned_files() {
    let Some((dir, wim)) = sample_wim() else {
        return;
    };
    let before = detailed(&wim, 1);
    let (_, report) = generalize_wim(&wim, &fixed_options());
    wimlib(&["verify", wim.to_str().unwrap()]);
    let after = detailed(&wim, 1);

    let upper = |p: &String| p.to_uppercase();
    let written: BTreeSet<String> = report
        .hives_written
        .iter()
        .chain(&report.files_written)
        .map(upper)
        .collect();
    let deleted: Vec<String> = report
        .files_deleted
        .iter()
        .chain(&report.directories_deleted)
        .map(upper)
        .collect();
    let hive_log = |path: &str| {
        report
            .hives_written
            .iter()
            .any(|hive| path.starts_with(&format!("{}.LOG", hive.to_uppercase())))
    };
    assert!(!written.is_empty() && !deleted.is_empty());

    for (path, old) in &before {
        let is_deleted = deleted
            .iter()
            .any(|d| path == d || path.starts_with(&format!("{d}\\")));
        match after.get(path) {
            None => assert!(
                is_deleted,
                "{path} vanished but the plan does not delete it"
            ),
            Some(_) if is_deleted => panic!("{path} should have been deleted"),
            Some(new) if written.contains(path) || hive_log(path) => {
                // The fields of the data's blob (`Part Number` too: it goes when a hive log is
                // emptied and the file has no blob left), and the last-write time. Security,
                // attributes and the other times must stay.
                let allowed: BTreeSet<&str> = [
                    "Hash",
                    "Uncompressed size",
                    "Compressed size",
                    "Offset in WIM",
                    "Part Number",
                    "Reference Count",
                    "Flags",
                    "Last Write Time",
                ]
                .into();
                let changed = differing_fields(old, new);
                assert!(
                    changed.iter().all(|f| allowed.contains(f.as_str())),
                    "{path}: unexpected changes in {changed:?}"
                );
            }
            Some(new) => assert_eq!(old, new, "{path} is not in the plan but changed"),
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        let created =
            written.contains(path) || written.iter().any(|w| w.starts_with(&format!("{path}\\")));
        assert!(created, "{path} appeared but the plan does not create it");
    }

    // What Windows reads at the next boot, as hivex reads the extracted hives.
    let out = dir.path().join("extracted");
    let system = hivex_tree(&extract(&wim, SYSTEM, &out));
    let software = hivex_tree(&extract(&wim, SOFTWARE, &out));
    let image_state = hivex_value(
        &software,
        r"Microsoft\Windows\CurrentVersion\Setup\State",
        "ImageState",
    )
    .expect("ImageState is set");
    let text: String = char::decode_utf16(
        image_state
            .1
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]])),
    )
    .map(|c| c.unwrap_or('?'))
    .collect();
    assert_eq!(
        text.trim_end_matches('\0'),
        "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
    );
    let dword = |name: &str| {
        let (_, data) = hivex_value(&system, "Setup", name).unwrap_or_else(|| panic!("{name}"));
        u32::from_le_bytes(data[..4].try_into().unwrap())
    };
    assert_eq!(dword("SystemSetupInProgress"), 1);
    // SetupType 2, as the real Sysprep run left it (sysprep-effects §1.7, COFOUNDRY).
    assert_eq!(dword("SetupType"), 2);
    assert!(hivex_key(&system, r"Setup\SetupCl\PendingRequest").is_some());

    // Every event log left in the image is empty.
    let logs: Vec<&String> = report
        .files_written
        .iter()
        .filter(|f| f.to_lowercase().ends_with(".evtx"))
        .collect();
    assert!(!logs.is_empty());
    let evtx_path = extract(&wim, logs[0], &out);
    let mut parser = evtx::EvtxParser::from_path(&evtx_path).unwrap();
    assert_eq!(parser.records().count(), 0, "{}", logs[0]);
}

#[test]
fn the_wim_result_equals_the_directory_result() {
    let Some((_dir, wim)) = sample_wim() else {
        return;
    };
    let Some(tree) = sample_tree() else { return };

    // Inspect reads the WIM without extracting it and sees what the directory holds.
    let mut wim_target = reseal::open_target_with_index(&wim, Some("1")).unwrap();
    let mut dir_target = DirectoryTarget::open(tree.root()).unwrap();
    let wim_before = reseal::inspect(wim_target.as_mut()).unwrap();
    assert_eq!(wim_before, reseal::inspect(&mut dir_target).unwrap());
    assert_eq!(wim_before.computer_name.as_deref(), Some("REF-PC01"));

    let options = fixed_options();
    let (wim_plan, wim_report) = reseal::generalize(wim_target.as_mut(), &options, &[]).unwrap();
    let (dir_plan, dir_report) = reseal::generalize(&mut dir_target, &options, &[]).unwrap();
    assert_eq!(
        serde_json::to_value(&wim_plan).unwrap(),
        serde_json::to_value(&dir_plan).unwrap()
    );
    assert_eq!(wim_report, dir_report);
    let dir_report = dir_report.unwrap();
    drop(wim_target);

    let mut reopened = reseal::open_target(&wim).unwrap();
    let wim_after = reseal::inspect(reopened.as_mut()).unwrap();
    let dir_after = reseal::inspect(&mut dir_target).unwrap();
    assert_eq!(wim_after, dir_after);
    assert_ne!(wim_after, wim_before);
    assert!(!reopened.exists("reseal-journal").unwrap());

    // Each file reads back as the directory target wrote it: hives value for value (their
    // headers and keys carry the time of the commit), other files byte for byte.
    for path in &dir_report.hives_written {
        let from_wim = reopened.read_file(path).unwrap().unwrap();
        let from_dir = dir_target.read_file(path).unwrap().unwrap();
        assert_eq!(
            hivex_tree_of_bytes(&from_wim),
            hivex_tree_of_bytes(&from_dir),
            "{path}"
        );
    }
    for path in &dir_report.files_written {
        assert_eq!(
            reopened.read_file(path).unwrap(),
            dir_target.read_file(path).unwrap(),
            "{path}"
        );
    }

    // Idempotent: past the already-generalized check nothing is left to do.
    let again = GeneralizeOptions {
        ignore_checks: vec!["already-generalized".into()],
        ..fixed_options()
    };
    let second = reseal::plan(reopened.as_mut(), &again, &[]).unwrap();
    assert!(second.is_empty(), "second plan:\n{second}");
}

#[test]
fn a_failed_run_leaves_the_wim_as_it_was() {
    let Some((_dir, wim)) = sample_wim() else {
        return;
    };
    let original = fs::read(&wim).unwrap();
    let mut target = WimTarget::open(&wim, "1").unwrap();
    target.begin().unwrap();
    target.replace_file(SYSTEM, b"not a hive").unwrap();
    target
        .create_file(r"Windows\Panther\new.txt", b"x")
        .unwrap();
    // Staged edits are visible through the target...
    assert_eq!(target.read_file(SYSTEM).unwrap().unwrap(), b"not a hive");
    // Discarding them shows the image on disk again.
    target.abort();
    assert_ne!(target.read_file(SYSTEM).unwrap().unwrap(), b"not a hive");
    assert!(!target.exists(r"Windows\Panther\new.txt").unwrap());
    target.begin().unwrap();
    target
        .create_file(r"Windows\Panther\new.txt", b"x")
        .unwrap();
    drop(target);
    // ...but without a commit the file still describes the original image.
    let mut reopened = WimTarget::open(&wim, "1").unwrap();
    assert!(!reopened.exists(r"Windows\Panther\new.txt").unwrap());
    assert_ne!(reopened.read_file(SYSTEM).unwrap().unwrap(), b"not a hive");
    let header = 208;
    assert_eq!(fs::read(&wim).unwrap()[..header], original[..header]);
    wimlib(&["verify", wim.to_str().unwrap()]);
}

#[test]
fn recover_on_a_wim_has_nothing_to_do() {
    let Some((_dir, wim)) = sample_wim() else {
        return;
    };
    let mut target = reseal::open_target(&wim).unwrap();
    assert!(!target.has_interrupted_run().unwrap());
    assert_eq!(reseal::recover(target.as_mut()).unwrap(), None);
}

#[test]
fn multi_image_wim_needs_an_index_and_a_windows_tree() {
    let Some(wim) = real_fixture("images/managedwimlib/MultiImage.wim") else {
        return;
    };
    let err = reseal::open_target(&wim).err().unwrap();
    assert_eq!(err.kind, ErrorKind::Usage);
    for listed in ["1: Base", "2: Changes", "3: Delta"] {
        assert!(err.message.contains(listed), "{err}");
    }
    // Selected by index or name; it holds no Windows installation, which is named.
    for selector in ["2", "Changes", "changes"] {
        let err = reseal::open_target_with_index(&wim, Some(selector))
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::Usage, "{err}");
        assert!(err.message.contains("WIM image 2 (Changes)"), "{err}");
        assert!(err.message.contains(r"Windows\System32\config"), "{err}");
    }
    let err = reseal::open_target_with_index(&wim, Some("9"))
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::Usage, "{err}");
    let images = WimTarget::list_images(&wim).unwrap();
    assert_eq!(images.len(), 3);
}

#[test]
fn editing_one_image_leaves_the_others_untouched() {
    let Some((_dir, wim)) = real_wim("images/managedwimlib/MultiImage.wim") else {
        return;
    };
    let others = [1, 3].map(|image| detailed(&wim, image));
    let mut target = WimTarget::open(&wim, "2").unwrap();
    let first = target.list_dir("").unwrap().unwrap();
    let file = first
        .iter()
        .find(|e| !e.is_dir)
        .expect("a file at the root");
    let name = file.name.clone();
    target.begin().unwrap();
    target.replace_file(&name, b"replaced").unwrap();
    target
        .create_file(r"reseal-test\created.txt", b"created")
        .unwrap();
    target.commit(&reseal::NoProgress).unwrap();
    drop(target);

    wimlib(&["verify", wim.to_str().unwrap()]);
    // A blob's reference count is the WIM's, shared by every image that holds the same data:
    // replacing a file in image 2 lowers it in images 1 and 3 without changing them.
    let without_reference_counts = |mut records: BTreeMap<String, Vec<String>>| {
        for lines in records.values_mut() {
            lines.retain(|line| !line.starts_with("Reference Count"));
        }
        records
    };
    assert_eq!(
        [1, 3].map(|image| without_reference_counts(detailed(&wim, image))),
        others.map(without_reference_counts)
    );
    let mut reopened = WimTarget::open(&wim, "Changes").unwrap();
    assert_eq!(reopened.read_file(&name).unwrap().unwrap(), b"replaced");
    assert_eq!(
        reopened
            .read_file(r"reseal-test\created.txt")
            .unwrap()
            .unwrap(),
        b"created"
    );
}

#[test]
fn compressed_real_wims_are_readable_targets() {
    for fixture in ["XPRESS.wim", "LZX.wim", "LZMS.wim"] {
        let Some(wim) = real_fixture(&format!("images/managedwimlib/{fixture}")) else {
            return;
        };
        let mut target = WimTarget::open(&wim, "1").unwrap();
        let root = target.list_dir("").unwrap().unwrap();
        assert!(!root.is_empty(), "{fixture}");
        let listed: BTreeSet<String> = wimlib(&["dir", wim.to_str().unwrap(), "1"])
            .lines()
            .filter(|l| l.matches('/').count() == 1 && l.len() > 1)
            .map(|l| l.trim_start_matches('/').to_string())
            .collect();
        let ours: BTreeSet<String> = root.into_iter().map(|e| e.name).collect();
        assert_eq!(ours, listed, "{fixture}");
    }
}

#[test]
fn split_wim_is_refused_as_unsupported_input() {
    let Some(swm) = real_fixture("images/managedwimlib/Split.swm") else {
        return;
    };
    assert!(reseal::is_wim_file(&swm));
    let err = reseal::open_target(&swm).err().unwrap();
    assert_eq!(err.kind, ErrorKind::CorruptInput, "{err}");
    assert!(err.message.contains("Split.swm"), "{err}");
}

#[test]
fn an_index_on_a_directory_is_a_usage_error() {
    let Some(tree) = sample_tree() else { return };
    let err = reseal::open_target_with_index(tree.root(), Some("1"))
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::Usage);
    assert!(!reseal::is_wim_file(tree.root()));
}

#[test]
fn a_run_parses_the_wim_once_and_refuses_a_file_changed_since() {
    let Some((_dir, wim)) = sample_wim() else {
        return;
    };
    // The XML data is read when the target opens. Overwritten afterwards (same length, same
    // header), it is not read again: the run commits the XML it read, appended as always, and
    // the result verifies. Parsing the file again at `begin` would stumble over it.
    let mut target = WimTarget::open(&wim, "1").unwrap();
    let xml = reseal_wim::Wim::open(&wim).unwrap().header().xml_data;
    let mut bytes = fs::read(&wim).unwrap();
    let start = xml.offset as usize;
    bytes[start..start + xml.size_in_wim as usize].fill(0xEE);
    fs::write(&wim, &bytes).unwrap();
    reseal::generalize(&mut target, &fixed_options(), &[]).unwrap();
    wimlib(&["verify", wim.to_str().unwrap()]);

    // A file that changed where the target looks (its length or its header) is refused when
    // the run begins, before anything is written.
    let mut target = WimTarget::open(&wim, "1").unwrap();
    let mut grown = fs::OpenOptions::new().append(true).open(&wim).unwrap();
    std::io::Write::write_all(&mut grown, b"x").unwrap();
    drop(grown);
    let before = fs::read(&wim).unwrap();
    let error = target.begin().unwrap_err();
    assert!(
        error.message.contains("changed since it was read"),
        "{error}"
    );
    assert_eq!(fs::read(&wim).unwrap(), before);
}
