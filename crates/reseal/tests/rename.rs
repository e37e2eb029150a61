//! Renaming a clone in place (`reseal::rename`, `rename_images`, and reseal with a computer
//! name): every value that holds the name, read back with python3-hivex; nothing else changed;
//! the setup state left as it was; names Windows refuses are usage errors naming the rule.

mod common;

use std::path::Path;

use common::{hivex_value_at, sample_tree, system_b_tree, Tree};
use reseal::{
    DirectoryTarget, ErrorKind, GeneralizeOptions, OpenOptions, Rename, RunEvent, RunOptions,
};
use reseal_testutil::sample_wim_copy;

const SYSTEM: &str = "Windows/System32/config/SYSTEM";
const SOFTWARE: &str = "Windows/System32/config/SOFTWARE";

fn rename_to(name: &str, description: Option<&str>) -> Rename {
    Rename {
        computer_name: name.to_string(),
        description: description.map(str::to_string),
        ..Rename::default()
    }
}

/// The REG_SZ value `name` of `key`, as hivex reads the hive file.
fn hivex_string(hive: &Path, key: &str, name: &str) -> Option<String> {
    let (value_type, data) = hivex_value_at(hive, key, name)?;
    assert_eq!(value_type, 1, "{key}\\{name} is not REG_SZ");
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0)
        .collect();
    Some(String::from_utf16(&units).unwrap())
}

/// The control set the image boots, `ControlSet00N`.
fn control_set(hive: &Path) -> String {
    let (_, data) = hivex_value_at(hive, "Select", "Current").expect("Select\\Current");
    let current = u32::from_le_bytes(data[..4].try_into().unwrap());
    format!("ControlSet{current:03}")
}

/// Checks with hivex that the image at `tree` carries `name` everywhere.
fn assert_named(tree: &Tree, name: &str) {
    let system = tree.path(SYSTEM);
    let cs = control_set(&system);
    let read = |key: &str, value: &str| hivex_string(&system, &format!(r"{cs}\{key}"), value);
    let upper = name.to_ascii_uppercase();
    assert_eq!(
        read(r"Control\ComputerName\ComputerName", "ComputerName").as_deref(),
        Some(upper.as_str())
    );
    assert_eq!(
        read(r"Services\Tcpip\Parameters", "Hostname").as_deref(),
        Some(name)
    );
    assert_eq!(
        read(r"Services\Tcpip\Parameters", "NV Hostname").as_deref(),
        Some(name)
    );
}

#[test]
fn a_rename_sets_the_name_everywhere_and_nothing_else() {
    let Some(tree) = sample_tree() else { return };
    let before = tree.snapshot();
    let system_before = tree.path(SYSTEM);
    let setup_before =
        common::hivex_shallow(&system_before, "Setup").expect("the sample has a Setup key");
    let winlogon = r"Microsoft\Windows NT\CurrentVersion\Winlogon";
    let old_domain = hivex_string(&tree.path(SOFTWARE), winlogon, "DefaultDomainName");
    assert_eq!(old_domain.as_deref(), Some("REF-PC01"));

    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let (plan, applied) =
        reseal::rename(&mut target, &rename_to("Clone-042", Some("Lab clone 42"))).unwrap();
    drop(target);
    assert!(applied.is_some());
    // The rename's changes, then the record of the run in the image.
    let (record, renames) = plan.changes.split_last().unwrap();
    assert!(renames.iter().all(|c| c.provider == "rename"));
    assert_eq!(record.provider, reseal::run_record::PROVIDER);

    assert_named(&tree, "Clone-042");
    let system = tree.path(SYSTEM);
    let cs = control_set(&system);
    assert_eq!(
        hivex_string(
            &system,
            &format!(r"{cs}\Services\LanmanServer\Parameters"),
            "srvcomment"
        )
        .as_deref(),
        Some("Lab clone 42")
    );
    assert_eq!(
        hivex_string(&tree.path(SOFTWARE), winlogon, "DefaultDomainName").as_deref(),
        Some("CLONE-042")
    );
    // The setup state is as it was: a rename is no reseal.
    assert_eq!(common::hivex_shallow(&system, "Setup"), Some(setup_before));
    // Only the two hives changed, and their logs, emptied as the edits went in; the record of
    // the run is the one new file.
    let after = tree.snapshot();
    let changed: Vec<&String> = before
        .keys()
        .filter(|path| before.get(*path) != after.get(*path))
        .collect();
    assert_eq!(
        changed,
        vec![
            "Windows/System32/config/SOFTWARE",
            "Windows/System32/config/SOFTWARE.LOG1",
            "Windows/System32/config/SOFTWARE.LOG2",
            "Windows/System32/config/SYSTEM",
            "Windows/System32/config/SYSTEM.LOG1",
            "Windows/System32/config/SYSTEM.LOG2",
        ]
    );
    let added: Vec<&String> = after
        .keys()
        .filter(|path| !before.contains_key(*path))
        .collect();
    assert_eq!(added, ["Windows/Panther/reseal.log"]);
    assert_eq!(before.len() + 1, after.len());

    // A second run finds everything in place.
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let (again, _) =
        reseal::rename(&mut target, &rename_to("Clone-042", Some("Lab clone 42"))).unwrap();
    assert!(again.changes.is_empty(), "{again}");
}

#[test]
fn names_windows_refuses_are_usage_errors_naming_the_rule_and_change_nothing() {
    let Some(tree) = sample_tree() else { return };
    let before = tree.snapshot();
    for (bad, rule) in [
        ("", "empty"),
        ("NAME-LONGER-THAN-15", "longer than 15"),
        ("lab*07", "NetBIOS"),
        ("lab\\07", "NetBIOS"),
        ("lab.example", "period"),
        ("lab_07", "DNS host label"),
        ("lab 07", "DNS host label"),
        ("-lab07", "start or end with '-'"),
        ("lab07-", "start or end with '-'"),
        ("31337", "all digits"),
        ("*", "NetBIOS"),
    ] {
        let mut target = DirectoryTarget::open(tree.root()).unwrap();
        let error = reseal::rename(&mut target, &rename_to(bad, None)).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Usage, "{bad:?}: {error}");
        assert!(error.message.contains("computer name"), "{error}");
        assert!(error.message.contains(rule), "{bad:?}: {error}");
    }
    let long = "x".repeat(49);
    for bad in [long.as_str(), "tab\there"] {
        let mut target = DirectoryTarget::open(tree.root()).unwrap();
        let error = reseal::rename(&mut target, &rename_to("LAB-07", Some(bad))).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Usage, "{error}");
        assert!(error.message.contains("description"), "{error}");
    }
    assert!(tree.snapshot() == before, "a refused rename wrote");
}

#[test]
fn a_dry_run_plans_the_rename_and_writes_nothing() {
    let Some(tree) = sample_tree() else { return };
    let before = tree.snapshot();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let rename = Rename {
        dry_run: true,
        ..rename_to("LAB-07", None)
    };
    let (plan, applied) = reseal::rename(&mut target, &rename).unwrap();
    assert!(applied.is_none());
    // The four values of the name, then the record of the run in the image.
    assert_eq!(plan.changes.len(), 5, "{plan}");
    assert_eq!(plan.changes[4].provider, "run-record");
    drop(target);
    assert!(tree.snapshot() == before, "a dry run wrote");
}

#[test]
fn a_real_windows_system_hive_is_renamed() {
    // SYSTEM_B: a real Windows 10 SYSTEM hive, dirty, with its two logs.
    let Some(tree) = system_b_tree() else { return };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    reseal::rename(&mut target, &rename_to("WKS-CLONE-7", None)).unwrap();
    drop(target);
    assert_named(&tree, "WKS-CLONE-7");
}

#[test]
fn reseal_with_a_computer_name_renames_in_place_and_reseals() {
    let Some(tree) = sample_tree() else { return };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let options = GeneralizeOptions {
        generalize: false,
        computer_name: Some("Kiosk-3".to_string()),
        ..GeneralizeOptions::default()
    };
    let (plan, _) = reseal::generalize(&mut target, &options, &[]).unwrap();
    drop(target);
    assert!(plan.changes.iter().any(|c| c.provider == "rename"));
    assert_named(&tree, "Kiosk-3");
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let inspection = reseal::inspect(&mut target).unwrap();
    assert_eq!(inspection.computer_name.as_deref(), Some("KIOSK-3"));
    assert_eq!(
        inspection.image_state.as_deref(),
        Some("IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE")
    );
}

#[test]
fn every_image_of_a_wim_is_renamed() {
    let Some((_dir, wim)) = sample_wim_copy() else {
        return;
    };
    let run = RunOptions::default();
    let mut planned = 0;
    reseal::rename_images(
        &wim,
        &run,
        &rename_to("WIM-CLONE", Some("from a WIM")),
        &reseal::NoProgress,
        &mut |event| {
            if let RunEvent::Generalized { plan, applied, .. } = event {
                assert!(applied.is_some());
                planned += plan.changes.len();
            }
        },
    )
    .unwrap();
    assert!(planned >= 5, "{planned} changes");
    let mut target = reseal::open_target_with(&wim, &OpenOptions::default()).unwrap();
    let inspection = reseal::inspect(target.as_mut()).unwrap();
    assert_eq!(inspection.computer_name.as_deref(), Some("WIM-CLONE"));
    assert_eq!(
        inspection.image_state.as_deref(),
        Some("IMAGE_STATE_COMPLETE")
    );
    drop(target);
    // wimlib reads the renamed WIM.
    common::wimlib(&["verify", wim.to_str().unwrap()]);
}
