//! Validate before write: each class of damage an edit could spread (a subkey count past its
//! list, a subkey list looping back to an ancestor, value data longer than its cell or outside the
//! hive, big data records that disagree with their value) is reported by `check()` and refused by
//! every edit that would go through it, as corrupt input naming the file offset and the reason,
//! before any byte changes.

mod common;

use common::{field, key_node_offset, put_u32};
use reseal_hive::{Hive, ValueType};

const BIG: usize = 40_000;

/// ROOT\A\B\C; A holds a small value and a big-data value of three segments.
fn sample() -> Vec<u8> {
    let mut hive = Hive::new_empty("ROOT", 5);
    hive.create_key("A\\B\\C").unwrap();
    hive.set_value("A", "small", ValueType::BINARY, &[5; 100])
        .unwrap();
    hive.set_value("A", "big", ValueType::BINARY, &[7; BIG])
        .unwrap();
    hive.commit()
}

type Edit = Box<dyn Fn(&mut Hive) -> reseal_hive::Result<()>>;

/// Every kind of edit that reaches `key` (or deletes its subtree from `A`).
fn edits_through(key: &str) -> Vec<(String, Edit)> {
    let key = key.to_string();
    let (k1, k2, k3, k4, k5) = (
        key.clone(),
        key.clone(),
        key.clone(),
        key.clone(),
        key.clone(),
    );
    vec![
        (
            format!("create_key {key}\\New"),
            Box::new(move |h: &mut Hive| h.create_key(&format!("{k1}\\New")).map(drop)),
        ),
        (
            format!("set_value {key}"),
            Box::new(move |h: &mut Hive| h.set_value(&k2, "x", ValueType::DWORD, &[1, 0, 0, 0])),
        ),
        (
            format!("delete_value {key}"),
            Box::new(move |h: &mut Hive| h.delete_value(&k3, "small").map(drop)),
        ),
        (
            format!("rename_key {key}"),
            Box::new(move |h: &mut Hive| h.rename_key(&k4, "Renamed")),
        ),
        (
            format!("delete_key {key}"),
            Box::new(move |h: &mut Hive| h.delete_key(&k5).map(drop)),
        ),
        (
            "delete_key A".to_string(),
            Box::new(|h: &mut Hive| h.delete_key("A").map(drop)),
        ),
    ]
}

/// `check()` reports `reason` with a file offset, and every edit through `key` is refused with it
/// without changing a byte.
fn assert_found_and_refused(damaged: &[u8], key: &str, reason: &str) {
    let hive = Hive::from_bytes(damaged.to_vec()).expect("the damage is below the root");
    let report = hive.check();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(reason) && p.contains("file offset 0x")),
        "check() does not report {reason:?}: {:?}",
        report.problems
    );
    for (name, edit) in edits_through(key) {
        let mut hive = Hive::from_bytes(damaged.to_vec()).unwrap();
        let error = match edit(&mut hive) {
            Ok(()) => panic!("{name}: an edit through damage ({reason}) was accepted"),
            Err(error) => error,
        };
        assert!(error.is_corrupt_input(), "{name}: {error}");
        let text = error.to_string();
        assert!(
            text.contains(reason) && text.contains("file offset 0x"),
            "{name}: {text}"
        );
        assert!(!hive.is_modified(), "{name}");
        assert_eq!(
            hive.bytes(),
            damaged,
            "{name}: bytes changed before the refusal"
        );
        assert_eq!(hive.commit(), damaged, "{name}: the commit wrote something");
    }
}

/// The vk of value `index` in A's value list (0 = "small", 1 = "big").
fn value_of_a(bytes: &[u8], index: usize) -> u32 {
    let a = key_node_offset(bytes, "A");
    field(bytes, field(bytes, a, 40), index * 4)
}

fn put_u16(bytes: &mut [u8], cell: u32, at: usize, value: u16) {
    let at = 4096 + cell as usize + 4 + at;
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn the_undamaged_sample_takes_every_edit() {
    let bytes = sample();
    assert!(Hive::from_bytes(bytes.clone()).unwrap().check().is_clean());
    for key in ["A", "A\\B\\C"] {
        for (name, edit) in edits_through(key) {
            let mut hive = Hive::from_bytes(bytes.clone()).unwrap();
            edit(&mut hive).unwrap_or_else(|e| panic!("{name}: {e}"));
            let committed = hive.commit();
            let report = Hive::from_bytes(committed).unwrap().check();
            assert!(report.problems.is_empty(), "{name}: {:?}", report.problems);
        }
    }
}

#[test]
fn a_subkey_count_far_past_the_list_is_refused() {
    let mut bytes = sample();
    let a = key_node_offset(&bytes, "A");
    put_u32(&mut bytes, a, 20, 1000);
    assert_found_and_refused(
        &bytes,
        "A",
        "subkey count is 1000, but its subkey list holds 1",
    );
}

#[test]
fn a_subkey_list_looping_back_to_the_parent_is_refused() {
    let mut bytes = sample();
    let (a, c) = (key_node_offset(&bytes, "A"), key_node_offset(&bytes, "C"));
    // C lists B, its own parent, through A's list.
    put_u32(&mut bytes, c, 20, 1);
    let list_of_a = field(&bytes, a, 28);
    put_u32(&mut bytes, c, 28, list_of_a);
    assert_found_and_refused(&bytes, "A\\B\\C", "parent field");
    let report = Hive::from_bytes(bytes).unwrap().check();
    assert!(
        report.problems.iter().any(|p| p.contains("reached twice")),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_subkey_list_looping_back_to_an_ancestor_is_refused() {
    let mut bytes = sample();
    let (a, c) = (key_node_offset(&bytes, "A"), key_node_offset(&bytes, "C"));
    // C lists A, its grandparent, through the root's list (A's parent field names the root).
    let root = field(&bytes, a, 16);
    put_u32(&mut bytes, c, 20, 1);
    let list_of_root = field(&bytes, root, 28);
    put_u32(&mut bytes, c, 28, list_of_root);
    assert_found_and_refused(&bytes, "A\\B\\C", "parent field");
}

#[test]
fn value_data_longer_than_its_cell_is_refused() {
    let mut bytes = sample();
    let small = value_of_a(&bytes, 0);
    put_u32(&mut bytes, small, 4, 0x7FFF_0000);
    assert_found_and_refused(&bytes, "A", "value data length is 2147418112 bytes");
}

#[test]
fn a_value_data_offset_past_the_end_is_refused() {
    let mut bytes = sample();
    let small = value_of_a(&bytes, 0);
    put_u32(&mut bytes, small, 8, 0x7FFF_FFF0);
    assert_found_and_refused(&bytes, "A", "outside the hive bins");
}

#[test]
fn a_big_data_record_with_a_wrong_segment_count_is_refused() {
    for count in [2, 200] {
        let mut bytes = sample();
        let record = field(&bytes, value_of_a(&bytes, 1), 8);
        put_u16(&mut bytes, record, 2, count);
        assert_found_and_refused(
            &bytes,
            "A",
            &format!("big data record has {count} segments, a value of {BIG} bytes needs 3"),
        );
    }
}

#[test]
fn a_big_data_segment_listed_twice_is_refused() {
    let mut bytes = sample();
    let record = field(&bytes, value_of_a(&bytes, 1), 8);
    let list = field(&bytes, record, 4);
    let first = field(&bytes, list, 0);
    put_u32(&mut bytes, list, 4, first);
    assert_found_and_refused(&bytes, "A", "listed twice");
}

#[test]
fn a_big_data_segment_smaller_than_its_part_is_refused() {
    let mut bytes = sample();
    let record = field(&bytes, value_of_a(&bytes, 1), 8);
    let list = field(&bytes, record, 4);
    // The first segment replaced by the small value's 100-byte data cell.
    let small_data = field(&bytes, value_of_a(&bytes, 0), 8);
    put_u32(&mut bytes, list, 0, small_data);
    assert_found_and_refused(&bytes, "A", "big data segment 0 is a cell of");
}
