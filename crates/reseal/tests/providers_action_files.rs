//! The rows of Generalize.xml and Cleanup.xml: what they do on the reference image, the rows of
//! older builds, a missing user hive, and the rows compared with the public action files.

mod common;

use common::edit_hive;
use common::reference_image::*;
use reseal::image::{DEFAULT, SAM, SECURITY, SOFTWARE, SYSTEM};
use reseal::ValueType;
use reseal_hive::data::encode_sz;
use reseal_testutil::hivex_tree;

#[test]
fn generalize_to_oobe_applies_the_generalize_and_cleanup_rows() {
    let (tree, plan) = generalized_reference_image();
    let sys = system(&tree);
    let sw = software(&tree);
    // Generalize.xml rows (build 19045: the 18362 set) and Cleanup.xml rows.
    let tpm = format!(r"{CS}\Services\TPM");
    assert!(!has_value(&sys, &format!(r"{tpm}\WMI"), "WindowsAIKHash"));
    assert!(!has_value(&sys, &format!(r"{tpm}\WMI"), "NoPPIClear"));
    assert_eq!(dword(&sys, &format!(r"{tpm}\WMI"), "KeepMe"), Some(7));
    for key in [
        r"WMI\Admin",
        r"WMI\Endorsement",
        "ODUID",
        "PlatformQuoteKeys",
    ] {
        assert!(!has_key(&sys, &format!(r"{tpm}\{key}")), "{key}");
    }
    assert!(!has_value(
        &sys,
        &format!(r"{CS}\Services\spaceport\Parameters"),
        "ControlId"
    ));
    assert!(!has_value(
        &sys,
        &format!(r"{CS}\Services\spaceport\Parameters"),
        "PrimordialId"
    ));
    assert!(!has_value(
        &sys,
        &format!(r"{CS}\Control"),
        "PortableOperatingSystem"
    ));
    assert!(!has_value(
        &sys,
        &format!(r"{CS}\Control\PriorityControl"),
        "ConvertibleSlateMode"
    ));
    assert_eq!(
        dword(
            &sys,
            &format!(r"{CS}\Control\PriorityControl"),
            "Win32PrioritySeparation"
        ),
        Some(2)
    );
    assert_eq!(
        dword(
            &sys,
            &format!(r"{CS}\Control\SecureBoot"),
            "AvailableUpdates"
        ),
        Some(0x8002)
    );
    assert_eq!(
        dword(
            &sys,
            &format!(r"{CS}\Control\InitialMachineConfig"),
            "Sequence"
        ),
        Some(1)
    );
    assert!(
        has_key(&sys, &format!(r"{CS}\Enum\PCI\VEN_8086")),
        "devices are kept"
    );
    assert!(plan.notes.iter().any(|n| n.provider == "devices"));
    assert!(!has_key(&sw, r"Microsoft\Provisioning\AutopilotPolicy"));
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows NT\CurrentVersion\Notifications\Data",
        "41871D20A3BC1475"
    ));
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows Advanced Threat Protection",
        "senseGuid"
    ));
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows NT\CurrentVersion\Schedule",
        "HashingCompleted"
    ));
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows NT\CurrentVersion\Schedule",
        "DomainJoinDetected"
    ));
    let default = hivex(&tree, "Windows/System32/config/DEFAULT");
    assert!(!has_key(&default, r"Software\Microsoft\IdentityCRL"));
    assert!(has_value(
        &default,
        r"Software\Microsoft\Windows\CurrentVersion\Run",
        "Keep"
    ));
    let user = hivex(&tree, NTUSER);
    assert_eq!(
        dword(
            &user,
            r"Software\Microsoft\Windows\CurrentVersion\CloudStore",
            "IsSysPrepGeneralized"
        ),
        Some(1)
    );
    assert!(has_key(
        &user,
        r"Software\Microsoft\Windows\CurrentVersion\CloudStore\Store\Cache"
    ));
    assert!(!has_key(
        &user,
        r"SOFTWARE\Microsoft\Windows\CurrentVersion\MultiModeScenarios\LastKnownLocation"
    ));
    assert!(has_value(
        &user,
        r"Software\Microsoft\Windows\CurrentVersion\Explorer",
        "Keep"
    ));
    let cdp = "Windows/ServiceProfiles/LocalService/AppData/Local/ConnectedDevicesPlatform";
    assert!(!exists(&tree, &format!("{cdp}/L.x.cdp")));
    assert!(!exists(&tree, &format!("{cdp}/ActivitiesCache.sst")));
    assert!(exists(&tree, &format!("{cdp}/keep.dat")));
    assert!(!exists(
        &tree,
        "Windows/Resources/Themes/aero/VSCache/Aero.msstyles_1_0.NMW"
    ));
    assert!(exists(&tree, "Windows/Resources/Themes/aero/VSCache"));
    assert!(!exists(&tree, "Windows/ServiceState/Autopilot"));
}

#[test]
fn older_builds_get_their_own_generalize_rows() {
    // 17134: CloudStore is deleted instead of marked; 14393: no Generalize.xml rows at all.
    for (build, cloud_store_kept, tpm_kept) in [("17134", false, false), ("14393", true, true)] {
        let tree = reference_image();
        edit_hive(&tree, "Windows/System32/config/SOFTWARE", |hive| {
            let key = r"Microsoft\Windows NT\CurrentVersion";
            hive.set_value(key, "CurrentBuildNumber", ValueType::SZ, &encode_sz(build))
                .unwrap();
        });
        let plan = generalize(&tree, &options());
        let user = hivex(&tree, NTUSER);
        let cloud_store = r"Software\Microsoft\Windows\CurrentVersion\CloudStore";
        assert_eq!(has_key(&user, cloud_store), cloud_store_kept, "{build}");
        assert!(
            !has_value(&user, cloud_store, "IsSysPrepGeneralized"),
            "{build}"
        );
        assert_eq!(
            has_value(
                &system(&tree),
                &format!(r"{CS}\Services\TPM\WMI"),
                "WindowsAIKHash"
            ),
            tpm_kept,
            "{build}"
        );
        if build == "14393" {
            assert!(plan
                .notes
                .iter()
                .any(|n| n.provider == "action-files" && n.message.contains("14393")));
        }
    }
}

#[test]
fn a_missing_hive_for_user_rows_is_a_note_not_a_failure() {
    let tree = reference_image();
    std::fs::remove_file(tree.path(NTUSER)).unwrap();
    let plan = generalize(&tree, &options());
    assert!(plan
        .notes
        .iter()
        .any(|n| n.provider == "action-files" && n.message.contains("NTUSER.DAT")));
    // The hives Windows keeps stay readable by hivex after the run.
    for hive in [SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT] {
        hivex_tree(&tree.path(&hive.replace('\\', "/")));
    }
}

/// One registry or file action, as comparable text: (kind, path, name, value).
type ActionRow = (String, String, String, u32);

/// The registry and file actions of an action file (commented-out blocks are comments, so
/// they are not read), without the amd64/wow64 duplicates.
fn action_file_rows(xml: &str) -> std::collections::BTreeSet<ActionRow> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut rows = std::collections::BTreeSet::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(tag) | Event::Empty(tag) => {
                let kind = String::from_utf8(tag.name().as_ref().to_vec()).unwrap();
                if ![
                    "deleteValue",
                    "deleteKey",
                    "setValue",
                    "deleteFile",
                    "deleteDirectory",
                ]
                .contains(&kind.as_str())
                {
                    continue;
                }
                let attribute = |name: &str| {
                    tag.try_get_attribute(name)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().into_owned())
                        .unwrap_or_default()
                };
                let value = attribute("value");
                let value = match value.strip_prefix("0x") {
                    Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
                    None => value.parse().unwrap_or(0),
                };
                rows.insert((kind, attribute("path"), attribute("name"), value));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    rows
}

fn our_rows(build: u32) -> std::collections::BTreeSet<ActionRow> {
    use reseal::providers::action_files::{RowAction, GENERALIZE_ROWS};
    GENERALIZE_ROWS
        .iter()
        .filter(|row| (row.first_build..=row.last_build).contains(&build))
        .map(|row| {
            let (kind, path, name, value) = match row.action {
                RowAction::DeleteValue { path, name } => ("deleteValue", path, name, 0),
                RowAction::DeleteKey { path } => ("deleteKey", path, "", 0),
                RowAction::SetDword { path, name, value } => ("setValue", path, name, value),
                RowAction::DeleteFiles { path } => ("deleteFile", path, "", 0),
                RowAction::DeleteDirectory { path } => ("deleteDirectory", path, "", 0),
            };
            (kind.to_string(), path.to_string(), name.to_string(), value)
        })
        .collect()
}

#[test]
fn the_generalize_rows_are_exactly_those_of_the_public_action_files() {
    let dir = reseal_testutil::shared_dir().join("reference/actionfiles");
    for build in [15063, 17134, 18362] {
        let path = dir.join(format!("Generalize-10.0.{build}.xml"));
        let Ok(xml) = std::fs::read_to_string(&path) else {
            assert!(
                std::env::var("CI").map_or(true, |ci| ci != "true"),
                "{} is missing",
                path.display()
            );
            eprintln!("skipping: {} is missing", path.display());
            return;
        };
        assert_eq!(our_rows(build), action_file_rows(&xml), "build {build}");
    }
}
