//! Answer files as public Packer templates, MDT deployment shares and cloud image builds ship
//! them (fixtures/answer-files, SOURCES.md there), most authored in Windows System Image Manager: each parses, merges into the answer file
//! generalize writes, keeps every element, attribute and comment of the original (checked with
//! Python's ElementTree, a reader we did not write), and never shows its passwords.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::reference_image::*;
use reseal::answer_file::AnswerFile;
use reseal::{Action, GeneralizeOptions};

/// A real answer file and what of interest it holds.
struct RealFile {
    name: &'static str,
    /// The `<cpi:offlineImage>` element Windows System Image Manager writes.
    offline_image: bool,
    /// Passwords with a value (plaintext or encoded) in oobeSystem.
    passwords: bool,
}

const fn real(name: &'static str, offline_image: bool, passwords: bool) -> RealFile {
    RealFile {
        name,
        offline_image,
        passwords,
    }
}

/// Packer templates, then MDT (a deployment share's task sequence file, and the template
/// PowerShell Deployment ships, passwords left empty for MDT to fill in), then cloud image
/// templates (OpenStack's, Google Compute Engine's).
const FILES: [RealFile; 9] = [
    real("rgl-windows-vagrant-windows-2022-uefi.xml", true, true),
    real(
        "rgl-windows-vagrant-windows-2022-uefi.utf16.xml",
        true,
        true,
    ),
    real("joefitzgerald-packer-windows-10.xml", true, true),
    real("stefanscherer-packer-windows-2022.xml", true, true),
    real("chef-bento-2022.xml", false, true),
    real(
        "deploymentresearch-hydrationkit-ws2022-mdt01.xml",
        true,
        true,
    ),
    real("friendsofmdt-psd-unattend-x64.xml", false, false),
    real("cloudbase-windows-openstack-imaging-tools.xml", false, true),
    real("googlecloudplatform-compute-image-tools.xml", false, false),
];

fn fixture(name: &str) -> PathBuf {
    reseal_testutil::workspace_root()
        .join("fixtures/answer-files")
        .join(name)
}

fn load(name: &str) -> AnswerFile {
    AnswerFile::load(&fixture(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// The answer file generalize writes into a reference image given `user_file`, with the plan.
fn generalized_with(user_file: &Path) -> (Vec<u8>, reseal::Plan, bool) {
    let tree = reference_image();
    let options = GeneralizeOptions {
        unattend: Some(user_file.to_path_buf()),
        ..options()
    };
    let plan = generalize(&tree, &options);
    let sensitive = plan
        .changes
        .iter()
        .find_map(|change| match &change.action {
            Action::WriteFile {
                path, sensitive, ..
            } if path == r"Windows\Panther\unattend.xml" => Some(*sensitive),
            _ => None,
        })
        .expect("the answer file is written");
    let written = std::fs::read(tree.path("Windows/Panther/unattend.xml")).unwrap();
    (written, plan, sensitive)
}

/// Every element of `original` (by its path of qualified names and its attributes, with its
/// text) and every comment, as Python's ElementTree reads them, that `merged` lacks; the
/// elements at `replaced` (paths of local names, `[name]` or `[pass]` after a component or
/// settings) are left out of the comparison.
fn missing_from_merged(original: &Path, merged: &Path, replaced: &[&str]) -> Vec<String> {
    const SCRIPT: &str = r#"
import sys, json
import xml.etree.ElementTree as ET
from collections import Counter

def entries(path, replaced):
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    root = ET.parse(path, parser).getroot()
    found = Counter()
    def walk(element, trail):
        if element.tag is ET.Comment:
            found["comment " + (element.text or "").strip()] += 1
            return
        local = element.tag.split("}")[-1]
        step = local
        name = element.get("name")
        if name is not None:
            step += "[" + name + "]"
        pass_ = element.get("pass")
        if pass_ is not None:
            step += "[" + pass_ + "]"
        here = trail + "/" + step
        if any(here.endswith(r) for r in replaced):
            return
        attributes = sorted(element.attrib.items())
        text = (element.text or "").strip() if len(element) == 0 else ""
        found[json.dumps([element.tag, here, attributes, text])] += 1
        for child in element:
            walk(child, here)
    walk(root, "")
    return found

replaced = json.loads(sys.argv[3])
original = entries(sys.argv[1], replaced)
merged = entries(sys.argv[2], replaced)
print(json.dumps(sorted((original - merged).elements())))
"#;
    let output = Command::new(reseal_testutil::HIVEX_PYTHON)
        .arg("-c")
        .arg(SCRIPT)
        .arg(original)
        .arg(merged)
        .arg(serde_json::to_string(replaced).unwrap())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn every_real_answer_file_parses_and_keeps_what_setup_ignores() {
    for file in &FILES {
        let name = file.name;
        let answer = load(name);
        let xml = answer.to_xml();
        assert_eq!(
            AnswerFile::parse(&xml).unwrap(),
            answer,
            "{name} round trip"
        );
        assert_eq!(
            xml.contains(r#"<cpi:offlineImage"#) && xml.contains("cpi:source="),
            file.offline_image,
            "{name}: offlineImage kept as in the original:\n{xml}"
        );
    }
}

#[test]
fn the_utf16_copy_reads_as_its_utf8_original() {
    let utf8 = load("rgl-windows-vagrant-windows-2022-uefi.xml");
    let utf16 = load("rgl-windows-vagrant-windows-2022-uefi.utf16.xml");
    let bytes = std::fs::read(fixture("rgl-windows-vagrant-windows-2022-uefi.utf16.xml")).unwrap();
    assert_eq!(
        &bytes[..2],
        &[0xFF, 0xFE],
        "the copy is UTF-16LE with a byte-order mark"
    );
    assert_eq!(utf8, utf16);
}

#[test]
fn merging_with_generalize_keeps_every_element_of_the_original() {
    let host = tempfile::tempdir().unwrap();
    for name in FILES.iter().map(|file| file.name) {
        let original = load(name);
        let (written, _, _) = generalized_with(&fixture(name));
        let merged = AnswerFile::from_bytes(&written).unwrap();
        let merged_path = host.path().join(format!("{name}.merged.xml"));
        std::fs::write(&merged_path, &written).unwrap();

        let missing = missing_from_merged(&fixture(name), &merged_path, &[]);
        assert!(missing.is_empty(), "{name}: the merge dropped {missing:#?}");
        // Specialize gets a new computer name (`*`) unless the user's file names one.
        let computer_name = |answer: &AnswerFile| {
            answer.setting(
                "specialize",
                "Microsoft-Windows-Shell-Setup",
                &["ComputerName"],
            )
        };
        assert_eq!(
            computer_name(&merged),
            computer_name(&original).or(Some("*".to_string())),
            "{name}"
        );
        // What reseal adds is there too: the first-boot rearm, unless the file sets SkipRearm.
        assert_eq!(
            String::from_utf8_lossy(&written).contains("slmgr.vbs /rearm"),
            original.skip_rearm() != Some(1),
            "{name}"
        );
        // And nothing of the user's settings changed value.
        for (pass, component, path) in [
            (
                "oobeSystem",
                "Microsoft-Windows-Shell-Setup",
                &["UserAccounts", "AdministratorPassword", "Value"][..],
            ),
            (
                "oobeSystem",
                "Microsoft-Windows-Shell-Setup",
                &["AutoLogon", "Password", "Value"][..],
            ),
            (
                "windowsPE",
                "Microsoft-Windows-Setup",
                &["UserData", "AcceptEula"][..],
            ),
            (
                "offlineServicing",
                "Microsoft-Windows-LUA-Settings",
                &["EnableLUA"][..],
            ),
        ] {
            assert_eq!(
                merged.setting(pass, component, path),
                original.setting(pass, component, path),
                "{name}: {pass} {component} {path:?}"
            );
        }
    }
}

#[test]
fn the_merge_finds_a_dropped_element() {
    // The comparison above can fail: an answer file with one element less is caught.
    let host = tempfile::tempdir().unwrap();
    let name = "rgl-windows-vagrant-windows-2022-uefi.xml";
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let without = text.replacen("<EnableLUA>false</EnableLUA>", "", 1);
    assert_ne!(text, without);
    let path = host.path().join("without.xml");
    std::fs::write(&path, without).unwrap();
    let missing = missing_from_merged(&fixture(name), &path, &[]);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].contains("EnableLUA"), "{missing:?}");
}

#[test]
fn passwords_of_real_files_never_show() {
    for file in &FILES {
        let name = file.name;
        let original = load(name);
        let passwords: Vec<String> = [
            &["UserAccounts", "AdministratorPassword", "Value"][..],
            &["AutoLogon", "Password", "Value"][..],
            &[
                "UserAccounts",
                "LocalAccounts",
                "LocalAccount",
                "Password",
                "Value",
            ][..],
        ]
        .iter()
        .filter_map(|path| original.setting("oobeSystem", "Microsoft-Windows-Shell-Setup", path))
        .filter(|password| !password.is_empty())
        .collect();
        assert_eq!(
            !passwords.is_empty(),
            file.passwords,
            "{name} holds passwords"
        );

        let redacted = AnswerFile::parse(&original.to_redacted_xml()).unwrap();
        let debug = format!("{original:?}");
        for path in [
            &["UserAccounts", "AdministratorPassword", "Value"][..],
            &["AutoLogon", "Password", "Value"][..],
        ] {
            // An empty password hides nothing: it stays empty.
            if original
                .setting("oobeSystem", "Microsoft-Windows-Shell-Setup", path)
                .is_some_and(|password| !password.is_empty())
            {
                assert_eq!(
                    redacted
                        .setting("oobeSystem", "Microsoft-Windows-Shell-Setup", path)
                        .as_deref(),
                    Some("(redacted)"),
                    "{name} {path:?}"
                );
            }
        }
        // The encoded ones are unique strings: none appears in any display.
        let (written, plan, sensitive) = generalized_with(&fixture(name));
        assert_eq!(
            sensitive,
            original.contains_passwords(),
            "{name}: a file with password elements is written as sensitive"
        );
        let shown = [
            plan.to_string(),
            serde_json::to_string(&plan).unwrap(),
            debug,
            original.to_redacted_xml(),
        ];
        for password in passwords.iter().filter(|p| p.len() > 12) {
            for text in &shown {
                assert!(!text.contains(password.as_str()), "{name}: password shown");
            }
            assert!(
                String::from_utf8_lossy(&written).contains(password.as_str()),
                "{name}: Setup needs the password in the written file"
            );
        }
    }
}
