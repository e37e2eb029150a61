//! `reseal hive FILE ...` through the built binary, each edit checked with python3-hivex.

mod common;

use std::path::{Path, PathBuf};

use common::{code, reseal, text};
use reseal_hive::data::{encode_dword, encode_multi_sz, encode_sz};
use reseal_testutil::{hivex_tree, workspace_root, HivexKey, HivexValue};

/// A copy of the sample image's SYSTEM hive (with its empty logs) in a temporary folder.
fn sample_system() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let hive = copy_sample_system(dir.path());
    (dir, hive)
}

/// Copies the sample image's SYSTEM hive and its logs into `dir`; the hive's path.
fn copy_sample_system(dir: &Path) -> PathBuf {
    let config = workspace_root().join("fixtures/sample/Windows/System32/config");
    for name in ["SYSTEM", "SYSTEM.LOG1", "SYSTEM.LOG2"] {
        std::fs::copy(config.join(name), dir.join(name)).unwrap();
    }
    dir.join("SYSTEM")
}

/// A temporary folder whose file system keeps `user.` extended attributes: in the system's
/// temporary folder, else under the target directory; None when neither does.
fn folder_with_user_xattrs() -> Option<tempfile::TempDir> {
    for parent in [
        std::env::temp_dir(),
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    ] {
        let dir = tempfile::tempdir_in(&parent).unwrap();
        let probe = dir.path().join("probe");
        std::fs::write(&probe, b"").unwrap();
        if xattr::set(&probe, "user.reseal.probe", b"1").is_ok() {
            std::fs::remove_file(&probe).unwrap();
            return Some(dir);
        }
        eprintln!("{} refuses user extended attributes", parent.display());
    }
    None
}

fn run(hive: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["hive", hive.to_str().unwrap()];
    all.extend_from_slice(args);
    reseal(&all)
}

fn ok(hive: &Path, args: &[&str]) -> String {
    let output = run(hive, args);
    assert_eq!(code(&output), 0, "reseal hive {args:?}: {}", text(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// The key at `path` (backslash-separated, below the root) of a hivex tree.
fn key<'t>(tree: &'t HivexKey, path: &str) -> Option<&'t HivexKey> {
    path.split('\\').try_fold(tree, |key, name| {
        key.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    })
}

fn value<'t>(tree: &'t HivexKey, path: &str, name: &str) -> Option<&'t HivexValue> {
    key(tree, path)?.values.iter().find(|v| v.name == name)
}

#[test]
fn reads_list_get_export_and_check() {
    let (_dir, hive) = sample_system();
    let listing = ok(&hive, &["ls", r"ControlSet001\Control\ComputerName"]);
    assert!(listing.lines().any(|l| l == r"ComputerName\"), "{listing}");

    let got = ok(
        &hive,
        &[
            "get",
            r"ControlSet001\Control\ComputerName\ComputerName",
            "ComputerName",
        ],
    );
    assert!(got.contains("REG_SZ \"REF-PC01\""), "{got}");

    let json: serde_json::Value = serde_json::from_str(&ok(
        &hive,
        &[
            "--json",
            "get",
            r"controlset001\control\computername\computername",
            "computername",
        ],
    ))
    .unwrap();
    assert_eq!(json[0]["data"], "REF-PC01", "{json}");
    assert_eq!(json[0]["type"], "REG_SZ");

    let exported = ok(
        &hive,
        &[
            "export",
            r"ControlSet001\Control\ComputerName",
            "--root",
            r"HKEY_LOCAL_MACHINE\SYSTEM",
        ],
    );
    assert!(
        exported.starts_with("Windows Registry Editor Version 5.00"),
        "{exported}"
    );
    assert!(exported
        .contains(r"[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\ComputerName\ComputerName]"));
    assert!(
        exported.contains("\"ComputerName\"=\"REF-PC01\""),
        "{exported}"
    );

    let check: serde_json::Value = serde_json::from_str(&ok(&hive, &["--json", "check"])).unwrap();
    assert_eq!(check["structure"]["clean"], true, "{check}");
    assert_eq!(check["was_dirty"], false);
}

#[test]
fn edits_change_exactly_what_they_name() {
    let (_dir, hive) = sample_system();
    let original = hivex_tree(&hive);

    ok(
        &hive,
        &["set", r"Reseal\Test", "Answer", "--type", "dword", "0x2a"],
    );
    ok(
        &hive,
        &[
            "set",
            r"Reseal\Test",
            "List",
            "--type",
            "multi_sz",
            "a",
            "Grüße",
        ],
    );
    ok(
        &hive,
        &["set", r"Reseal\Test", "@", "--type", "sz", "default"],
    );
    let edited = hivex_tree(&hive);
    let answer = value(&edited, r"Reseal\Test", "Answer").expect("Answer was written");
    assert_eq!(
        (answer.value_type, answer.data.clone()),
        (4, encode_dword(42))
    );
    let list = value(&edited, r"Reseal\Test", "List").expect("List was written");
    assert_eq!(
        (list.value_type, list.data.clone()),
        (7, encode_multi_sz(&["a", "Grüße"]))
    );
    let default = value(&edited, r"Reseal\Test", "").expect("the default value was written");
    assert_eq!(default.data, encode_sz("default"));

    ok(&hive, &["del", r"Reseal\Test", "Answer"]);
    let after_value = hivex_tree(&hive);
    assert!(value(&after_value, r"Reseal\Test", "Answer").is_none());
    assert!(value(&after_value, r"Reseal\Test", "List").is_some());

    ok(&hive, &["del", "Reseal"]);
    assert_eq!(
        hivex_tree(&hive),
        original,
        "deleting what was added gives the original tree back"
    );

    // Every edit committed the hive: it is clean and its logs are empty.
    let check: serde_json::Value = serde_json::from_str(&ok(&hive, &["--json", "check"])).unwrap();
    assert_eq!(check["structure"]["clean"], true, "{check}");
    assert_eq!(
        std::fs::metadata(hive.with_extension("LOG1"))
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn set_keeps_the_owner_mode_and_extended_attributes_of_the_hive_and_its_logs() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(dir) = folder_with_user_xattrs() else {
        eprintln!("skipping: no file system here keeps user extended attributes");
        return;
    };
    let hive = copy_sample_system(dir.path());
    let log = dir.path().join("SYSTEM.LOG1");
    const ATTRIBUTE: &str = "user.reseal.image-metadata";
    let files = [(&hive, 0o640, b"hive".as_slice()), (&log, 0o600, b"log")];
    for (file, mode, attribute) in files {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
        xattr::set(file, ATTRIBUTE, attribute).unwrap();
    }
    // Only root may give a file away; then the owner is checked too.
    let owner = (4242, 4343);
    let owner_set = std::os::unix::fs::chown(&hive, Some(owner.0), Some(owner.1)).is_ok();

    ok(
        &hive,
        &["set", r"Reseal\Test", "Answer", "--type", "dword", "0x2a"],
    );

    let edited = hivex_tree(&hive);
    let answer = value(&edited, r"Reseal\Test", "Answer").expect("Answer was written");
    assert_eq!(
        (answer.value_type, answer.data.clone()),
        (4, encode_dword(42))
    );
    for (file, mode, attribute) in files {
        let meta = std::fs::metadata(file).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            mode,
            "{}",
            file.display()
        );
        assert_eq!(
            xattr::get(file, ATTRIBUTE).unwrap().as_deref(),
            Some(attribute),
            "{}",
            file.display()
        );
    }
    if owner_set {
        let meta = std::fs::metadata(&hive).unwrap();
        assert_eq!((meta.uid(), meta.gid()), owner);
    }
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        0,
        "the log is emptied"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["SYSTEM", "SYSTEM.LOG1", "SYSTEM.LOG2"],
        "no temporary file is left"
    );
}

#[test]
fn mistakes_and_damage_get_their_exit_codes() {
    let (dir, hive) = sample_system();
    let before = std::fs::read(&hive).unwrap();

    let missing = run(&hive, &["get", r"No\Such\Key"]);
    assert_eq!(code(&missing), 2, "{}", text(&missing));
    assert!(text(&missing).contains("not found"), "{}", text(&missing));
    let bad_data = run(
        &hive,
        &["set", "Select", "Current", "--type", "dword", "lots"],
    );
    assert_eq!(code(&bad_data), 2, "{}", text(&bad_data));
    let nothing = run(&hive, &["del", "Select", "NoSuchValue"]);
    assert_eq!(code(&nothing), 2, "{}", text(&nothing));
    assert_eq!(
        std::fs::read(&hive).unwrap(),
        before,
        "refused commands wrote nothing"
    );

    let damaged = dir.path().join("DAMAGED");
    std::fs::write(&damaged, &before[..4096 + 100]).unwrap();
    let corrupt = run(&damaged, &["ls"]);
    assert_eq!(code(&corrupt), 4, "{}", text(&corrupt));
    assert!(
        text(&corrupt).contains("DAMAGED"),
        "the error names the file: {}",
        text(&corrupt)
    );
}

/// A hive file that does not exist is a usage error naming it once, as an image path that does
/// not exist is.
#[test]
fn a_missing_hive_file_is_a_usage_error_naming_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("NOHIVE");
    let output = run(&missing, &["ls", ""]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let shown = missing.display().to_string();
    assert_eq!(
        text(&output).matches(&shown).count(),
        1,
        "{}",
        text(&output)
    );
}
