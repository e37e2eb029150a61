//! The `sk` records of real hives listed and their descriptors replaced in place: every key's
//! descriptor is among the listed ones, a replacement changes only the descriptor's bytes (and
//! the base block), python3-hivex reads the whole result as before, and the keys read the new
//! descriptors.

mod common;

use common::*;
use reseal_hive::{Error, Hive, Key};
use reseal_nt::domain_swap::DomainSwap;
use reseal_nt::Sid;

/// regipy's UsrClass.dat: hundreds of sk records, most granting its user (a local account).
const USR_CLASS: &str = "hives/regipy/UsrClass.dat";
const USR_CLASS_DOMAIN: &str = "S-1-5-21-2734969515-1644526556-1039763013";

/// Every key's descriptor, depth first, without recursion.
fn key_descriptors(hive: &Hive) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut pending: Vec<Key<'_>> = vec![hive.root().unwrap()];
    while let Some(key) = pending.pop() {
        found.push(key.security_descriptor().unwrap().into_owned());
        pending.extend(key.subkeys().unwrap());
    }
    found
}

#[test]
fn every_key_descriptor_is_among_the_listed_records() {
    for relative in HIVES_HIVEX_OPENS {
        let Some(bytes) = fixture_bytes(relative) else {
            return;
        };
        let hive = Hive::from_bytes(bytes).unwrap();
        let records = hive.security_records().unwrap();
        let mut offsets: Vec<u32> = records.iter().map(|r| r.offset).collect();
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), records.len(), "{relative}: a record twice");
        for descriptor in key_descriptors(&hive) {
            assert!(
                records
                    .iter()
                    .any(|r| r.descriptor == descriptor.as_slice()),
                "{relative}: a key's descriptor is not in the list"
            );
        }
    }
}

#[test]
fn swapped_descriptors_are_written_in_place_and_read_back() {
    let Some(bytes) = fixture_bytes(USR_CLASS) else {
        return;
    };
    let swap = DomainSwap::new(
        &Sid::parse_machine_sid(USR_CLASS_DOMAIN).unwrap(),
        &Sid::parse_machine_sid("S-1-5-21-1-22-333").unwrap(),
    )
    .unwrap();
    let mut hive = Hive::from_bytes(bytes.clone()).unwrap();
    let before_keys: Vec<Vec<u8>> = key_descriptors(&hive);
    let replacements: Vec<(u32, Vec<u8>)> = hive
        .security_records()
        .unwrap()
        .iter()
        .filter_map(|r| {
            let new = swap.swap_in_descriptor(r.descriptor).unwrap()?;
            Some((r.offset, new))
        })
        .collect();
    assert!(
        replacements.len() > 100,
        "only {} records name the user",
        replacements.len()
    );
    let counts_before: Vec<(u32, u32)> = hive
        .security_records()
        .unwrap()
        .iter()
        .map(|r| (r.offset, r.reference_count))
        .collect();
    for (offset, descriptor) in &replacements {
        hive.replace_security_descriptor(*offset, descriptor)
            .unwrap();
    }
    assert!(hive.is_modified());
    let committed = hive.commit();

    // Only descriptor bytes and the base block changed.
    let reopened = Hive::from_bytes(committed.clone()).unwrap();
    let ranges: Vec<std::ops::Range<usize>> = reopened
        .security_records()
        .unwrap()
        .iter()
        .map(|r| {
            // The descriptor's place in the file: the cell data starts 4 bytes after the cell.
            let start = 4096 + r.offset as usize + 4 + 20;
            start..start + r.descriptor.len()
        })
        .collect();
    for (at, (old, new)) in bytes.iter().zip(&committed).enumerate().skip(4096) {
        if old != new {
            assert!(
                ranges.iter().any(|r| r.contains(&at)),
                "byte {at:#x} changed outside the descriptors"
            );
        }
    }
    // The list, its order and the reference counts are as they were.
    let counts_after: Vec<(u32, u32)> = reopened
        .security_records()
        .unwrap()
        .iter()
        .map(|r| (r.offset, r.reference_count))
        .collect();
    assert_eq!(counts_after, counts_before);
    // Each key reads its old descriptor with the SID replaced.
    let expected: Vec<Vec<u8>> = before_keys
        .iter()
        .map(|d| swap.swap_in_descriptor(d).unwrap().unwrap_or(d.clone()))
        .collect();
    assert_eq!(key_descriptors(&reopened), expected);
    let (checked_before, checked_after) = (
        Hive::from_bytes(bytes.clone()).unwrap().check(),
        reopened.check(),
    );
    assert_eq!(checked_after.problems, checked_before.problems);
    assert_eq!(
        checked_after.security_count_mismatches,
        checked_before.security_count_mismatches
    );
    // A reader we did not write sees the same keys and values.
    assert_eq!(
        reseal_testutil::hivex_tree_of_bytes(&committed),
        reseal_testutil::hivex_tree_of_bytes(&bytes)
    );
}

#[test]
fn a_replacement_of_another_length_or_not_a_descriptor_is_refused() {
    let mut hive = Hive::new_empty("ROOT", 5);
    let record = hive.security_records().unwrap();
    assert_eq!(record.len(), 1);
    let (offset, descriptor) = (record[0].offset, record[0].descriptor.to_vec());
    let longer = [descriptor.clone(), vec![0; 4]].concat();
    let error = hive
        .replace_security_descriptor(offset, &longer)
        .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
    let garbage = vec![0xFF; descriptor.len()];
    let error = hive
        .replace_security_descriptor(offset, &garbage)
        .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
    // The same bytes change nothing.
    hive.replace_security_descriptor(offset, &descriptor)
        .unwrap();
    assert!(!hive.is_modified());
    // An offset that is not an sk record is an error, not a write.
    let root = hive.root().unwrap().cell_offset();
    assert!(hive.replace_security_descriptor(root, &descriptor).is_err());
    assert!(!hive.is_modified());
}

#[test]
fn the_root_key_is_renamed_in_place_only_to_a_name_of_its_length() {
    let Some(bytes) = fixture_bytes(USR_CLASS) else {
        return;
    };
    let mut hive = Hive::from_bytes(bytes.clone()).unwrap();
    let old_name = hive.root().unwrap().name().unwrap();
    assert!(old_name.contains(USR_CLASS_DOMAIN), "{old_name}");
    let same_length = old_name.replace(
        USR_CLASS_DOMAIN,
        "S-1-5-21-1734969515-1644526556-1039763013",
    );
    let error = hive
        .rename_key("", "S-1-5-21-1-2-3-1001_Classes")
        .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
    assert!(!hive.is_modified());
    hive.rename_key("", &same_length).unwrap();
    let committed = hive.commit();
    let mut expected = reseal_testutil::hivex_tree_of_bytes(&bytes);
    expected.name = same_length;
    assert_eq!(reseal_testutil::hivex_tree_of_bytes(&committed), expected);
}
