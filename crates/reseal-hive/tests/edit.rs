//! Edits and commits, checked with two readers we did not write (python3-hivex and `nt-hive`) and
//! by comparing cells: the intended change appears, nothing else changes.

mod common;

use common::*;
use reseal_hive::base_block::BaseBlock;
use reseal_hive::{data, Error, Hive, ValueType};
use reseal_testutil::{HivexKey, HivexValue};

fn testhive() -> Option<(Vec<u8>, Hive)> {
    let bytes = fixture_bytes("hives/nt-hive/testhive")?;
    Some((bytes.clone(), Hive::from_bytes(bytes).unwrap()))
}

fn value(name: &str, value_type: ValueType, data: &[u8]) -> HivexValue {
    HivexValue {
        name: name.to_string(),
        value_type: value_type.0,
        data: data.to_vec(),
    }
}

fn key(name: &str) -> HivexKey {
    HivexKey {
        name: name.to_string(),
        values: Vec::new(),
        children: Vec::new(),
    }
}

#[test]
fn new_empty_hive_is_clean_and_readable() {
    for minor in 3..=6 {
        let mut hive = Hive::new_empty("ROOT", minor);
        assert_eq!(hive.minor_version(), minor);
        assert!(!hive.is_modified() && !hive.was_dirty());
        let bytes = hive.commit();
        let base = BaseBlock::parse(&bytes).unwrap();
        assert!(!base.is_dirty());
        assert_eq!(base.hive_bins_data_size() as usize, bytes.len() - 4096);
        assert_readers_see(&bytes, &key("ROOT"));
        let reopened = Hive::from_bytes(bytes).unwrap();
        let descriptor = reopened
            .root()
            .unwrap()
            .security_descriptor()
            .unwrap()
            .into_owned();
        assert_eq!(descriptor[0], 1, "self-relative descriptor revision");
    }
}

#[test]
fn create_keys_and_set_values_in_a_new_hive() {
    let mut hive = Hive::new_empty("ROOT", 5);
    assert!(hive.create_key("Software\\Vendor\\Product").unwrap());
    assert!(!hive.create_key("software\\VENDOR\\product").unwrap());
    assert!(hive.is_modified());
    hive.set_value(
        "Software\\Vendor",
        "Name",
        ValueType::SZ,
        &data::encode_sz("reseal"),
    )
    .unwrap();
    hive.set_value(
        "Software\\Vendor",
        "",
        ValueType::DWORD,
        &data::encode_dword(7),
    )
    .unwrap();
    hive.set_value(
        "Software\\Vendor\\Product",
        "Q",
        ValueType::QWORD,
        &data::encode_qword(1 << 40),
    )
    .unwrap();
    let bytes = hive.commit();
    assert!(!hive.is_modified());

    let mut expected = key("ROOT");
    let mut software = key("Software");
    let mut vendor = key("Vendor");
    vendor.values = vec![
        value("Name", ValueType::SZ, &data::encode_sz("reseal")),
        value("", ValueType::DWORD, &7u32.to_le_bytes()),
    ];
    let mut product = key("Product");
    product.values = vec![value("Q", ValueType::QWORD, &(1u64 << 40).to_le_bytes())];
    vendor.children.push(product);
    software.children.push(vendor);
    expected.children.push(software);
    assert_readers_see(&bytes, &expected);

    let reopened = Hive::from_bytes(bytes).unwrap();
    assert_eq!(
        reopened
            .value("SOFTWARE\\vendor", "")
            .unwrap()
            .unwrap()
            .dword()
            .unwrap(),
        7
    );
    assert_eq!(
        reopened
            .value("Software\\Vendor\\Product", "q")
            .unwrap()
            .unwrap()
            .qword()
            .unwrap(),
        1 << 40
    );
}

#[test]
fn invalid_names_are_rejected() {
    let mut hive = Hive::new_empty("ROOT", 5);
    for path in ["A\\\\B", &"x".repeat(256)] {
        assert!(
            matches!(hive.create_key(path), Err(Error::InvalidArgument(_))),
            "{path:?}"
        );
    }
    hive.create_key("A").unwrap();
    assert!(matches!(
        hive.rename_key("A", "B\\C"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        hive.rename_key("A", ""),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        hive.delete_key(""),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        hive.set_value("Missing", "v", ValueType::SZ, b""),
        Err(Error::KeyNotFound(_))
    ));
}

#[test]
fn set_value_changes_only_its_cells() {
    let Some((before, mut hive)) = testhive() else {
        return;
    };
    let mut expected = normalized(our_tree(&hive));
    let data_test = hive.key("data-test").unwrap().unwrap().cell_offset();
    hive.set_value(
        "data-test",
        "NewValue",
        ValueType::BINARY,
        &[1, 2, 3, 4, 5, 6],
    )
    .unwrap();
    let after = hive.commit();
    tree_key(&mut expected, &["data-test"]).values.push(value(
        "NewValue",
        ValueType::BINARY,
        &[1, 2, 3, 4, 5, 6],
    ));
    assert_readers_see(&after, &expected);
    let changed = changed_cells(&before, &after);
    assert!(changed.contains(&data_test), "{changed:x?}");
    // The key node and its value list (moved when it had no room) change, nothing else.
    assert!(changed.len() <= 2, "{changed:x?}");
    let base = BaseBlock::parse(&after).unwrap();
    assert_eq!(base.primary_sequence(), 2);
    assert!(!base.is_dirty());
}

#[test]
fn create_key_changes_only_parent_list_and_security() {
    let Some((before, mut hive)) = testhive() else {
        return;
    };
    let mut expected = normalized(our_tree(&hive));
    let parent = hive.key("subpath-test").unwrap().unwrap().cell_offset();
    let descriptor = hive
        .key("subpath-test")
        .unwrap()
        .unwrap()
        .security_descriptor()
        .unwrap()
        .into_owned();
    assert!(hive.create_key("subpath-test\\Grüße").unwrap());
    let after = hive.commit();
    tree_key(&mut expected, &["subpath-test"])
        .children
        .push(key("Grüße"));
    assert_readers_see(&after, &expected);
    let changed = changed_cells(&before, &after);
    assert!(changed.contains(&parent), "{changed:x?}");
    // Parent nk, its subkey list, the shared sk's reference count.
    assert!(changed.len() <= 3, "{changed:x?}");
    let reopened = Hive::from_bytes(after).unwrap();
    let new_key = reopened.key("SUBPATH-TEST\\GRÜSSE").unwrap();
    assert!(new_key.is_none(), "ß does not fold to SS");
    let new_key = reopened.key("SUBPATH-TEST\\GRÜßE").unwrap().unwrap();
    assert_eq!(
        new_key.security_descriptor().unwrap().into_owned(),
        descriptor
    );
}

#[test]
fn big_data_boundaries() {
    for minor in [3, 5] {
        let mut hive = Hive::new_empty("ROOT", minor);
        hive.create_key("Big").unwrap();
        let mut expected = key("ROOT");
        let mut big = key("Big");
        for len in [16343usize, 16344, 16345, 40000, 70000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let value_name = format!("v{len}");
            hive.set_value("Big", &value_name, ValueType::BINARY, &bytes)
                .unwrap();
            big.values
                .push(value(&value_name, ValueType::BINARY, &bytes));
        }
        expected.children.push(big);
        let committed = hive.commit();
        let db_cells = allocated_cells(&committed)
            .values()
            .filter(|cell| cell.len() == 16 && &cell[4..6] == b"db")
            .count();
        // 16345, 40000 and 70000 bytes need big data from version 1.4 on; 1.3 uses plain cells.
        assert_eq!(db_cells, if minor >= 4 { 3 } else { 0 }, "minor {minor}");
        let reopened = Hive::from_bytes(committed.clone()).unwrap();
        assert_eq!(
            normalized(our_tree(&reopened)),
            normalized(expected.clone())
        );
        if minor >= 4 {
            // hivex reads big data; for 1.3 it has no notion of it but reads plain cells too.
            assert_readers_see(&committed, &expected);
        } else {
            let hivex = normalized(reseal_testutil::hivex_tree_of_bytes(&committed));
            assert_eq!(
                first_difference(&hivex, &normalized(expected), "hivex"),
                None
            );
        }
    }
}

#[test]
fn replacing_and_deleting_values_frees_their_cells() {
    let mut hive = Hive::new_empty("ROOT", 5);
    hive.create_key("K").unwrap();
    let baseline = allocated_cells(&hive.commit()).len();
    hive.set_value("K", "big", ValueType::BINARY, &vec![7u8; 50000])
        .unwrap();
    hive.set_value("K", "BIG", ValueType::SZ, &data::encode_sz("small now"))
        .unwrap();
    hive.set_value("K", "dword", ValueType::DWORD, &data::encode_dword(1))
        .unwrap();
    let committed = hive.commit();
    let mut expected = key("ROOT");
    let mut k = key("K");
    k.values = vec![
        value("big", ValueType::SZ, &data::encode_sz("small now")),
        value("dword", ValueType::DWORD, &1u32.to_le_bytes()),
    ];
    expected.children.push(k.clone());
    assert_readers_see(&committed, &expected);
    assert!(hive.delete_value("k", "BIG").unwrap());
    assert!(!hive.delete_value("k", "BIG").unwrap());
    assert!(hive.delete_value("K", "dword").unwrap());
    assert!(!hive.delete_value("NoKey", "dword").unwrap());
    let committed = hive.commit();
    expected.children[0].values.clear();
    assert_readers_see(&committed, &expected);
    // Only the key node is left of K: the value list, vks and data cells are all free again.
    assert_eq!(allocated_cells(&committed).len(), baseline);
}

#[test]
fn delete_key_removes_the_subtree_and_nothing_else() {
    let Some((before, mut hive)) = testhive() else {
        return;
    };
    let mut expected = normalized(our_tree(&hive));
    let cells_before = allocated_cells(&before).len();
    assert!(hive.delete_key("big-data-test").unwrap());
    assert!(!hive.delete_key("big-data-test").unwrap());
    assert!(hive.delete_key("SUBKEY-TEST").unwrap());
    let after = hive.commit();
    expected
        .children
        .retain(|c| c.name != "big-data-test" && c.name != "subkey-test");
    assert_readers_see(&after, &expected);
    let changed = changed_cells(&before, &after);
    let cells_after = allocated_cells(&after).len();
    // 512 subkeys and the big values were freed; the only surviving cells that changed are the
    // root key node, its subkey list and the shared sk.
    assert!(cells_after < cells_before - 512);
    let surviving_changes = changed
        .iter()
        .filter(|offset| allocated_cells(&after).contains_key(offset))
        .count();
    assert!(surviving_changes <= 3, "{surviving_changes}");
}

#[test]
fn rename_key_resorts_and_keeps_contents() {
    let Some((before, mut hive)) = testhive() else {
        return;
    };
    let mut expected = normalized(our_tree(&hive));
    let renamed = ["subkey-test", "data-test"].map(|p| hive.key(p).unwrap().unwrap());
    let mut children = std::collections::HashSet::new();
    for key in &renamed {
        children.extend(key.subkeys().unwrap().iter().map(|k| k.cell_offset()));
    }
    let mut allowed: std::collections::HashSet<u32> =
        renamed.iter().map(|k| k.cell_offset()).collect();
    allowed.insert(hive.root().unwrap().cell_offset());
    hive.rename_key(
        "subkey-test",
        "S-1-5-21-1111111111-2222222222-3333333333-1001",
    )
    .unwrap();
    hive.rename_key("data-test", "ΣΊΣΥΦΟΣ").unwrap();
    assert!(matches!(
        hive.rename_key("big-data-test", "character-ENCODING-test"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        hive.rename_key("absent", "x"),
        Err(Error::KeyNotFound(_))
    ));
    let after = hive.commit();
    tree_key(&mut expected, &["subkey-test"]).name =
        "S-1-5-21-1111111111-2222222222-3333333333-1001".to_string();
    tree_key(&mut expected, &["data-test"]).name = "ΣΊΣΥΦΟΣ".to_string();
    assert_readers_see(&after, &expected);
    let reopened = Hive::from_bytes(after.clone()).unwrap();
    assert!(reopened.key("σίσυφοσ").unwrap().is_some());
    // Windows' table leaves the final sigma as it is: it does not name the same key.
    assert!(reopened.key("σίσυφος").unwrap().is_none());
    let names: Vec<Vec<u16>> = reopened
        .root()
        .unwrap()
        .subkeys()
        .unwrap()
        .iter()
        .map(|k| k.name().unwrap().to_uppercase().encode_utf16().collect())
        .collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "sorted by upper-cased name"
    );
    // Changed: the renamed key nodes, the root's node and subkey list, and (when a renamed node
    // moved to a larger cell) the parent field of its children.
    let before_cells = allocated_cells(&before);
    let after_cells = allocated_cells(&after);
    let mut lists = 0;
    for offset in changed_cells(&before, &after) {
        let old = &before_cells[&offset];
        if children.contains(&offset) {
            let new = &after_cells[&offset];
            assert_eq!(
                (&old[..20], &old[24..]),
                (&new[..20], &new[24..]),
                "child {offset:#x}"
            );
        } else if !allowed.contains(&offset) {
            assert!(
                matches!(&old[4..6], b"lh" | b"lf" | b"li" | b"ri"),
                "{offset:#x}"
            );
            lists += 1;
        }
    }
    assert!(lists <= 2);
}

#[test]
fn many_subkeys_split_into_an_index_root() {
    let mut hive = Hive::new_empty("ROOT", 5);
    let mut expected = key("ROOT");
    for i in (0..1500).rev() {
        let name = format!("Key{i:05}");
        hive.create_key(&name).unwrap();
        expected.children.push(key(&name));
    }
    let committed = hive.commit();
    assert!(allocated_cells(&committed)
        .values()
        .any(|c| &c[4..6] == b"ri"));
    assert_readers_see(&committed, &expected);
    for i in (0..1500).step_by(2) {
        assert!(hive.delete_key(&format!("key{i:05}")).unwrap());
    }
    expected
        .children
        .retain(|c| c.name[3..].parse::<u32>().unwrap() % 2 == 1);
    assert_readers_see(&hive.commit(), &expected);
}

#[test]
fn non_ascii_names_round_trip() {
    let mut hive = Hive::new_empty("ROOT", 5);
    let names = ["Grüße", "ΣΊΣΥΦΟΣ", "日本語のキー", "emoji 𐐐"];
    for name in names {
        hive.create_key(name).unwrap();
        hive.set_value(name, name, ValueType::SZ, &data::encode_sz(name))
            .unwrap();
    }
    let committed = hive.commit();
    let reopened = Hive::from_bytes(committed.clone()).unwrap();
    for (name, other_case) in names
        .iter()
        .zip(["GRÜßE", "σίσυφοσ", "日本語のキー", "EMOJI 𐐐"])
    {
        let key = reopened.key(other_case).unwrap().unwrap();
        assert_eq!(key.name().unwrap(), *name);
        assert_eq!(
            key.value(other_case).unwrap().unwrap().string().unwrap(),
            *name
        );
    }
    let mut expected = key("ROOT");
    for name in names {
        let mut k = key(name);
        k.values
            .push(value(name, ValueType::SZ, &data::encode_sz(name)));
        expected.children.push(k);
    }
    assert_readers_see(&committed, &expected);
}

#[test]
fn commit_sequence_numbers() {
    let Some((before, mut hive)) = testhive() else {
        return;
    };
    assert_eq!(
        hive.commit(),
        before,
        "an unmodified clean hive commits byte-identical"
    );
    hive.note_log_sequence(Some(41));
    hive.note_log_sequence(Some(7));
    hive.create_key("x").unwrap();
    let after = hive.commit();
    let base = BaseBlock::parse(&after).unwrap();
    assert_eq!(
        (base.primary_sequence(), base.secondary_sequence()),
        (42, 42)
    );
    assert!(base.checksum_ok());
    assert!(base.last_written() > BaseBlock::parse(&before).unwrap().last_written());
    assert_eq!(
        before[4096..4096 + 32],
        after[4096..4096 + 32],
        "first bin header stays"
    );

    // A dirty hive commits clean even without edits.
    let Some(dirty) = fixture_bytes("hives/regipy/SECURITY") else {
        return;
    };
    let mut hive = Hive::from_bytes(dirty).unwrap();
    assert!(hive.was_dirty());
    let committed = hive.commit();
    let base = BaseBlock::parse(&committed).unwrap();
    assert_eq!(
        (base.primary_sequence(), base.secondary_sequence()),
        (108, 108)
    );
    assert!(!base.is_dirty());
}

#[test]
fn log_files_beside_finds_the_hive_logs_case_insensitively_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("SYSTEM");
    std::fs::write(&path, b"hive").unwrap();
    for log in [
        "System.LOG",
        "SYSTEM.log2",
        "system.LOG1",
        "SYSTEM.LOG3",
        "OTHER.LOG1",
    ] {
        std::fs::write(dir.path().join(log), b"log").unwrap();
    }
    let found: Vec<String> = reseal_hive::log_files_beside(&path)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(found, ["system.LOG1", "SYSTEM.log2", "System.LOG"]);
}

#[test]
fn parent_maxima_keep_their_flag_bits_and_timestamps_move() {
    let mut hive = Hive::new_empty("ROOT", 5);
    let mut bytes = hive.commit();
    let root = u32::from_le_bytes(bytes[36..40].try_into().unwrap()) as usize;
    let max_subkey_name = 4096 + root + 4 + 52;
    bytes[max_subkey_name..max_subkey_name + 4].copy_from_slice(&0xABCD_0002u32.to_le_bytes());
    let mut hive = Hive::from_bytes(bytes).unwrap();
    let before = hive.root().unwrap().last_written().unwrap();
    hive.create_key("Hello").unwrap();
    hive.set_value("Hello", "Value", ValueType::BINARY, &[0; 300])
        .unwrap();
    let after = hive.commit();
    let word = |at: usize| u32::from_le_bytes(after[at..at + 4].try_into().unwrap());
    // "Hello" is 10 bytes as UTF-16; the upper 16 bits are flags and stay.
    assert_eq!(word(max_subkey_name), 0xABCD_000A);
    let reopened = Hive::from_bytes(after.clone()).unwrap();
    assert!(reopened.root().unwrap().last_written().unwrap() > before);
    let hello = reopened.key("hello").unwrap().unwrap();
    let hello_node = 4096 + hello.cell_offset() as usize + 4;
    assert_eq!(
        word(hello_node + 60),
        10,
        "largest value name, UTF-16 bytes"
    );
    assert_eq!(word(hello_node + 64), 300, "largest value data");
    assert!(
        hello.last_written().unwrap()
            >= reopened.root().unwrap().last_written().unwrap() - 10_000_000
    );

    // The last value and the last subkey going reset the maxima (flag bits stay).
    let mut hive = reopened;
    hive.delete_value("Hello", "Value").unwrap();
    hive.delete_key("Hello").unwrap();
    let after = hive.commit();
    let word = |at: usize| u32::from_le_bytes(after[at..at + 4].try_into().unwrap());
    assert_eq!(word(max_subkey_name), 0xABCD_0000);
}

#[test]
fn open_file_replays_logs_and_commit_goes_above_them() {
    let Some(system_b) = reseal_testutil::real_fixture("hives/regipy/SYSTEM_B") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("SYSTEM");
    std::fs::copy(&system_b, &path).unwrap();
    // Lower-case log names: found case-insensitively.
    for (from, to) in [
        ("SYSTEM_B.LOG1", "system.log1"),
        ("SYSTEM_B.LOG2", "system.LOG2"),
    ] {
        let log = system_b.with_file_name(from);
        std::fs::copy(&log, dir.path().join(to)).unwrap();
    }
    let (mut hive, report) = Hive::open_file(&path).unwrap();
    assert!(report.was_dirty);
    assert_eq!(report.applied.len(), 2, "{report:?}");
    let name = hive
        .value(
            "ControlSet001\\Control\\ComputerName\\ComputerName",
            "ComputerName",
        )
        .unwrap()
        .unwrap();
    assert_eq!(name.string().unwrap(), "DESKTOP-PM6C56D");
    // What the reseal crate's replace_host_hive does, without keeping metadata.
    std::fs::write(&path, hive.commit()).unwrap();
    for log in reseal_hive::log_files_beside(&path).unwrap() {
        std::fs::write(log, b"").unwrap();
    }
    let written = std::fs::read(&path).unwrap();
    let base = BaseBlock::parse(&written).unwrap();
    assert!(!base.is_dirty());
    assert!(
        base.primary_sequence() > 2130,
        "{}",
        base.primary_sequence()
    );
    for log in ["system.log1", "system.LOG2"] {
        assert_eq!(std::fs::metadata(dir.path().join(log)).unwrap().len(), 0);
    }
    let (reopened, report) = Hive::open_file(&path).unwrap();
    assert!(!report.was_dirty && !reopened.was_dirty());
    assert!(reopened.check().is_clean());
}

#[test]
fn replacing_value_data_of_the_same_size_rewrites_its_cell_in_place() {
    let Some((before, mut hive)) = testhive() else {
        return;
    };
    let mut expected = normalized(our_tree(&hive));
    let key = hive.key("data-test").unwrap().unwrap();
    let (name, value_type, len) = key
        .values()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v.name().unwrap(),
                v.value_type().unwrap(),
                v.data().unwrap().len(),
            )
        })
        .find(|(_, _, len)| (5..1000).contains(len))
        .expect("a small value in data-test");
    let new_data = vec![0x5A; len];
    hive.set_value("data-test", &name, value_type, &new_data)
        .unwrap();
    let after = hive.commit();
    let target = tree_key(&mut expected, &["data-test"]);
    target
        .values
        .iter_mut()
        .find(|v| v.name == name)
        .unwrap()
        .data = new_data;
    assert_readers_see(&after, &expected);
    // The data cell (same offset, new bytes) and the key node (time, maxima): nothing else.
    assert_eq!(changed_cells(&before, &after).len(), 2);
    assert_eq!(
        allocated_cells(&before).len(),
        allocated_cells(&after).len()
    );
}
