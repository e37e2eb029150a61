//! `Windows\Panther\reseal.log`, the record each run that changes an image leaves in it: on a
//! directory, a WIM and a VHDX, written by generalize, appended to by set, reseal and newsid,
//! CRLF UTF-8 text with the version, the fixed time, the options and each change (passwords
//! never), spared by the leftovers provider so that a second generalize plans nothing. Read back
//! with wimlib-imagex and ntfs-3g's programs; the new file's security descriptor is what
//! inheritance from `Windows\Panther` gives, the same in the WIM and on the disk.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{code, text};
use reseal_nt::security_descriptor::{self, ObjectKind};
use reseal_testutil::ntfs_image::{
    apply_wim, assert_ntfsfix_clean, assert_qemu_img_check_clean, build_disk, convert_to_raw,
    extract_range, make_volume, ntfscat, ntfssecaudit_descriptor, run, wim_descriptors, Container,
    Scheme,
};
use reseal_testutil::{hivex_tree, sample_dir_copy, sample_wim_copy, workspace_root};

const RECORD: &str = r"Windows\Panther\reseal.log";
const EPOCH: &str = "1700000000";
/// `SOURCE_DATE_EPOCH` 1700000000 as the record prints it.
const EPOCH_TEXT: &str = "2023-11-14T22:13:20.0000000Z";
const PASSWORD: &str = "Zebra-Secret-91";

/// Runs reseal with `args`, `SOURCE_DATE_EPOCH` set; fails unless it exits 0.
fn reseal(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{args:?}: {}", text(&output));
    output
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// An answer file with an administrator password in plain text.
fn answer_file(dir: &Path) -> PathBuf {
    let path = dir.join("unattend.xml");
    fs::write(
        &path,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <UserAccounts>
        <AdministratorPassword><Value>{PASSWORD}</Value><PlainText>true</PlainText></AdministratorPassword>
      </UserAccounts>
    </component>
  </settings>
</unattend>
"#
        ),
    )
    .unwrap();
    path
}

/// The sections of a record, each checked to be CRLF text naming the version and the fixed time.
fn sections(record: &[u8]) -> Vec<String> {
    let text = String::from_utf8(record.to_vec()).expect("the record is UTF-8");
    assert!(!text.is_empty());
    let bytes = text.as_bytes();
    for (at, byte) in bytes.iter().enumerate() {
        if *byte == b'\n' {
            assert!(at > 0 && bytes[at - 1] == b'\r', "a bare LF at byte {at}");
        }
    }
    let sections: Vec<String> = text
        .split("\r\n\r\n")
        .filter(|section| !section.is_empty())
        .map(str::to_string)
        .collect();
    for section in &sections {
        let first = section.lines().next().unwrap();
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            first.starts_with(&format!("== reseal {version} "))
                && first.ends_with(&format!(" at {EPOCH_TEXT} ==")),
            "{first}"
        );
    }
    sections
}

/// Checks the section a generalize with the answer file wrote.
fn check_generalize_section(section: &str) {
    assert!(section.starts_with(&format!(
        "== reseal {} generalize at",
        env!("CARGO_PKG_VERSION")
    )));
    for words in [
        "\r\noptions: {",
        "\"generalize\":true,",
        "\"seed\":7",
        "\r\noperations run: domain-joined,",
        "\r\nchange by setup-state: ",
        "\r\nchange by answer-file: replace file Windows\\Panther\\unattend.xml ",
        "(contents hidden: sensitive)",
        "\r\nchange by leftovers: delete file Windows\\Panther\\setupact.log",
    ] {
        assert!(
            section.contains(words),
            "the record lacks {words:?}:\n{section}"
        );
    }
    assert!(!section.contains(PASSWORD), "{section}");
    assert!(!section.contains("run-record"), "the record lists itself");
}

/// The plan's changes of a `--json` run.
fn changes(output: &Output) -> Vec<serde_json::Value> {
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    document["plan"]["changes"].as_array().unwrap().clone()
}

/// Generalizes `image` (with the answer file and seed 7), checks the plan ends with the record,
/// then checks that a second generalize with the same options plans nothing, the record
/// included.
fn generalize_twice(image: &Path, unattend: &Path) {
    let first = reseal(&[
        "generalize",
        s(image),
        "--unattend",
        s(unattend),
        "--seed",
        "7",
        "--json",
    ]);
    let first = changes(&first);
    let last = first.last().unwrap();
    assert_eq!(last["provider"], "run-record");
    assert_eq!(last["action"], "write-file", "{last}");
    assert_eq!(last["path"], RECORD);
    assert_eq!(
        first
            .iter()
            .filter(|change| change["provider"] == "run-record")
            .count(),
        1
    );
    // The image is generalized now: the check that says so is told to let it through.
    let second = reseal(&[
        "generalize",
        s(image),
        "--unattend",
        s(unattend),
        "--seed",
        "7",
        "--ignore-check",
        "already-generalized",
        "--json",
    ]);
    assert_eq!(changes(&second), Vec::<serde_json::Value>::new());
}

#[test]
fn a_directory_gets_the_record_and_each_later_run_appends_a_section() {
    let Some(tree) = sample_dir_copy() else {
        return;
    };
    let image = tree.path();
    let panther = image.join("Windows/Panther");
    let answers = tempfile::tempdir().unwrap();
    let unattend = answer_file(answers.path());

    // A dry run plans the record and writes nothing.
    let dry = reseal(&["generalize", s(image), "--dry-run", "--json"]);
    assert!(changes(&dry)
        .iter()
        .any(|change| change["provider"] == "run-record"));
    assert!(!panther.join("reseal.log").exists());

    generalize_twice(image, &unattend);
    let record = fs::read(panther.join("reseal.log")).unwrap();
    let first = sections(&record);
    assert_eq!(first.len(), 1);
    check_generalize_section(&first[0]);
    // The other Panther logs are gone, the record stays.
    assert!(!panther.join("setupact.log").exists());
    hivex_tree(&image.join("Windows/System32/config/SYSTEM"));

    // set, reseal and newsid each append their section; what was there stays as it was.
    reseal(&["set", s(image), "--computer-name", "Clone-2"]);
    reseal(&[
        "reseal",
        s(image),
        "--audit",
        "--ignore-check",
        "already-generalized",
    ]);
    reseal(&["newsid", s(image), "--seed", "3"]);
    let record_after = fs::read(panther.join("reseal.log")).unwrap();
    assert!(record_after.starts_with(&record));
    let all = sections(&record_after);
    let runs: Vec<&str> = all
        .iter()
        .map(|section| section.split(' ').nth(3).unwrap())
        .collect();
    assert_eq!(runs, ["generalize", "rename", "reseal", "newsid"]);
    assert!(all[1].contains("options: {\"computer_name\":\"Clone-2\","));
    assert!(all[1].contains("change by rename: "));
    assert!(all[2].contains("\"generalize\":false,") && all[2].contains("\"mode\":\"audit\""));
    assert!(all[3].contains("change by newsid: "));
}

/// The sample applied to a new NTFS volume (wimlib gives every file a security descriptor),
/// captured into a WIM, and put in a VHDX: two images of the same files with the same security.
fn wim_and_vhdx(dir: &Path) -> (PathBuf, PathBuf) {
    let volume = dir.join("windows.img");
    make_volume(&volume, 64 << 20);
    apply_wim(&workspace_root().join("fixtures/sample.wim"), &volume);
    let wim = dir.join("install.wim");
    run("wimlib-imagex", &[&"capture", &volume, &wim]);
    let disk = build_disk(dir, &[&volume], Scheme::Gpt, Container::Vhdx);
    fs::remove_file(&volume).unwrap();
    (wim, disk)
}

#[test]
fn a_wim_and_a_vhdx_get_the_record_with_the_security_a_new_file_inherits() {
    let Some((answers, _)) = sample_wim_copy() else {
        return;
    };
    let unattend = answer_file(answers.path());
    let dir = tempfile::tempdir().unwrap();
    let (wim, disk) = wim_and_vhdx(dir.path());

    generalize_twice(&wim, &unattend);
    run("wimlib-imagex", &[&"verify", &wim]);
    let out = dir.path().join("out");
    run(
        "wimlib-imagex",
        &[
            &"extract",
            &wim,
            &"1",
            &"/Windows/Panther/reseal.log",
            &format!("--dest-dir={}", out.display()),
            &"--no-acls",
        ],
    );
    let record = fs::read(out.join("reseal.log")).unwrap();
    let in_record = sections(&record);
    assert_eq!(in_record.len(), 1);
    check_generalize_section(&in_record[0]);
    let in_wim = wim_descriptors(&wim);
    let panther = in_wim
        .get(r"Windows\Panther")
        .expect("Windows\\Panther has a descriptor");
    let inherited = security_descriptor::inherit(panther, ObjectKind::File).unwrap();
    assert_eq!(in_wim.get(RECORD), Some(&inherited));

    generalize_twice(&disk, &unattend);
    assert_qemu_img_check_clean(&disk);
    let raw = dir.path().join("disk.raw");
    convert_to_raw(&disk, &raw);
    let volume = dir.path().join("volume.img");
    extract_range(&raw, 1 << 20, 64 << 20, &volume);
    assert_ntfsfix_clean(&volume);
    let record = ntfscat(&volume, RECORD).expect("ntfscat finds the record");
    let in_record = sections(&record);
    assert_eq!(in_record.len(), 1);
    check_generalize_section(&in_record[0]);
    // The same descriptor as in the WIM, and what inheritance from the disk's Panther gives.
    let on_disk = ntfssecaudit_descriptor(&volume, RECORD);
    assert_eq!(on_disk, inherited);
    let panther = ntfssecaudit_descriptor(&volume, r"Windows\Panther");
    assert_eq!(
        on_disk,
        security_descriptor::inherit(&panther, ObjectKind::File).unwrap()
    );
}
