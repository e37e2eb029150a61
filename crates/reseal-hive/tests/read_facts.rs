//! Facts about real hives (from the fixtures' manifest) and a second reader (`nt-hive`) as oracle.

mod common;

use common::*;
use reseal_hive::{Hive, ValueType};

fn open(relative: &str) -> Option<Hive> {
    fixture_bytes(relative)
        .map(|b| Hive::from_bytes(b).unwrap_or_else(|e| panic!("{relative}: {e}")))
}

#[test]
fn windows7_system_hive_facts() {
    let Some(hive) = open("hives/regipy/SYSTEM") else {
        return;
    };
    assert!(!hive.was_dirty());
    assert_eq!(hive.minor_version(), 5);
    let current = hive.value("Select", "Current").unwrap().unwrap();
    assert_eq!(current.value_type().unwrap(), ValueType::DWORD);
    assert_eq!(current.dword().unwrap(), 1);
    let computer_name = hive
        .value(
            "ControlSet001\\Control\\ComputerName\\ComputerName",
            "ComputerName",
        )
        .unwrap()
        .unwrap();
    assert_eq!(computer_name.string().unwrap(), "WKS-WIN732BITA");
    // Any case, in path and value name.
    let again = hive
        .value(
            "controlset001\\CONTROL\\computername\\COMPUTERNAME",
            "computername",
        )
        .unwrap()
        .unwrap();
    assert_eq!(again.string().unwrap(), "WKS-WIN732BITA");
    assert!(hive.key("ControlSet001\\NoSuchKey").unwrap().is_none());
    assert_eq!(count_keys(&our_tree(&hive)), 30756);
    let root = hive.root().unwrap();
    assert_eq!(
        root.name().unwrap(),
        "CMI-CreateHive{F10156BE-0E87-4EFB-969E-5DA29D131144}"
    );
    assert_eq!(root.subkeys().unwrap().len(), 8);
}

#[test]
fn nt4_system_hive_facts() {
    let Some(hive) = open("hives/aiowinreg/nt/system.reg") else {
        return;
    };
    let current = hive
        .value("Select", "Current")
        .unwrap()
        .unwrap()
        .dword()
        .unwrap();
    let control_set = format!("ControlSet{current:03}\\Control");
    let name = hive
        .value(
            &format!("{control_set}\\ComputerName\\ComputerName"),
            "ComputerName",
        )
        .unwrap()
        .unwrap();
    assert_eq!(name.string().unwrap(), "SERVER");
    let product = hive
        .value(&format!("{control_set}\\ProductOptions"), "ProductType")
        .unwrap()
        .unwrap();
    assert_eq!(product.string().unwrap(), "LanmanNT");
}

#[test]
fn dirty_hives_open_and_say_so() {
    for relative in [
        "hives/regipy/SECURITY",
        "hives/EricZimmerman/SECURITY",
        "hives/regipy/SYSTEM_B",
    ] {
        if let Some(hive) = open(relative) {
            assert!(hive.was_dirty(), "{relative}");
        }
    }
    if let Some(hive) = open("hives/regipy/SAM") {
        assert!(!hive.was_dirty());
        assert_eq!(hive.minor_version(), 3);
    }
}

#[test]
fn testhive_big_data_boundaries_and_subkeys() {
    let Some(hive) = open("hives/nt-hive/testhive") else {
        return;
    };
    let big = hive.key("big-data-test").unwrap().unwrap();
    let mut sizes: Vec<usize> = big
        .values()
        .unwrap()
        .iter()
        .map(|v| v.data().unwrap().len())
        .collect();
    sizes.sort();
    for boundary in [16343, 16344, 16345] {
        assert!(sizes.contains(&boundary), "sizes {sizes:?}");
    }
    let subkeys = hive.key("subkey-test").unwrap().unwrap().subkeys().unwrap();
    assert_eq!(subkeys.len(), 512);
    // The list is sorted by upper-cased name.
    let names: Vec<String> = subkeys
        .iter()
        .map(|k| k.name().unwrap().to_uppercase())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    // Non-ASCII key names are found in any case.
    let encoding = hive.key("character-encoding-test").unwrap().unwrap();
    assert!(encoding.subkey("ÄÖÜ").unwrap().is_some());
    assert!(encoding.subkey("äöü").unwrap().is_some());
    assert!(
        encoding.subkey("ａ").unwrap().is_some(),
        "fullwidth A, folded"
    );
    let root = hive.root().unwrap();
    assert!(!root.security_descriptor().unwrap().is_empty());
}

#[test]
fn testhive_reads_like_nt_hive() {
    for relative in [
        "hives/nt-hive/testhive",
        "hives/yarp/BigDataHive",
        "hives/yarp/UnicodeHive",
    ] {
        let Some(bytes) = fixture_bytes(relative) else {
            continue;
        };
        let hive = Hive::from_bytes(bytes.clone()).unwrap();
        let ours = normalized(our_tree(&hive));
        let theirs = normalized(nt_hive_tree(&bytes));
        assert_eq!(first_difference(&ours, &theirs, relative), None);
    }
}
