//! The structure check on real hives and on hives after edits.

mod common;

use common::*;
use reseal_hive::{data, Hive, ValueType};

#[test]
fn real_hives_check_without_problems() {
    let mut failures = Vec::new();
    for relative in HIVES_HIVEX_OPENS {
        let Some(bytes) = fixture_bytes(relative) else {
            continue;
        };
        let hive = Hive::from_bytes(bytes).unwrap();
        let report = hive.check();
        eprintln!(
            "{relative}: dirty {} keys {} values {} cells {}/{} orphans {} sk mismatches {:?} problems {:?}",
            report.dirty,
            report.keys,
            report.values,
            report.allocated_cells,
            report.free_cells,
            report.orphan_cells.len(),
            report.security_count_mismatches,
            report.problems.iter().take(3).collect::<Vec<_>>()
        );
        assert_eq!(report.keys as usize, count_keys(&our_tree(&hive)));
        // yarp's NewDirtyHive and Windows' own recovery of it hold allocated cells no key refers to.
        let leaks_expected = relative.contains("NewDirtyHive1");
        if !report.problems.is_empty()
            || !report.security_count_mismatches.is_empty()
            || (report.orphan_cells.is_empty() == leaks_expected)
        {
            failures.push(relative);
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// Every key path below the root with its security descriptor.
fn descriptors(hive: &Hive) -> Vec<(String, Vec<u8>)> {
    fn walk(key: &reseal_hive::Key<'_>, path: &str, out: &mut Vec<(String, Vec<u8>)>) {
        out.push((
            path.to_string(),
            key.security_descriptor().unwrap().into_owned(),
        ));
        for child in key.subkeys().unwrap() {
            let name = child.name().unwrap();
            let child_path = if path.is_empty() {
                name
            } else {
                format!("{path}\\{name}")
            };
            walk(&child, &child_path, out);
        }
    }
    let mut out = Vec::new();
    walk(&hive.root().unwrap(), "", &mut out);
    out
}

fn sk_cells(bytes: &[u8]) -> usize {
    allocated_cells(bytes)
        .values()
        .filter(|c| &c[4..6] == b"sk")
        .count()
}

#[test]
fn deleting_the_last_users_of_a_security_record_frees_it() {
    let Some(bytes) = fixture_bytes("hives/regipy/SAM") else {
        return;
    };
    let mut hive = Hive::from_bytes(bytes.clone()).unwrap();
    let all = descriptors(&hive);
    // A key whose subtree holds every user of some descriptor (Windows shares one sk per
    // distinct descriptor, so equal bytes mean the same sk).
    let (path, _) = all
        .iter()
        .filter(|(path, _)| !path.is_empty())
        .find(|(path, descriptor)| {
            all.iter()
                .filter(|(_, d)| d == descriptor)
                .all(|(p, _)| p == path || p.starts_with(&format!("{path}\\")))
        })
        .expect("SAM has a key with a descriptor of its own")
        .clone();
    assert!(hive.delete_key(&path).unwrap());
    let committed = hive.commit();
    let report = Hive::from_bytes(committed.clone()).unwrap().check();
    assert!(report.is_clean(), "{report:?}");
    assert!(sk_cells(&committed) < sk_cells(&bytes));
}

#[test]
fn new_keys_share_and_release_their_parents_security() {
    let mut hive = Hive::new_empty("ROOT", 5);
    for i in 0..20 {
        hive.create_key(&format!("Parent\\Child{i}")).unwrap();
        hive.set_value(
            &format!("Parent\\Child{i}"),
            "v",
            ValueType::SZ,
            &data::encode_sz("x"),
        )
        .unwrap();
    }
    assert!(hive.check().is_clean());
    hive.delete_key("Parent").unwrap();
    let committed = hive.commit();
    let reopened = Hive::from_bytes(committed.clone()).unwrap();
    let report = reopened.check();
    assert!(report.is_clean(), "{report:?}");
    // Back to the root key and its security record.
    assert_eq!(report.allocated_cells, 2);
    assert_eq!(sk_cells(&committed), 1);
}
