//! The devices provider: every installed boot-storage driver loads at boot after generalize
//! (`Start` 0, no overriding `StartOverride`), on the real finished Windows 10 SYSTEM hive
//! SYSTEM_B, read back with python3-hivex; drivers whose file is missing and other services stay
//! as they were.

mod common;

use common::{hivex_shallow, Tree};
use reseal::{DirectoryTarget, GeneralizeOptions};

const SYSTEM: &str = "Windows/System32/config/SYSTEM";
const SERVICES: &str = r"ControlSet001\Services";

/// The sample image with the real SYSTEM_B hive and its logs, and the driver files of
/// `drivers`; `None` outside CI when the real fixtures are missing.
fn system_b_with_drivers(drivers: &[&str]) -> Option<Tree> {
    let tree = common::system_b_tree()?;
    for driver in drivers {
        tree.write(
            &format!("Windows/System32/drivers/{driver}.sys"),
            b"MZ driver",
        );
    }
    Some(tree)
}

/// `Start` and the `StartOverride` values of a service, as python3-hivex reads them.
fn start_state(tree: &Tree, service: &str) -> (Option<u32>, Vec<(String, u32)>) {
    let dword = |data: &[u8]| u32::from_le_bytes(data[..4].try_into().unwrap());
    let key = hivex_shallow(&tree.path(SYSTEM), &format!(r"{SERVICES}\{service}"))
        .unwrap_or_else(|| panic!("{service} is in SYSTEM_B"));
    let start = key
        .values
        .iter()
        .find(|(name, _, _)| name == "Start")
        .map(|(_, _, data)| dword(data));
    let overrides = match hivex_shallow(
        &tree.path(SYSTEM),
        &format!(r"{SERVICES}\{service}\StartOverride"),
    ) {
        Some(key) => key
            .values
            .iter()
            .map(|(name, _, data)| (name.clone(), dword(data)))
            .collect(),
        None => Vec::new(),
    };
    (start, overrides)
}

fn generalize(tree: &Tree) {
    let options = GeneralizeOptions {
        // SYSTEM_B has pending file renames; not what this test is about.
        ignore_checks: vec!["pending-servicing".into()],
        ..GeneralizeOptions::default()
    };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    reseal::generalize(&mut target, &options, &[]).unwrap();
}

#[test]
fn installed_boot_storage_drivers_load_at_boot_after_generalize() {
    let installed = ["storahci", "stornvme", "storvsc"];
    let Some(tree) = system_b_with_drivers(&installed) else {
        return;
    };
    // What Windows 10 left: boot start, overridden for the controllers it did not boot from.
    for service in installed.iter().chain(&["LSI_SAS"]) {
        assert_eq!(
            start_state(&tree, service),
            (Some(0), vec![("0".to_string(), 3)]),
            "{service} before"
        );
    }
    let vhdmp_before = start_state(&tree, "vhdmp");

    generalize(&tree);

    for service in installed {
        assert_eq!(
            start_state(&tree, service),
            (Some(0), Vec::new()),
            "{service} loads at boot"
        );
    }
    // No driver file in the image: left as it was.
    assert_eq!(
        start_state(&tree, "LSI_SAS"),
        (Some(0), vec![("0".to_string(), 3)])
    );
    // Not a boot-storage controller driver.
    assert_eq!(start_state(&tree, "vhdmp"), vhdmp_before);
}

#[test]
fn a_boot_storage_driver_set_to_demand_start_is_set_to_boot_start() {
    let Some(tree) = system_b_with_drivers(&["stornvme"]) else {
        return;
    };
    let key = format!(r"{SERVICES}\stornvme");
    common::edit_hive(&tree, SYSTEM, |hive| {
        hive.set_value(&key, "Start", reseal::ValueType::DWORD, &3u32.to_le_bytes())
            .unwrap();
        hive.set_value(
            &format!(r"{key}\StartOverride"),
            "1",
            reseal::ValueType::DWORD,
            &0u32.to_le_bytes(),
        )
        .unwrap();
    });
    generalize(&tree);
    // The override that asks for boot start stays; the one that prevents it goes.
    assert_eq!(
        start_state(&tree, "stornvme"),
        (Some(0), vec![("1".to_string(), 0)])
    );
}
